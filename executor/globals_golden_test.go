package executor_test

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/hogvm/vm"
)

var updateGolden = flag.Bool("update-globals", false, "rewrite testdata/globals.golden")

// goldenEvents adds to wireCorpus events whose globals take other paths:
// no project link base, links with characters to escape, a timestamp
// time.Format writes differently, nested properties, many groups, and a
// person with properties and $set.
func goldenEvents(t testing.TB) map[string]*hogwirev1.Event {
	evs := wireCorpus(t)
	odd := event(t, map[string]any{
		"nested":  map[string]any{"a": map[string]any{"b": []any{1, map[string]any{"c": "d"}}}, "0": "zero"},
		"$groups": map[string]any{"z": "last", "a": 1.5, "m": "mid", "b": "b", "c": "c", "d": "d"},
		"$set":    map[string]any{"email": 42},
	})
	odd.DistinctId = " üser/1?&= "
	odd.Uuid = "uuid with spaces/"
	odd.Timestamp = timestamppb.New(time.Date(12026, 1, 2, 3, 4, 5, 999_999_999, time.UTC))
	odd.Person = &hogwirev1.Person{Id: "p-odd", Properties: mustStruct(t, map[string]any{"username": "max", "plan": "x"})}
	evs["odd"] = odd
	many := event(t, map[string]any{})
	for _, k := range []string{"k9", "k8", "k7", "k6", "k5", "k4", "k3", "k2", "k1", "k0", "10", "2"} {
		many.Properties.Fields[k] = mustStruct(t, map[string]any{"v": k}).Fields["v"]
	}
	evs["many properties"] = many
	return evs
}

// The globals Hog code and filters see, keys in order, are those the code
// before Dict.AppendString built (testdata/globals.golden, written by it),
// from an Event message and from its encoding, with and without a link
// base.
func TestGlobalsGolden(t *testing.T) {
	evs := goldenEvents(t)
	names := make([]string, 0, len(evs))
	for n := range evs {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		ev := evs[n]
		for _, src := range []executor.Source{source, {}} {
			b.WriteString(n + " " + src.URL + "\n" + globalsJSON(t, executor.NewEvent(ev, project, src)) + "\n")
			data, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			w, err := executor.ParseEvent(data)
			if err != nil {
				t.Fatal(err)
			}
			g, err := executor.NewEventFromWire(w, executor.NewProject(project, src))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := globalsJSON(t, g), globalsJSON(t, executor.NewEvent(ev, project, src)); got != want {
				t.Errorf("%s: from the encoding:\n%s\nfrom the event:\n%s", n, got, want)
			}
			printedGlobals, err := vm.DictValue(func() *vm.Dict {
				ev, person := g.PropertyDicts()
				d := vm.NewDict(2)
				d.SetString("event", vm.DictValue(ev))
				d.SetString("person", vm.DictValue(person))
				return d
			}()).MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(string(printedGlobals) + "\n")
		}
	}
	path := filepath.Join("testdata", "globals.golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("line %d:\n got %s\nwant %s", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%d lines, want %d", len(gl), len(wl))
	}
}
