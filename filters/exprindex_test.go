package filters_test

import (
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"testing"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// TestRequirementExpression checks which conjuncts of a free expression
// give the index a requirement, and which do not.
func TestRequirementExpression(t *testing.T) {
	for _, c := range []struct {
		expr string
		want string // "" when no requirement
	}{
		{"properties.plan = 'pro'", "{Person:false Key:plan Set:false Strings:[pro] Numbers:[]}"},
		{"properties.plan == 'pro'", "{Person:false Key:plan Set:false Strings:[pro] Numbers:[]}"},
		{"properties.`plan` = 'pro'", "{Person:false Key:plan Set:false Strings:[pro] Numbers:[]}"},
		{"properties.`a b` = 'x'", "{Person:false Key:a b Set:false Strings:[x] Numbers:[]}"},
		{"properties.$browser = 'Chrome'", "{Person:false Key:$browser Set:false Strings:[Chrome] Numbers:[]}"},
		{"'pro' = properties.plan", "{Person:false Key:plan Set:false Strings:[pro] Numbers:[]}"},
		{"person.properties.email = 'a@b'", "{Person:true Key:email Set:false Strings:[a@b] Numbers:[]}"},
		{"properties.n = 5", "{Person:false Key:n Set:false Strings:[] Numbers:[5]}"},
		{"properties.n = -5", "{Person:false Key:n Set:false Strings:[] Numbers:[-5]}"},
		{"properties.n = 1.5", "{Person:false Key:n Set:false Strings:[] Numbers:[1.5]}"},
		{"properties.n = 1e3", "{Person:false Key:n Set:false Strings:[] Numbers:[1000]}"},
		{"properties.plan in ('a', 'b', 5)", "{Person:false Key:plan Set:false Strings:[a b] Numbers:[5]}"},
		{"properties.plan in ('a',)", "{Person:false Key:plan Set:false Strings:[a] Numbers:[]}"},
		{"properties.plan != null", "{Person:false Key:plan Set:true Strings:[] Numbers:[]}"},
		{"properties.plan is not null", "{Person:false Key:plan Set:true Strings:[] Numbers:[]}"},
		{"null != person.properties.plan", "{Person:true Key:plan Set:true Strings:[] Numbers:[]}"},
		// A boolean literal is a boolean, not the builder's 'true': only
		// that the property is set follows.
		{"properties.beta = true", "{Person:false Key:beta Set:true Strings:[] Numbers:[]}"},
		{"properties.beta = false", "{Person:false Key:beta Set:true Strings:[] Numbers:[]}"},
		// Conjunctions, nested, and exact preferred over is_set.
		{"properties.a != null and properties.plan = 'pro'", "{Person:false Key:plan Set:false Strings:[pro] Numbers:[]}"},
		{"toInt(properties.n) > 2 and (event = 'e' and (properties.plan = 'pro'))", "{Person:false Key:plan Set:false Strings:[pro] Numbers:[]}"},
		{"-- why\nproperties.plan = 'pro' -- trailing", "{Person:false Key:plan Set:false Strings:[pro] Numbers:[]}"},
		{"properties.plan = 'pro' and (properties.a = 'x' or properties.b = 'y')", "{Person:false Key:plan Set:false Strings:[pro] Numbers:[]}"},

		{"properties.plan = 'pro' or properties.n = 5", ""},
		{"not (properties.plan = 'pro')", ""},
		{"not properties.plan != null", ""},
		{"properties.plan != 'pro'", ""},
		{"properties.plan = null", ""},
		{"properties.plan is null", ""},
		{"properties.plan not in ('a', 'b')", ""},
		{"lower(properties.plan) = 'pro'", ""},
		{"ifNull(properties.plan, 'pro') = 'pro'", ""},
		{"properties.plan ?? 'pro' = 'pro'", ""},
		{"event.properties.plan = 'pro'", ""},
		{"properties['plan'] = 'pro'", ""},
		{"properties.plan.tier = 'pro'", ""},
		{"Properties.plan = 'pro'", ""},
		{"properties = 'pro'", ""},
		{"properties.plan = properties.other", ""},
		{"properties.plan = -(5)", ""},
		{"properties.plan = 1 + 1", ""},
		{"properties.plan = nan", ""},
		{"properties.plan = inf", ""},
		{"properties.plan in ['a', 'b']", ""},
		{"properties.plan in ('a')", ""}, // a string: in searches it
		{"properties.plan in ('a', null)", ""},
		{"properties.plan in ('a', true)", ""},
		{"'a' in properties.plan", ""},
		{"properties.plan like 'p%'", ""},
		{"properties.plan > 5", ""},
		{"properties.$elements_chain = 'a'", ""},
		{"person.properties.distinct_id = 'u'", ""},
		{"if(properties.plan = 'pro', true, false)", ""},
		{"(properties.plan = 'pro') = true", ""},
		{"properties.plan = 'pro' ? true : false", ""},
		{"event = 'signup'", ""},
		{"true", ""},
		{"properties.plan = ", ""}, // does not parse
	} {
		n, ok := filters.Requirement(&hogwirev1.Filters{Expression: c.expr})
		got := ""
		if ok {
			got = fmt.Sprintf("%+v", n)
		}
		if got != c.want {
			t.Errorf("%q: requirement %s, want %s", c.expr, got, c.want)
		}
	}
}

// TestRequirementPrefersExact checks that an exact test is preferred to
// is_set wherever either is written.
func TestRequirementPrefersExact(t *testing.T) {
	for _, c := range []struct {
		f    *hogwirev1.Filters
		want string
	}{
		{&hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{prop(t, "a", isSet, nil)}, Expression: "properties.b = 'x'"}, "b"},
		{&hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{prop(t, "a", exact, "y")}, Expression: "properties.b = 'x'"}, "a"},
		{&hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{prop(t, "a", isSet, nil)}, Expression: "properties.b != null"}, "a"},
		{&hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{prop(t, "a", gt, 5)}, Expression: "properties.b != null"}, "b"},
	} {
		n, ok := filters.Requirement(c.f)
		if !ok || n.Key != c.want {
			t.Errorf("%v: requirement %+v, %v; want one on %s", c.f, n, ok, c.want)
		}
	}
}

func TestEventNamesExpression(t *testing.T) {
	events := func(names ...string) []*hogwirev1.EventFilter {
		var evs []*hogwirev1.EventFilter
		for _, n := range names {
			evs = append(evs, &hogwirev1.EventFilter{Event: n})
		}
		return evs
	}
	for _, c := range []struct {
		f     *hogwirev1.Filters
		names string
		all   bool
	}{
		{&hogwirev1.Filters{Expression: "event = 'signup'"}, "signup", false},
		{&hogwirev1.Filters{Expression: "'signup' = event and properties.plan = 'pro'"}, "signup", false},
		{&hogwirev1.Filters{Expression: "event in ('b', 'a', 'b', 5, null)"}, "a,b", false},
		{&hogwirev1.Filters{Expression: "event in ('a', 'b') and (event = 'b')"}, "b", false},
		{&hogwirev1.Filters{Expression: "event in ('a', 'b')", Events: events("b", "c")}, "b", false},
		{&hogwirev1.Filters{Expression: "event = 'a'", Events: events("c")}, "", false},
		{&hogwirev1.Filters{Expression: "event = 'a'", Events: events("c", "")}, "a", false},
		{&hogwirev1.Filters{Expression: "event = 5"}, "", true},
		{&hogwirev1.Filters{Expression: "event != 'a'"}, "", true},
		{&hogwirev1.Filters{Expression: "event = 'a' or event = 'b'"}, "", true},
		{&hogwirev1.Filters{Expression: "not event = 'a'"}, "", true},
		{&hogwirev1.Filters{Expression: "event in ['a']"}, "", true},
		{&hogwirev1.Filters{Expression: "event in ('a')"}, "", true},
		{&hogwirev1.Filters{Expression: "lower(event) = 'a'"}, "", true},
		{&hogwirev1.Filters{Expression: "event.name = 'a'"}, "", true},
		{&hogwirev1.Filters{Expression: "event like 'a'", Events: events("a", "b")}, "a,b", false},
	} {
		names, all := filters.EventNames(c.f)
		if strings.Join(names, ",") != c.names || all != c.all {
			t.Errorf("%v: EventNames = %q, %v; want %q, %v", c.f, names, all, c.names, c.all)
		}
	}
}

// Expression literals for the randomized check: numbers in several
// spellings of the same values as indexNumbers, and every indexString.
var exprNumbers = []string{"5", "5.0", "-3", "-3.0", "0", "-0.0", "1000", "1e3", "1.5", "9007199254740992", "9007199254740993", "0x5"}

func randExprLiteral(r *rand.Rand) string {
	switch r.Intn(6) {
	case 0, 1:
		return filters.QuoteString(indexStrings[r.Intn(len(indexStrings))])
	case 2, 3:
		return exprNumbers[r.Intn(len(exprNumbers))]
	case 4:
		return []string{"true", "false"}[r.Intn(2)]
	}
	return "null"
}

func randExprProperty(r *rand.Rand) string {
	k := indexKeys[r.Intn(len(indexKeys))]
	key := filters.QuoteIdent(k)
	if !strings.HasPrefix(k, "$") && r.Intn(2) == 0 {
		key = k
	}
	switch r.Intn(8) {
	case 0, 1, 2:
		return "properties." + key
	case 3, 4:
		return "person.properties." + key
	case 5:
		return "properties[" + filters.QuoteString(k) + "]"
	case 6:
		return "event.properties." + key
	}
	return "lower(properties." + key + ")"
}

func randExprList(r *rand.Rand) string {
	list := make([]string, 1+r.Intn(3))
	for i := range list {
		list[i] = randExprLiteral(r)
	}
	s := strings.Join(list, ", ")
	switch r.Intn(4) {
	case 0:
		return "[" + s + "]"
	case 1:
		return "(" + s + ",)"
	}
	return "(" + s + ")"
}

// randConjunct is one test of the forms the index reads from
// expressions, and of forms close to them that it must not read.
func randConjunct(r *rand.Rand) string {
	x, lit := randExprProperty(r), randExprLiteral(r)
	switch r.Intn(16) {
	case 0, 1, 2:
		return x + " = " + lit
	case 3:
		return lit + " = " + x
	case 4:
		return x + " in " + randExprList(r)
	case 5:
		return x + " != " + lit
	case 6:
		return x + []string{" is not null", " is null"}[r.Intn(2)]
	case 7:
		return "null != " + x
	case 8:
		return "not (" + x + " = " + lit + ")"
	case 9:
		return "(" + x + " = " + lit + " or " + randConjunct(r) + ")"
	case 10:
		return "(" + randConjunct(r) + " and " + randConjunct(r) + ")"
	case 11:
		return "event = " + []string{"'e'", "'f'", "'g'", "5"}[r.Intn(4)]
	case 12:
		return "'e' = event"
	case 13:
		return "event in " + []string{"('e', 'g')", "('f', 5)", "('e')", "['f']", "('g', null)"}[r.Intn(5)]
	case 14:
		return "event != 'e'"
	}
	return "toInt(" + x + ") > " + strconv.Itoa(r.Intn(3))
}

func randExpression(r *rand.Rand) string {
	terms := make([]string, 1+r.Intn(3))
	for i := range terms {
		terms[i] = randConjunct(r)
	}
	return strings.Join(terms, " and ")
}

// TestIndexExpressionConversions checks, on the events Hog's conversions
// make match, that filters whose requirement comes from their expression
// stay candidates: each filter here matches its event.
func TestIndexExpressionConversions(t *testing.T) {
	for _, c := range []struct {
		expr  string
		props map[string]any
	}{
		{"properties.k = '5.0'", map[string]any{"k": 5}},
		{"properties.k = 5", map[string]any{"k": " 5 "}},
		{"'0x5' = properties.k", map[string]any{"k": 5}},
		{"properties.k = -0.0", map[string]any{"k": "0"}},
		{"properties.k = 9007199254740993", map[string]any{"k": 9007199254740992.0}},
		{"properties.k = 1e3", map[string]any{"k": "1000"}},
		{"properties.k in ('a', 5)", map[string]any{"k": 5}},
		{"properties.k in ('a', 'b',)", map[string]any{"k": "b"}},
		{"properties.k = true", map[string]any{"k": 1}},
		{"properties.k = true", map[string]any{"k": "true"}},
		{"properties.k = false", map[string]any{"k": "abc"}},
		{"properties.k = false", map[string]any{"k": 0}},
		{"properties.k = 'true'", map[string]any{"k": true}},
		{"properties.k != null", map[string]any{"k": []any{1}}},
		{"properties.k = 'a' and properties.j = 'b'", map[string]any{"k": "a", "j": "b"}},
	} {
		f := &hogwirev1.Filters{Expression: c.expr}
		g := globals("e", c.props, nil)
		if !matches(t, f, g) {
			t.Fatalf("%q does not match %v", c.expr, c.props)
		}
		if _, ok := filters.Requirement(f); !ok {
			t.Errorf("%q: no requirement", c.expr)
		}
		var ix filters.Index[int]
		ix.Add(f, 1)
		if got := ix.Candidates(nil, vm.FromGo(c.props).AsDict(), nil); len(got) != 1 {
			t.Errorf("%q: the index rules out the event %v, which matches", c.expr, c.props)
		}
	}
}

// TestIndexExpressionRulesOut checks that expression filters are ruled
// out as their builder equivalents are.
func TestIndexExpressionRulesOut(t *testing.T) {
	var ix filters.Index[string]
	ix.Add(&hogwirev1.Filters{Expression: "properties.plan = 'pro'"}, "pro")
	ix.Add(&hogwirev1.Filters{Expression: "toInt(properties.n) > 2 and properties.plan in ('team', 'enterprise')"}, "team")
	ix.Add(&hogwirev1.Filters{Expression: "person.properties.email is not null"}, "email")
	ix.Add(&hogwirev1.Filters{Expression: "lower(properties.plan) = 'pro'"}, "lower")
	for _, c := range []struct {
		props, person map[string]any
		want          string
	}{
		{map[string]any{"plan": "pro"}, nil, "[lower pro]"},
		{map[string]any{"plan": "team"}, map[string]any{"email": "a@b"}, "[email lower team]"},
		{map[string]any{"plan": "free"}, map[string]any{"email": nil}, "[lower]"},
	} {
		g := vm.FromGo(map[string]any{"p": c.props, "q": c.person})
		p, _ := g.AsDict().GetString("p")
		q, _ := g.AsDict().GetString("q")
		got := ix.Candidates(nil, p.AsDict(), q.AsDict())
		slices.Sort(got)
		if fmt.Sprint(got) != c.want {
			t.Errorf("props %v person %v: candidates %v, want %s", c.props, c.person, got, c.want)
		}
	}
}
