package testrun_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/testrun"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/kind"
)

// compiled returns a destination running hog behind f, compiled as the
// control plane compiles it.
func compiled(t *testing.T, hog string, f *hogwirev1.Filters) *hogwirev1.Destination {
	t.Helper()
	prog, err := kind.Destination().Compile(hog, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &hogwirev1.Destination{Name: "projects/shop/destinations/d", DisplayName: "d", Hog: hog, Filters: f}
	if d.Bytecode, err = json.Marshal(prog); err != nil {
		t.Fatal(err)
	}
	if f != nil {
		if f.Bytecode, err = filters.Compile(f); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestRun(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := testrun.New(testrun.Config{}, func() time.Time { return now })
	project := &hogwirev1.Project{Name: "projects/shop", DisplayName: "Shop"}
	f := &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "purchase", Properties: []*hogwirev1.PropertyFilter{{
		Key: "plan", Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT, Value: structpb.NewStringValue("enterprise"),
	}}}}}
	d := compiled(t, "print(f'{event.event} {event.properties.plan}')\nreturn {'ok': true}", f)
	ctx := context.Background()

	// Without an event, the sample is made to pass the filters.
	resp, err := r.Run(ctx, testrun.Request{Destination: d, Project: project})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED || resp.Event.GetEvent() != "purchase" ||
		resp.Event.GetUuid() == "" || !resp.Event.GetTimestamp().AsTime().Equal(now) || resp.Event.GetProject() != "shop" {
		t.Fatalf("sample run: %v (%s), event %v", resp.Status, resp.Error, resp.Event)
	}
	if len(resp.Logs) == 0 || resp.Logs[0].Message != "purchase enterprise" {
		t.Errorf("logs %v, want the sample's name and plan", resp.Logs)
	}
	if !resp.Result.GetStructValue().GetFields()["ok"].GetBoolValue() {
		t.Errorf("result %v, want {ok: true}", resp.Result)
	}

	// A given event the filters exclude is explained, and not run.
	ev := &hogwirev1.Event{Event: "purchase", DistinctId: "u1", Properties: &structpb.Struct{Fields: map[string]*structpb.Value{
		"plan": structpb.NewStringValue("free"),
	}}}
	resp, err = r.Run(ctx, testrun.Request{Destination: d, Project: project, Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_FILTERED || !strings.Contains(resp.FilterExplanation, `"plan"`) {
		t.Fatalf("filtered run: %v, explanation %q, logs %v", resp.Status, resp.FilterExplanation, resp.Logs)
	}
	if ev.Uuid != "" {
		t.Error("Run changed the request's event")
	}
	// SkipFilters runs it anyway.
	resp, err = r.Run(ctx, testrun.Request{Destination: d, Project: project, Event: ev, SkipFilters: true})
	if err != nil || resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED {
		t.Fatalf("run skipping filters: %v, %v", resp.GetStatus(), err)
	}

	// A destination that was never compiled cannot run.
	_, err = r.Run(ctx, testrun.Request{Destination: &hogwirev1.Destination{Name: d.Name, Hog: d.Hog}, Project: project})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("uncompiled: %v, want FAILED_PRECONDITION", err)
	}
}
