package executor_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/hogvm/kind"
)

func prepareTransform(t *testing.T, src string) *executor.Destination {
	t.Helper()
	prog, err := kind.Transformation().Compile(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	bc, _ := json.Marshal(prog)
	d, err := executor.Prepare(&hogwirev1.Destination{Name: "projects/p/destinations/t", Hog: src, Bytecode: bc,
		Kind: hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type fixedGeo map[string]any

func (g fixedGeo) Lookup(string) (map[string]any, error) { return g, nil }

func TestTransform(t *testing.T) {
	project := executor.NewProject(&hogwirev1.Project{Name: "projects/p"}, executor.Source{})
	newEvent := func() *hogwirev1.Event {
		props, _ := structpb.NewStruct(map[string]any{"a": 1, "$ip": "1.2.3.4"})
		set, _ := structpb.NewStruct(map[string]any{"email": "x@y"})
		return &hogwirev1.Event{Uuid: "u1", Event: "e", DistinctId: "d", Properties: props, Set: set}
	}
	cases := []struct {
		name, src string
		status    executor.Status
		dropped   bool
		check     func(t *testing.T, ev *hogwirev1.Event)
	}{
		{"rewrites name, properties and $set", `let e := event
e.event := 'renamed'
e.properties.b := 2
e.properties.$set.email := 'hashed'
e.properties.city := geoipLookup(e.properties.$ip).city
return e`, executor.Succeeded, false, func(t *testing.T, ev *hogwirev1.Event) {
			if ev.Event != "renamed" || ev.Properties.Fields["b"].GetNumberValue() != 2 || ev.Properties.Fields["city"].GetStringValue() != "Oslo" {
				t.Errorf("event %v", ev)
			}
			if _, ok := ev.Properties.Fields["$set"]; ok || ev.Set.Fields["email"].GetStringValue() != "hashed" {
				t.Errorf("$set went to the properties or was not changed: %v", ev)
			}
		}},
		{"null drops", `return null`, executor.Succeeded, true, nil},
		{"not an event fails", `return 'x'`, executor.Failed, false, nil},
		{"empty event name fails", `let e := event
e.event := ''
return e`, executor.Failed, false, nil},
		{"throw fails", `throw Error('boom')`, executor.Failed, false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := newEvent()
			before := proto.CloneOf(ev)
			out := prepareTransform(t, c.src).Transform(context.Background(), ev, project, eventlimits.Limits{},
				executor.Options{GeoIP: fixedGeo{"city": "Oslo"}})
			if out.Status != c.status || out.Dropped != c.dropped {
				t.Fatalf("status %v dropped %v (%s), want %v %v", out.Status, out.Dropped, out.Error, c.status, c.dropped)
			}
			if c.status == executor.Failed {
				if !proto.Equal(ev, before) {
					t.Error("a failed transformation changed the event")
				}
				if len(out.Logs) == 0 || !strings.Contains(out.Logs[len(out.Logs)-1].Message, out.Error) {
					t.Error("no log of the failure")
				}
			}
			if c.check != nil {
				c.check(t, ev)
			}
		})
	}
}
