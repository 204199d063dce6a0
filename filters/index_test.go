package filters_test

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// Literals and property values chosen to meet Hog's conversions: numeric
// strings in every spelling stringToNumber reads, booleans against their
// string forms, -0 against 0, the empty string against 0.
var (
	indexStrings = []string{"5", "5.0", " 5 ", "0x5", "5e0", "", "a", "A", "true", "false", "null", "1000", "1e3", "-0", "0", "Infinity", "NaN"}
	indexNumbers = []float64{5, 0, math.Copysign(0, -1), 1000, 1.5, -3, 1 << 53, 9007199254740993}
	indexKeys    = []string{"k", "j", "distinct_id", "$elements_chain"}
)

func randScalar(r *rand.Rand) any {
	switch r.Intn(5) {
	case 0, 1:
		return indexStrings[r.Intn(len(indexStrings))]
	case 2, 3:
		return indexNumbers[r.Intn(len(indexNumbers))]
	}
	return r.Intn(2) == 0
}

// randValue is an event's property value: any scalar, null, or a list or
// object (present or absent is decided by the caller).
func randValue(r *rand.Rand) any {
	switch r.Intn(10) {
	case 0:
		return nil
	case 1:
		return []any{randScalar(r)}
	case 2:
		return map[string]any{"a": randScalar(r)}
	}
	return randScalar(r)
}

var indexOps = []op{exact, exact, exact, exact, isSet, isSet, isNot, isNotSet, gt, icontains}

func randProperty(r *rand.Rand) *hogwirev1.PropertyFilter {
	p := &hogwirev1.PropertyFilter{Key: indexKeys[r.Intn(len(indexKeys))], Operator: indexOps[r.Intn(len(indexOps))]}
	if r.Intn(3) == 0 {
		p.Scope = person
	}
	if p.Operator == isSet || p.Operator == isNotSet {
		return p
	}
	var v any
	if r.Intn(3) == 0 {
		list := make([]any, r.Intn(4))
		for i := range list {
			list[i] = randScalar(r)
		}
		v = list
	} else {
		v = randScalar(r)
	}
	pv, err := structpb.NewValue(v)
	if err != nil {
		panic(err)
	}
	p.Value = pv
	return p
}

func randFilters(r *rand.Rand) *hogwirev1.Filters {
	f := &hogwirev1.Filters{}
	for range r.Intn(3) {
		f.Properties = append(f.Properties, randProperty(r))
	}
	for range r.Intn(3) {
		e := &hogwirev1.EventFilter{Event: []string{"", "e", "f"}[r.Intn(3)]}
		for range r.Intn(2) {
			e.Properties = append(e.Properties, randProperty(r))
		}
		f.Events = append(f.Events, e)
	}
	switch r.Intn(6) {
	case 0:
		f.Expression = "properties.k = 5"
	case 1:
		f.Expression = "person.properties.j != null"
	case 2:
		f.Expression = "toInt(properties.k) > 2"
	case 3, 4:
		f.Expression = randExpression(r)
	}
	return f
}

func randProps(r *rand.Rand) map[string]any {
	m := map[string]any{}
	for _, k := range indexKeys {
		if r.Intn(4) > 0 {
			m[k] = randValue(r)
		}
	}
	return m
}

// checkIndex builds an Index of random filters and checks, for random
// events, that every filter that matches an event is among its
// candidates and names the event in EventNames, and that no candidate is
// given twice.
func checkIndex(t *testing.T, seed int64) {
	r := rand.New(rand.NewSource(seed))
	fs := make([]*hogwirev1.Filters, 12)
	progs := make([]*vm.Program, len(fs))
	var ix filters.Index[int]
	for i := range fs {
		fs[i] = randFilters(r)
		bc, err := filters.Compile(fs[i])
		if err != nil {
			t.Fatalf("seed %d: compiling %v: %v", seed, fs[i], err)
		}
		bp, err := bytecode.Decode(bc)
		if err != nil {
			t.Fatal(err)
		}
		if progs[i], err = vm.Link(bp, stl.Library()); err != nil {
			t.Fatal(err)
		}
		ix.Add(fs[i], i)
	}
	if ix.Len() != len(fs) {
		t.Fatalf("Len = %d, want %d", ix.Len(), len(fs))
	}
	m := vm.New(vm.Options{})
	var cands []int
	for range 12 {
		var personProps map[string]any
		if r.Intn(4) > 0 {
			personProps = randProps(r)
		}
		name := []string{"e", "f", "g"}[r.Intn(3)]
		g := vm.FromGo(globals(name, randProps(r), personProps))
		props, _ := g.AsDict().GetString("properties")
		var pp *vm.Dict
		if p, _ := g.AsDict().GetString("person"); p.Kind() == vm.KindDict {
			v, _ := p.AsDict().GetString("properties")
			pp = v.AsDict()
		}
		cands = ix.Candidates(cands[:0], props.AsDict(), pp)
		seen := map[int]bool{}
		for _, c := range cands {
			if seen[c] {
				t.Fatalf("seed %d: candidate %d given twice", seed, c)
			}
			seen[c] = true
		}
		for i, p := range progs {
			res, err := m.Run(context.Background(), p, g)
			matched := err == nil && res.Finished && res.Value.Kind() == vm.KindBool && res.Value.AsBool()
			if !matched {
				continue
			}
			if !seen[i] {
				src, _ := filters.Source(fs[i])
				need, _ := filters.Requirement(fs[i])
				t.Fatalf("seed %d: the filter %s matches the event %s, but the index ruled it out (requirement %+v)",
					seed, src, vm.JSString(g), need)
			}
			if names, all := filters.EventNames(fs[i]); !all && !slices.Contains(names, name) {
				src, _ := filters.Source(fs[i])
				t.Fatalf("seed %d: the filter %s matches the event %s, but its event names are %q", seed, src, vm.JSString(g), names)
			}
		}
	}
}

// TestIndexAgreesWithFilters checks on many random filters and events
// that the index never rules out a filter that matches. FuzzIndex goes on
// with more seeds: go test ./filters -run XXX -fuzz FuzzIndex.
func TestIndexAgreesWithFilters(t *testing.T) {
	n := int64(500)
	if testing.Short() {
		n = 100
	}
	for seed := range n {
		checkIndex(t, seed)
	}
}

func FuzzIndex(f *testing.F) {
	for seed := range int64(20) {
		f.Add(seed)
	}
	f.Fuzz(checkIndex)
}

// TestIndexRulesOut checks that the index does rule out what it is for:
// filters whose exact or is_set property test the event fails.
func TestIndexRulesOut(t *testing.T) {
	var ix filters.Index[string]
	ix.Add(props(prop(t, "plan", exact, "pro")), "pro")
	ix.Add(props(prop(t, "plan", exact, []any{"team", "enterprise"})), "team")
	ix.Add(props(prop(t, "n", exact, 5)), "five")
	ix.Add(props(personProp(t, "email", isSet, nil)), "email")
	ix.Add(&hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "e", Properties: []*hogwirev1.PropertyFilter{prop(t, "plan", exact, "free")}}}}, "free")
	ix.Add(props(prop(t, "plan", isNot, "pro")), "other")
	for _, c := range []struct {
		props, person map[string]any
		want          []string
	}{
		{map[string]any{"plan": "pro"}, nil, []string{"other", "pro"}},
		{map[string]any{"plan": "enterprise"}, nil, []string{"other", "team"}},
		{map[string]any{"plan": "free", "n": "5.0"}, map[string]any{"email": "a@b"}, []string{"email", "five", "free", "other"}},
		{map[string]any{"n": 5}, map[string]any{"email": nil}, []string{"five", "other"}},
		{map[string]any{"plan": nil}, nil, []string{"other"}},
		{map[string]any{"plan": true}, nil, []string{"free", "other", "pro", "team"}},
	} {
		g := vm.FromGo(map[string]any{"p": c.props, "q": c.person})
		p, _ := g.AsDict().GetString("p")
		q, _ := g.AsDict().GetString("q")
		got := ix.Candidates(nil, p.AsDict(), q.AsDict())
		slices.Sort(got)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("props %v person %v: candidates %v, want %v", c.props, c.person, got, c.want)
		}
	}
}

// BenchmarkIndex selects the candidates of an event among 100,000
// property-equality filters on one key.
func BenchmarkIndex(b *testing.B) {
	var ix filters.Index[int]
	for i := range 100_000 {
		ix.Add(props(prop(b, "plan", exact, fmt.Sprint("p", i))), i)
	}
	g := vm.FromGo(map[string]any{"plan": "p7", "sent": "x"})
	var cands []int
	b.ReportAllocs()
	for b.Loop() {
		cands = ix.Candidates(cands[:0], g.AsDict(), nil)
	}
	if len(cands) != 1 {
		b.Fatalf("candidates %v", cands)
	}
}
