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
		}
	}
	rt := newRegistry()
	r, _ := rt.buildRouting(nil, snap, executor.Source{}, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return r.projects["p"]
}

// BenchmarkRoute routes one event in a project with one destination that
// matches it and 10, 1,000 or 100,000 that do not, by event name, by a
// property-equality filter (indexed) or by a free expression (run on every
// event): what selecting the matching destination costs, filters included.
func BenchmarkRoute(b *testing.B) {
	ev := &hogwirev1.Event{Uuid: "0190f7f0-0000-7000-8000-000000000001", Event: "e", DistinctId: "u"}
	ev.Properties, _ = structpb.NewStruct(map[string]any{"plan": "free", "$browser": "Chrome", "$current_url": "https://acme.example/pricing", "seats": 12})
	for _, kind := range []string{"name", "property", "expr"} {
		for _, others := range []int{10, 1000, 100_000} {
			if kind == "expr" && others > 1000 && testing.Short() {
				continue
			}
			b.Run(fmt.Sprintf("%s/%d", kind, others), func(b *testing.B) {
				pr := benchRouting(b, kind, others)
				g := executor.NewEvent(ev, &hogwirev1.Project{Name: "projects/p"}, executor.Source{})
				var cands []*route
				b.ReportAllocs()
				for b.Loop() {
					cands = pr.candidates(cands[:0], g)
					matched := 0
					for _, r := range cands {
						if ok, err := r.prep.Match(g); ok && err == nil {
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
