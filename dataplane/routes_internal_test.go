package dataplane

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/configcache"
	"github.com/hogwire/hogwire/dataplane/configsync"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/compiler"
)

// benchRouting builds the routing of a project with one destination that
// matches every event and others whose filters of the given kind match
// none of the benchmark's events.
func benchRouting(b *testing.B, kind string, others int) *projectRoutes {
	prog, err := compiler.Compile("return 1", compiler.Options{})
	if err != nil {
		b.Fatal(err)
	}
	code, _ := json.Marshal(prog)
	snap := configcache.Empty()
	snap.Projects["p"] = &hogwirev1.Project{Name: "projects/p"}
	add := func(i int, f *hogwirev1.Filters) {
		var err error
		if f.Bytecode, err = filters.Compile(f); err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("projects/p/destinations/d%d", i)
		snap.Destinations[name] = &hogwirev1.Destination{Name: name, Enabled: true, Bytecode: code, Filters: f}
	}
	add(-1, &hogwirev1.Filters{})
	for i := range others {
		plan := fmt.Sprint("p", i)
		switch kind {
		case "name":
			add(i, &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "other " + plan}}})
		case "property":
			add(i, &hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{{Key: "plan", Value: structpb.NewStringValue(plan),
				Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT}}})
		case "expr":
			add(i, &hogwirev1.Filters{Expression: "properties.plan = '" + plan + "'"})
		case "exprfn":
			add(i, &hogwirev1.Filters{Expression: "lower(properties.plan) = '" + plan + "'"})
		case "exprevent":
			add(i, &hogwirev1.Filters{Expression: "event.properties.plan = '" + plan + "'"})
		}
	}
	rt := newRegistry()
	r, _ := rt.buildRouting(nil, snap, executor.Source{}, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return r.projects["p"]
}

// BenchmarkRoute routes one event in a project with one destination that
// matches it and 10, 1,000 or 100,000 that do not, by event name, by a
// property-equality filter, by the same test as a free expression (both
// indexed), or by an expression calling a function (exprfn) or reading a
// property of the event's name (exprevent, the example: never
// true), neither indexed, run on every event): what selecting the matching destination costs,
// filters included.
func BenchmarkRoute(b *testing.B) {
	ev := &hogwirev1.Event{Uuid: "0190f7f0-0000-7000-8000-000000000001", Event: "e", DistinctId: "u"}
	ev.Properties, _ = structpb.NewStruct(map[string]any{"plan": "free", "$browser": "Chrome", "$current_url": "https://acme.example/pricing", "seats": 12})
	for _, kind := range []string{"name", "property", "expr", "exprfn", "exprevent"} {
		for _, others := range []int{10, 1000, 100_000} {
			if (kind == "exprfn" || kind == "exprevent") && others > 1000 && testing.Short() {
				continue
			}
			b.Run(fmt.Sprintf("%s/%d", kind, others), func(b *testing.B) {
				pr := benchRouting(b, kind, others)
				g := executor.NewEvent(ev, &hogwirev1.Project{Name: "projects/p"}, executor.Source{})
				var cands []*route
				var mt executor.Matcher // as matchAll's workers
				b.ReportAllocs()
				for b.Loop() {
					cands = pr.candidates(cands[:0], g)
					matched := 0
					for _, r := range cands {
						if ok, err := mt.Match(r.prep, g); ok && err == nil {
							matched++
						}
					}
					if matched != 1 {
						b.Fatalf("%d destinations matched, want 1", matched)
					}
				}
			})
		}
	}
}

// A destination's selection (its event names and property requirement,
// which parse its expression) is read once per revision: the next routing
// takes it over while the revision is the same.
func TestSelectionKeptPerRevision(t *testing.T) {
	prog, err := compiler.Compile("return 1", compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := json.Marshal(prog)
	snap := func(rev int64, expr string) *configsync.Snapshot {
		s := configcache.Empty()
		s.Projects["p"] = &hogwirev1.Project{Name: "projects/p"}
		f := &hogwirev1.Filters{Expression: expr}
		if f.Bytecode, err = filters.Compile(f); err != nil {
			t.Fatal(err)
		}
		name := "projects/p/destinations/d"
		s.Destinations[name] = &hogwirev1.Destination{Name: name, Enabled: true, Bytecode: code, Filters: f, Revision: rev}
		return s
	}
	rt := newRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	build := func(prev *routing, s *configsync.Snapshot) (*routing, *selection) {
		r, _ := rt.buildRouting(prev, s, executor.Source{}, 1, log)
		return r, r.prepared["projects/p/destinations/d"].sel
	}
	r1, s1 := build(nil, snap(1, "event = 'a' and properties.plan = 'pro'"))
	if fmt.Sprintf("%v %v %s %v", s1.names, s1.all, s1.need.Key, s1.needable) != "[a] false plan true" {
		t.Fatalf("selection %+v", s1)
	}
	r2, s2 := build(r1, snap(1, "event = 'a' and properties.plan = 'pro'"))
	if s2 != s1 {
		t.Error("the same revision's selection was read again")
	}
	_, s3 := build(r2, snap(2, "event = 'b'"))
	if s3 == s1 || fmt.Sprint(s3.names, s3.needable) != "[b] false" {
		t.Errorf("a new revision kept the old selection: %+v", s3)
	}
}
