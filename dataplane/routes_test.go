package dataplane_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

func propFilter(t *testing.T, person bool, key string, op hogwirev1.PropertyOperator, v any) *hogwirev1.PropertyFilter {
	t.Helper()
	p := &hogwirev1.PropertyFilter{Key: key, Operator: op}
	if person {
		p.Scope = hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON
	}
	if v != nil {
		pv, err := structpb.NewValue(v)
		if err != nil {
			t.Fatal(err)
		}
		p.Value = pv
	}
	return p
}

// Destinations routed by the property tests of their filters get exactly
// the events their filters match, with PostHog's semantics (a number
// property equals a numeric string, null equals nothing, the expression
// still decides), count the rest as filtered, and follow a change of
// their filters; so do the same tests written as free expressions.
func TestPropertyFiltersRoute(t *testing.T) {
	const (
		exact = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT
		isSet = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_SET
	)
	st := startStack(t)
	p := st.project(t, "shop")
	sink := newSink(t, nil)
	props := func(ps ...*hogwirev1.PropertyFilter) *hogwirev1.Filters { return &hogwirev1.Filters{Properties: ps} }
	pro := st.webhook(t, "shop", sink.URL, props(propFilter(t, false, "plan", exact, "pro")))
	team := st.webhook(t, "shop", sink.URL, props(propFilter(t, false, "plan", exact, []any{"team", "enterprise"})))
	five := st.webhook(t, "shop", sink.URL, props(propFilter(t, false, "n", exact, "5")))
	email := st.webhook(t, "shop", sink.URL, props(propFilter(t, true, "email", isSet, nil)))
	buy := st.webhook(t, "shop", sink.URL, &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "buy",
		Properties: []*hogwirev1.PropertyFilter{propFilter(t, false, "plan", exact, "pro")}}}})
	expr := st.webhook(t, "shop", sink.URL, &hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{propFilter(t, false, "plan", exact, "pro")},
		Expression: "properties.n > 3"})
	// The same tests written as free expressions are indexed alike: the
	// expression that would throw never runs (filtered, not
	// filtering_failed). One under or is not indexed, and still decides.
	exprBuy := st.webhook(t, "shop", sink.URL, &hogwirev1.Filters{Expression: "event = 'buy' and properties.plan = 'pro'"})
	exprN := st.webhook(t, "shop", sink.URL, &hogwirev1.Filters{Expression: "5 = properties.n"})
	exprThrow := st.webhook(t, "shop", sink.URL, &hogwirev1.Filters{Expression: "properties.tier = 'gold' and jsonParse('{') = 1"})
	exprOr := st.webhook(t, "shop", sink.URL, &hogwirev1.Filters{Expression: "properties.n = 5 and person.properties.email != null or false"})
	st.waitConfig(t, 10)

	event := func(name string, props map[string]any, person map[string]any) *hogwirev1.Event {
		e := ev(name, "u")
		var err error
		if e.Properties, err = structpb.NewStruct(props); err != nil {
			t.Fatal(err)
		}
		if person != nil {
			pp, err := structpb.NewStruct(person)
			if err != nil {
				t.Fatal(err)
			}
			e.Person = &hogwirev1.Person{Id: "p", Properties: pp}
		}
		return e
	}
	st.publish(t, p.CaptureToken,
		event("e", map[string]any{"plan": "pro", "n": 5}, map[string]any{"email": "a@b.c"}),
		event("e", map[string]any{"plan": "team", "n": "5.0"}, nil),
		event("buy", map[string]any{"plan": "pro", "n": 1}, map[string]any{"email": nil}),
		event("e", map[string]any{"plan": nil}, nil),
		event("e", map[string]any{"plan": true, "n": " 5"}, nil),
	)
	want := map[string]float64{pro.Name: 2, team.Name: 1, five.Name: 1, email.Name: 1, buy.Name: 1, expr.Name: 1,
		exprBuy.Name: 1, exprN.Name: 3, exprThrow.Name: 0, exprOr.Name: 1}
	for name, n := range want {
		waitStat(t, st, name, "succeeded", n)
		waitStat(t, st, name, "filtered", 5-n)
	}
	for name, n := range want {
		for metric, w := range map[string]float64{"succeeded": n, "filtered": 5 - n, "filtering_failed": 0} {
			if got := st.Node.Stat(name, metric); got != w {
				t.Errorf("%s: %s = %v, want %v", name, metric, got, w)
			}
		}
	}

	// A change of filters is routed from the next configuration on.
	pro.Filters = props(propFilter(t, false, "plan", exact, "free"))
	if _, err := hogwirev1.NewDestinationServiceClient(st.admin).UpdateDestination(context.Background(), &hogwirev1.UpdateDestinationRequest{
		Destination: pro, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"filters"}},
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		d := st.Node.Syncer().Current().Destinations[pro.Name]
		return d != nil && len(d.GetFilters().GetProperties()) == 1 && d.GetFilters().GetProperties()[0].GetValue().GetStringValue() == "free"
	})
	st.publish(t, p.CaptureToken, event("e", map[string]any{"plan": "free"}, nil), event("e", map[string]any{"plan": "pro"}, nil))
	waitStat(t, st, pro.Name, "succeeded", 3)
	waitStat(t, st, pro.Name, "filtered", 4)
	if got := st.Node.Stat(pro.Name, "succeeded"); got != 3 {
		t.Errorf("after the change: succeeded = %v, want 3", got)
	}
}

// Many destinations' filters on a message of many events run spread over
// goroutines (under -race, this checks they share the event's globals
// safely); each destination still gets exactly the events it matches. The
// expressions call a function so that the index cannot rule them out:
// every filter runs on every event.
func TestManyFiltersOnOneMessage(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	sink := newSink(t, nil)
	const dests, events = 24, 72
	ds := make([]*hogwirev1.Destination, dests)
	for i := range ds {
		ds[i] = st.webhook(t, "shop", sink.URL, &hogwirev1.Filters{Expression: fmt.Sprintf("toInt(properties.k) = %d", i)})
	}
	st.waitConfig(t, dests)
	evs := make([]*hogwirev1.Event, events)
	for j := range evs {
		evs[j] = ev("e", fmt.Sprint("u", j))
		evs[j].Properties = &structpb.Struct{Fields: map[string]*structpb.Value{"k": structpb.NewNumberValue(float64(j % dests))}}
	}
	st.publish(t, p.CaptureToken, evs...)
	for _, d := range ds {
		waitStat(t, st, d.Name, "succeeded", events/dests)
		waitStat(t, st, d.Name, "filtered", events-events/dests)
	}
	for _, d := range ds {
		if got := st.Node.Stat(d.Name, "succeeded"); got != events/dests {
			t.Errorf("%s: succeeded = %v, want %d", d.Name, got, events/dests)
		}
	}
}
