package dataplane_test

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// A destination with mappings runs once per enabled mapping whose filters
// match an event its own filters match, each with the mapping's inputs
// over its own: an event matching two of three mappings makes two
// requests, a disabled mapping none, and an event the destination's
// filter refuses none at all.
func TestMappingsFanOut(t *testing.T) {
	const exact = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT
	st := startStack(t)
	p := st.project(t, "shop")
	sink := newSink(t, nil)
	body := func(kind string) map[string]*hogwirev1.InputValue {
		v, err := structpb.NewValue(map[string]any{"kind": kind, "user": "{event.distinct_id}"})
		if err != nil {
			t.Fatal(err)
		}
		return map[string]*hogwirev1.InputValue{"body": {Value: v}}
	}
	events := func(names ...string) *hogwirev1.Filters {
		f := &hogwirev1.Filters{}
		for _, n := range names {
			f.Events = append(f.Events, &hogwirev1.EventFilter{Event: n})
		}
		return f
	}
	d := st.fromTemplate(t, "shop", "webhook", sink.URL, map[string]any{"kind": "destination"}, &hogwirev1.Destination{
		DisplayName: "ads",
		Filters:     &hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{propFilter(t, false, "country", exact, "DE")}},
		Mappings: []*hogwirev1.Mapping{
			{Name: "Sign-up", Filters: events("signed_up"), Inputs: body("signup")},
			{Name: "Pro", Filters: &hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{propFilter(t, false, "plan", exact, "pro")}}, Inputs: body("pro")},
			{Name: "Purchase", Filters: events("purchase"), Inputs: body("purchase")},
			{Name: "Off", Disabled: true, Inputs: body("off")},
		},
	})
	st.waitConfig(t, 1)
	event := func(name string, props map[string]any) *hogwirev1.Event {
		e := ev(name, "ada")
		var err error
		if e.Properties, err = structpb.NewStruct(props); err != nil {
			t.Fatal(err)
		}
		return e
	}
	st.publish(t, p.CaptureToken,
		event("signed_up", map[string]any{"country": "DE", "plan": "pro"}), // Sign-up and Pro
		event("signed_up", map[string]any{"country": "FR", "plan": "pro"}), // the destination's filter refuses it
		event("other", map[string]any{"country": "DE", "plan": "free"}),    // no mapping
	)
	waitStat(t, st, d.Name, "succeeded", 2)
	waitStat(t, st, d.Name, "filtered", 2)
	sink.mu.Lock()
	var kinds []string
	for _, b := range sink.bodies {
		if b["user"] != "ada" {
			t.Errorf("body %v: user is not the event's distinct id", b)
		}
		kinds = append(kinds, b["kind"].(string))
	}
	sink.mu.Unlock()
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"pro", "signup"}) {
		t.Errorf("the sink got bodies of kinds %v, want pro and signup", kinds)
	}

	// The records name the mapping each invocation ran.
	waitFor(t, func() bool {
		resp, err := hogwirev1.NewInvocationServiceClient(st.admin).ListInvocations(context.Background(), &hogwirev1.ListInvocationsRequest{Parent: d.Name})
		if err != nil || len(resp.Invocations) < 2 {
			return false
		}
		var ms []string
		for _, inv := range resp.Invocations {
			ms = append(ms, inv.Mapping)
		}
		slices.Sort(ms)
		return slices.Equal(ms, []string{"Pro", "Sign-up"})
	})
}
