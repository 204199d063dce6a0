package testrun_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/testrun"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/inputs"
)

// A test of a destination with mappings runs every matching mapping, each
// with its inputs, or the one named; no match is FILTERED.
func TestRunMappings(t *testing.T) {
	r := testrun.New(testrun.Config{}, nil)
	project := &hogwirev1.Project{Name: "projects/shop", DisplayName: "Shop"}
	d := compiled(t, "print(inputs.kind)", nil)
	d.InputsSchema = []*hogwirev1.InputSchema{{Key: "kind", Type: hogwirev1.InputType_INPUT_TYPE_STRING}}
	d.Inputs = map[string]*hogwirev1.InputValue{"kind": {Value: structpb.NewStringValue("dest")}}
	mapping := func(name, event, kind string) *hogwirev1.Mapping {
		f := &hogwirev1.Filters{}
		if event != "" {
			f.Events = []*hogwirev1.EventFilter{{Event: event}}
		}
		var err error
		if f.Bytecode, err = filters.Compile(f); err != nil {
			t.Fatal(err)
		}
		m := &hogwirev1.Mapping{Name: name, Filters: f, Inputs: map[string]*hogwirev1.InputValue{}}
		if kind != "" {
			m.Inputs["kind"] = &hogwirev1.InputValue{Value: structpb.NewStringValue(kind)}
		}
		return m
	}
	d.Mappings = []*hogwirev1.Mapping{mapping("Buy", "buy", "buy"), mapping("All", "", ""), mapping("Refund", "refund", "refund")}
	for _, m := range append([]*hogwirev1.Mapping{{Inputs: d.Inputs}}, d.Mappings...) {
		inputs.CompileAll(d.InputsSchema, m.Inputs, func(f, msg string) { t.Fatalf("%s: %s", f, msg) })
	}
	ctx := context.Background()
	ev := &hogwirev1.Event{Event: "buy", DistinctId: "ada", Timestamp: nil}
	resp, err := r.Run(ctx, testrun.Request{Destination: d, Project: project, Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, run := range resp.MappingRuns {
		if len(run.Logs) == 0 {
			t.Fatalf("run %s logged nothing: %v %s", run.Mapping, run.Status, run.Error)
		}
		got = append(got, run.Mapping+"="+run.Logs[0].Message)
	}
	if len(got) != 2 || got[0] != "Buy=buy" || got[1] != "All=dest" || resp.Mapping != "Buy" {
		t.Fatalf("runs %v (first %q), want Buy=buy and All=dest", got, resp.Mapping)
	}

	resp, err = r.Run(ctx, testrun.Request{Destination: d, Project: project, Event: ev, Mapping: "Refund", SkipFilters: true})
	if err != nil || len(resp.MappingRuns) != 1 || resp.Logs[0].Message != "refund" {
		t.Fatalf("one mapping: %v, %v", resp, err)
	}
	_, err = r.Run(ctx, testrun.Request{Destination: d, Project: project, Event: ev, Mapping: "Nope"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("an unknown mapping: %v, want INVALID_ARGUMENT", err)
	}
	d.Mappings = d.Mappings[:1]
	resp, err = r.Run(ctx, testrun.Request{Destination: d, Project: project, Event: &hogwirev1.Event{Event: "view", DistinctId: "ada"}})
	if err != nil || resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_FILTERED || len(resp.MappingRuns) != 0 {
		t.Fatalf("no mapping matches: %v, %v", resp, err)
	}
}
