package filters_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

type op = hogwirev1.PropertyOperator

const (
	exact        = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT
	isNot        = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT
	icontains    = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_ICONTAINS
	notIcontains = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_ICONTAINS
	regex        = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_REGEX
	notRegex     = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_REGEX
	gt           = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GT
	gte          = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GTE
	lt           = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_LT
	lte          = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_LTE
	isSet        = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_SET
	isNotSet     = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT_SET
	dateBefore   = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_DATE_BEFORE
	dateAfter    = hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_DATE_AFTER

	person = hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON
)

func val(t testing.TB, v any) *structpb.Value {
	t.Helper()
	if v == nil {
		return nil
	}
	pv, err := structpb.NewValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

func prop(t testing.TB, key string, o op, v any) *hogwirev1.PropertyFilter {
	return &hogwirev1.PropertyFilter{Key: key, Operator: o, Value: val(t, v)}
}

func personProp(t testing.TB, key string, o op, v any) *hogwirev1.PropertyFilter {
	p := prop(t, key, o, v)
	p.Scope = person
	return p
}

func props(ps ...*hogwirev1.PropertyFilter) *hogwirev1.Filters {
	return &hogwirev1.Filters{Properties: ps}
}

func TestSourceOperators(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *hogwirev1.PropertyFilter
		want string
	}{
		{"exact", prop(t, "$browser", exact, "Chrome"), "properties.`$browser` = 'Chrome'"},
		{"exact number", prop(t, "n", exact, 5), "properties.`n` = 5"},
		{"exact float", prop(t, "n", exact, 2.5), "properties.`n` = 2.5"},
		{"exact bool", prop(t, "flag", exact, true), "properties.`flag` = 'true'"},
		{"exact list", prop(t, "$browser", exact, []any{"Chrome", "Safari", 3}), "properties.`$browser` in ('Chrome', 'Safari', 3)"},
		{"exact one-element list", prop(t, "$browser", exact, []any{"Chrome"}), "properties.`$browser` = 'Chrome'"},
		{"exact empty list", prop(t, "$browser", exact, []any{}), "true"},
		{"is_not", prop(t, "a", isNot, "x"), "properties.`a` != 'x'"},
		{"is_not list", prop(t, "a", isNot, []any{"x", "y"}), "properties.`a` not in ('x', 'y')"},
		{"icontains", prop(t, "$current_url", icontains, "pricing"), "toString(properties.`$current_url`) ilike '%pricing%'"},
		{"icontains list", prop(t, "u", icontains, []any{"a", "B"}), "multiSearchAnyCaseInsensitive(toString(properties.`u`), ['a', 'B']) > 0"},
		{"not_icontains", prop(t, "u", notIcontains, "it's"), `toString(properties.` + "`u`" + `) not ilike '%it\'s%'`},
		{"not_icontains list", prop(t, "u", notIcontains, []any{"a", 1}), "multiSearchAnyCaseInsensitive(toString(properties.`u`), ['a', '1']) = 0"},
		{"regex", prop(t, "email", regex, `@example\.com$`), `ifNull(match(toString(properties.` + "`email`" + `), '@example\\.com$'), false)`},
		{"regex list", prop(t, "e", regex, []any{"^a", "^b"}), "(ifNull(match(toString(properties.`e`), '^a'), false) or ifNull(match(toString(properties.`e`), '^b'), false))"},
		{"not_regex", prop(t, "e", notRegex, "^a"), "ifNull(not match(toString(properties.`e`), '^a'), true)"},
		{"not_regex list", prop(t, "e", notRegex, []any{"^a", "^b"}), "(ifNull(not match(toString(properties.`e`), '^a'), true) and ifNull(not match(toString(properties.`e`), '^b'), true))"},
		{"gt", prop(t, "n", gt, 10), "properties.`n` > 10"},
		{"gt numeric string", prop(t, "n", gt, " 10.5"), "properties.`n` > 10.5"},
		{"gt text", prop(t, "v", gt, "b"), "properties.`v` > 'b'"},
		{"gte", prop(t, "n", gte, -1), "properties.`n` >= -1"},
		{"lt", prop(t, "n", lt, 1e21), "properties.`n` < 1e+21"},
		{"lte", prop(t, "n", lte, 0.1), "properties.`n` <= 0.1"},
		{"gt list", prop(t, "n", gt, []any{1, 2}), "(properties.`n` > 1 or properties.`n` > 2)"},
		{"is_set", prop(t, "a", isSet, nil), "properties.`a` != null"},
		{"is_not_set", prop(t, "a", isNotSet, "ignored"), "properties.`a` = null"},
		{"is_date_before", prop(t, "d", dateBefore, "2024-05-03"), "toDateTime(toString(properties.`d`)) < toDateTime('2024-05-03')"},
		{"is_date_after", prop(t, "d", dateAfter, "2024-05-03T14:30:00Z"), "toDateTime(toString(properties.`d`)) > toDateTime('2024-05-03T14:30:00Z')"},
		{"is_date_before relative", prop(t, "d", dateBefore, "-7d"), "toDateTime(toString(properties.`d`)) < dateAdd('day', -7, now())"},
		{"is_date_after relative weeks", prop(t, "d", dateAfter, "2w"), "toDateTime(toString(properties.`d`)) > dateAdd('day', -14, now())"},
		{"relative minutes", prop(t, "d", dateAfter, "-30M"), "toDateTime(toString(properties.`d`)) > dateAdd('minute', -30, now())"},
		{"relative quarters", prop(t, "d", dateAfter, "-1q"), "toDateTime(toString(properties.`d`)) > dateAdd('month', -3, now())"},
		{"person", personProp(t, "email", icontains, "@acme.com"), "toString(person.properties.`email`) ilike '%@acme.com%'"},
		{"person distinct_id", personProp(t, "distinct_id", exact, "u1"), "distinct_id = 'u1'"},
		{"elements chain", prop(t, "$elements_chain", icontains, "button"), "toString(elements_chain) ilike '%button%'"},
		{"odd key", prop(t, "a`b\\c\n'd", exact, "x"), "properties.`a\\`b\\\\c\\n'd` = 'x'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := filters.Source(props(tc.p))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Source =\n  %s\nwant\n  %s", got, tc.want)
			}
			if _, err := filters.Compile(props(tc.p)); err != nil {
				t.Errorf("Compile: %v", err)
			}
		})
	}
}

func TestSourceStructure(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *hogwirev1.Filters
		want string
	}{
		{"nil", nil, "true"},
		{"empty", &hogwirev1.Filters{}, "true"},
		{"blank expression", &hogwirev1.Filters{Expression: "  \n"}, "true"},
		{"one event", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview"}}}, "event = '$pageview'"},
		{"events or-ed", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview"}, {Event: "signed up"}}},
			"(event = '$pageview' or event = 'signed up')"},
		{"event with properties", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{
			{Event: "$pageview", Properties: []*hogwirev1.PropertyFilter{prop(t, "$browser", exact, "Chrome"), prop(t, "n", gt, 1)}},
			{Event: "signed up"},
		}}, "((event = '$pageview' and properties.`$browser` = 'Chrome' and properties.`n` > 1) or event = 'signed up')"},
		{"any event", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{}}}, "true"},
		{"any event with properties", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Properties: []*hogwirev1.PropertyFilter{prop(t, "a", isSet, nil)}}}},
			"properties.`a` != null"},
		{"everything", &hogwirev1.Filters{
			Properties: []*hogwirev1.PropertyFilter{prop(t, "a", isSet, nil), personProp(t, "plan", exact, "pro")},
			Events:     []*hogwirev1.EventFilter{{Event: "x"}, {Event: "y"}},
			Expression: "properties.n > 1 -- a comment",
		}, "(properties.`a` != null and person.properties.`plan` = 'pro' and (event = 'x' or event = 'y') and (\nproperties.n > 1 -- a comment\n))"},
		{"expression alone", &hogwirev1.Filters{Expression: "event = 'a'"}, "(\nevent = 'a'\n)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := filters.Source(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Source =\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}

func TestCompileEmptyIsTrue(t *testing.T) {
	b, err := filters.Compile(&hogwirev1.Filters{})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `["_H",1,29,38]` {
		t.Errorf("Compile(empty) = %s, want [\"_H\",1,29,38] (TRUE, RETURN)", b)
	}
}

// globals builds filter globals the way the data plane does.
func globals(event string, properties map[string]any, personProps map[string]any) map[string]any {
	g := map[string]any{
		"event":          event,
		"uuid":           "0190f7f0-0000-7000-8000-000000000001",
		"distinct_id":    "user-1",
		"timestamp":      "2024-05-03T12:00:00.000Z",
		"properties":     properties,
		"elements_chain": "",
		"person":         nil,
	}
	if personProps != nil {
		g["person"] = map[string]any{"id": "0190f7f0-0000-7000-8000-0000000000aa", "properties": personProps}
	}
	return g
}

var now = time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)

// run evaluates compiled filters against globals; a match is exactly true,
// as in the data plane.
func run(t testing.TB, bc []byte, g map[string]any) bool {
	t.Helper()
	return runValue(t, bc, vm.FromGo(g))
}

func runValue(t testing.TB, bc []byte, g vm.Value) bool {
	t.Helper()
	bp, err := bytecode.Decode(bc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := vm.Link(bp, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	m := vm.New(vm.Options{Now: func() time.Time { return now }})
	res, err := m.Run(context.Background(), p, g)
	if err != nil {
		t.Fatalf("running filter: %v", err)
	}
	if !res.Finished {
		t.Fatal("filter did not finish")
	}
	return res.Value.Kind() == vm.KindBool && res.Value.AsBool()
}

func matches(t testing.TB, f *hogwirev1.Filters, g map[string]any) bool {
	t.Helper()
	bc, err := filters.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, bc, g)
}

func TestOperatorBehaviour(t *testing.T) {
	ev := globals("$pageview", map[string]any{
		"$browser":     "Chrome",
		"$current_url": "https://example.com/Pricing?x=1",
		"count":        7,
		"count_str":    "7",
		"price":        12.5,
		"flag":         true,
		"flag_str":     "true",
		"empty":        "",
		"nothing":      nil,
		"email":        "ann@example.com",
		"signup":       "2024-05-01T10:00:00Z",
		"signup_day":   "2024-05-01",
		"odd key's":    "yes",
	}, map[string]any{"plan": "pro", "email": "ann@acme.com", "age": 30})

	for _, tc := range []struct {
		name string
		p    *hogwirev1.PropertyFilter
		want bool
	}{
		{"exact string", prop(t, "$browser", exact, "Chrome"), true},
		{"exact is case-sensitive", prop(t, "$browser", exact, "chrome"), false},
		{"exact number vs number", prop(t, "count", exact, 7), true},
		{"exact number vs numeric string property", prop(t, "count_str", exact, 7), true},
		{"exact string vs number property", prop(t, "count", exact, "7"), true},
		{"exact bool vs bool property", prop(t, "flag", exact, true), true},
		{"exact bool vs 'true' property", prop(t, "flag_str", exact, true), true},
		{"exact false vs true property", prop(t, "flag", exact, false), false},
		{"exact any of", prop(t, "$browser", exact, []any{"Safari", "Chrome"}), true},
		{"exact none of", prop(t, "$browser", exact, []any{"Safari", "Firefox"}), false},
		{"exact missing", prop(t, "missing", exact, "x"), false},
		{"exact empty list", prop(t, "$browser", exact, []any{}), true},
		{"is_not", prop(t, "$browser", isNot, "Safari"), true},
		{"is_not same", prop(t, "$browser", isNot, "Chrome"), false},
		{"is_not list", prop(t, "$browser", isNot, []any{"Safari", "Firefox"}), true},
		{"is_not list containing it", prop(t, "$browser", isNot, []any{"Safari", "Chrome"}), false},
		{"is_not missing", prop(t, "missing", isNot, "x"), true},
		{"icontains", prop(t, "$current_url", icontains, "pricing"), true},
		{"icontains absent", prop(t, "$current_url", icontains, "about"), false},
		{"icontains number", prop(t, "count", icontains, 7), true},
		{"icontains any of", prop(t, "$current_url", icontains, []any{"about", "PRICING"}), true},
		{"icontains none of", prop(t, "$current_url", icontains, []any{"about", "blog"}), false},
		{"icontains wildcard", prop(t, "$current_url", icontains, "example%pricing"), true},
		{"not_icontains", prop(t, "$current_url", notIcontains, "about"), true},
		{"not_icontains present", prop(t, "$current_url", notIcontains, "PRICING"), false},
		{"not_icontains list", prop(t, "$current_url", notIcontains, []any{"about", "blog"}), true},
		{"not_icontains list present", prop(t, "$current_url", notIcontains, []any{"about", "pricing"}), false},
		{"regex", prop(t, "email", regex, `@example\.com$`), true},
		{"regex no match", prop(t, "email", regex, `@acme\.com$`), false},
		{"regex case flag", prop(t, "$browser", regex, `(?i)^chrome$`), true},
		{"regex any of", prop(t, "email", regex, []any{"^bob", "^ann"}), true},
		{"not_regex", prop(t, "email", notRegex, `@acme\.com$`), true},
		{"not_regex matching", prop(t, "email", notRegex, `@example`), false},
		{"not_regex all of", prop(t, "email", notRegex, []any{"^bob", "^ann"}), false},
		{"gt", prop(t, "count", gt, 5), true},
		{"gt equal", prop(t, "count", gt, 7), false},
		{"gt numeric string property", prop(t, "count_str", gt, 10), false},
		{"gt numeric string value vs numeric string property", prop(t, "count_str", gt, "10"), false},
		{"gte equal", prop(t, "count", gte, 7), true},
		{"lt float", prop(t, "price", lt, 12.6), true},
		{"lt", prop(t, "count", lt, 7), false},
		{"lte equal", prop(t, "price", lte, "12.5"), true},
		{"gt missing", prop(t, "missing", gt, 1), false},
		{"is_set", prop(t, "$browser", isSet, nil), true},
		{"is_set empty string", prop(t, "empty", isSet, nil), true},
		{"is_set null", prop(t, "nothing", isSet, nil), false},
		{"is_set missing", prop(t, "missing", isSet, nil), false},
		{"is_not_set missing", prop(t, "missing", isNotSet, nil), true},
		{"is_not_set null", prop(t, "nothing", isNotSet, nil), true},
		{"is_not_set present", prop(t, "$browser", isNotSet, nil), false},
		{"is_date_before", prop(t, "signup", dateBefore, "2024-05-02"), true},
		{"is_date_before later", prop(t, "signup", dateBefore, "2024-05-01T09:00:00Z"), false},
		{"is_date_after", prop(t, "signup", dateAfter, "2024-05-01T09:59:59Z"), true},
		{"is_date_after day", prop(t, "signup_day", dateAfter, "2024-04-30"), true},
		{"is_date_after not a date", prop(t, "$browser", dateAfter, "2024-04-30"), false},
		{"is_date_before missing", prop(t, "missing", dateBefore, "2030-01-01"), false},
		{"is_date_after relative", prop(t, "signup", dateAfter, "-10d"), true},
		{"is_date_before relative", prop(t, "signup", dateBefore, "-7d"), true},
		{"is_date_before relative earlier", prop(t, "signup", dateBefore, "-10d"), false},
		{"is_date_before relative hours", prop(t, "signup", dateBefore, "-24h"), true},
		{"person exact", personProp(t, "plan", exact, "pro"), true},
		{"person icontains", personProp(t, "email", icontains, "@ACME"), true},
		{"person gt", personProp(t, "age", gt, 40), false},
		{"person missing", personProp(t, "missing", isSet, nil), false},
		{"person distinct_id", personProp(t, "distinct_id", exact, "user-1"), true},
		{"odd key", prop(t, "odd key's", exact, "yes"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matches(t, props(tc.p), ev); got != tc.want {
				src, _ := filters.Source(props(tc.p))
				t.Errorf("match = %v, want %v; source: %s", got, tc.want, src)
			}
		})
	}
}

func TestPersonNull(t *testing.T) {
	ev := globals("$pageview", map[string]any{}, nil)
	if matches(t, props(personProp(t, "plan", exact, "pro")), ev) {
		t.Error("person filter matched an event without a person")
	}
	if !matches(t, props(personProp(t, "plan", isNotSet, nil)), ev) {
		t.Error("is_not_set on a person property did not match an event without a person")
	}
}

func TestEventsAndProperties(t *testing.T) {
	f := &hogwirev1.Filters{
		Properties: []*hogwirev1.PropertyFilter{personProp(t, "plan", exact, "pro")},
		Events: []*hogwirev1.EventFilter{
			{Event: "$pageview", Properties: []*hogwirev1.PropertyFilter{prop(t, "$browser", exact, "Chrome")}},
			{Event: "signed up"},
		},
		Expression: "properties.count > 1",
	}
	pro := map[string]any{"plan": "pro"}
	for _, tc := range []struct {
		name string
		g    map[string]any
		want bool
	}{
		{"pageview chrome pro", globals("$pageview", map[string]any{"$browser": "Chrome", "count": 2}, pro), true},
		{"pageview safari", globals("$pageview", map[string]any{"$browser": "Safari", "count": 2}, pro), false},
		{"signed up any browser", globals("signed up", map[string]any{"count": 2}, pro), true},
		{"other event", globals("$autocapture", map[string]any{"$browser": "Chrome", "count": 2}, pro), false},
		{"free plan", globals("signed up", map[string]any{"count": 2}, map[string]any{"plan": "free"}), false},
		{"expression false", globals("signed up", map[string]any{"count": 1}, pro), false},
	} {
		if got := matches(t, f, tc.g); got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !matches(t, nil, globals("anything", nil, nil)) {
		t.Error("nil filters do not match everything")
	}
}

func TestExpressionMustBeTrue(t *testing.T) {
	g := globals("e", map[string]any{"name": "x"}, nil)
	if matches(t, &hogwirev1.Filters{Expression: "properties.name"}, g) {
		t.Error("a truthy but non-boolean expression matched; PostHog requires exactly true")
	}
	if !matches(t, &hogwirev1.Filters{Expression: "properties.name = 'x'"}, g) {
		t.Error("a true expression did not match")
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		f         *hogwirev1.Filters
		field     string
		msg       string
		line, col int
	}{
		{"missing key", props(prop(t, "", exact, "x")), "filters.properties[0].key", "required", 0, 0},
		{"missing operator", props(prop(t, "a", 0, "x")), "filters.properties[0].operator", "required", 0, 0},
		{"unknown operator", props(prop(t, "a", 99, "x")), "filters.properties[0].operator", "unknown operator 99", 0, 0},
		{"unknown scope", props(&hogwirev1.PropertyFilter{Key: "a", Operator: exact, Value: val(t, "x"), Scope: 7}), "filters.properties[0].scope", "unknown scope", 0, 0},
		{"missing value", props(prop(t, "a", isSet, nil), prop(t, "a", exact, nil)), "filters.properties[1].value", "required for operator exact", 0, 0},
		{"null value", props(&hogwirev1.PropertyFilter{Key: "a", Operator: gt, Value: structpb.NewNullValue()}), "filters.properties[0].value", "required for operator gt", 0, 0},
		{"object value", props(prop(t, "a", exact, map[string]any{"x": 1})), "filters.properties[0].value", "not an object", 0, 0},
		{"nested list", props(prop(t, "a", exact, []any{"x", []any{1}})), "filters.properties[0].value[1]", "must be a string", 0, 0},
		{"bad regex", props(prop(t, "a", regex, "(")), "filters.properties[0].value", "invalid regular expression", 0, 0},
		{"bad regex in list", props(prop(t, "a", notRegex, []any{"ok", "[z-a]"})), "filters.properties[0].value[1]", "invalid regular expression", 0, 0},
		{"bad date", props(prop(t, "a", dateBefore, "yesterday")), "filters.properties[0].value", `"yesterday" is not a date`, 0, 0},
		{"date number", props(prop(t, "a", dateAfter, 5)), "filters.properties[0].value", "must be a date string", 0, 0},
		{"event property", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "a"}, {Event: "b", Properties: []*hogwirev1.PropertyFilter{prop(t, "x", exact, "1"), prop(t, "y", 0, "1")}}}},
			"filters.events[1].properties[1].operator", "required", 0, 0},
		{"expression syntax", &hogwirev1.Filters{Expression: "event = 'a' and\n  (properties.x = "}, "filters.expression", "", 2, 0},
		{"expression unknown function", &hogwirev1.Filters{Expression: "fetch('x')"}, "filters.expression", "fetch", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := filters.Compile(tc.f)
			var fe *filters.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v (%T), want *filters.FieldError", err, err)
			}
			if fe.Field != tc.field || fe.FieldPath() != tc.field {
				t.Errorf("Field = %q, want %q", fe.Field, tc.field)
			}
			if !strings.Contains(fe.Msg, tc.msg) {
				t.Errorf("Msg = %q, want it to contain %q", fe.Msg, tc.msg)
			}
			if tc.line != 0 && fe.Line != tc.line {
				t.Errorf("Line = %d, want %d", fe.Line, tc.line)
			}
			if tc.col != 0 && fe.Column != tc.col {
				t.Errorf("Column = %d, want %d", fe.Column, tc.col)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Errorf("Error() = %q does not start with the field", err.Error())
			}
		})
	}
}

func TestEventNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     *hogwirev1.Filters
		names []string
		all   bool
	}{
		{"nil", nil, nil, true},
		{"no events", props(prop(t, "a", isSet, nil)), nil, true},
		{"names", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "b"}, {Event: "a"}, {Event: "b"}}}, []string{"a", "b"}, false},
		{"any event among names", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "b"}, {}}}, nil, true},
	} {
		names, all := filters.EventNames(tc.f)
		if all != tc.all || strings.Join(names, ",") != strings.Join(tc.names, ",") {
			t.Errorf("%s: EventNames = %q, %v; want %q, %v", tc.name, names, all, tc.names, tc.all)
		}
	}
}

func BenchmarkFilter(b *testing.B) {
	f := &hogwirev1.Filters{
		Properties: []*hogwirev1.PropertyFilter{personProp(b, "plan", exact, []any{"pro", "enterprise"})},
		Events: []*hogwirev1.EventFilter{
			{Event: "$pageview", Properties: []*hogwirev1.PropertyFilter{prop(b, "$current_url", icontains, "pricing")}},
			{Event: "signed up"},
		},
	}
	bc, err := filters.Compile(f)
	if err != nil {
		b.Fatal(err)
	}
	bp, _ := bytecode.Decode(bc)
	p, _ := vm.Link(bp, stl.Library())
	m := vm.New(vm.Options{})
	g := vm.FromGo(globals("$pageview", map[string]any{"$current_url": "https://example.com/pricing", "$browser": "Chrome", "a": 1, "b": "two"},
		map[string]any{"plan": "pro", "email": "ann@example.com"}))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := m.Run(ctx, p, g)
		if err != nil || !res.Value.AsBool() {
			b.Fatalf("run: %v %v", res.Value, err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	f := &hogwirev1.Filters{
		Properties: []*hogwirev1.PropertyFilter{personProp(b, "plan", exact, []any{"pro", "enterprise"})},
		Events: []*hogwirev1.EventFilter{
			{Event: "$pageview", Properties: []*hogwirev1.PropertyFilter{prop(b, "$current_url", icontains, "pricing")}},
			{Event: "signed up"},
		},
		Expression: "properties.count > 1",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := filters.Compile(f); err != nil {
			b.Fatal(err)
		}
	}
}

// When NamesDecide says the names decide, EventNames gives exactly the
// compiled filters' answer for any event, so callers may skip the VM.
func TestNamesDecide(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *hogwirev1.Filters
		want bool
	}{
		{"nil", nil, true},
		{"empty", &hogwirev1.Filters{}, true},
		{"names", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "b"}, {Event: "a"}}}, true},
		{"any event among names", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "b"}, {}}}, true},
		{"properties", props(prop(t, "a", isSet, nil)), false},
		{"event properties", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "a", Properties: []*hogwirev1.PropertyFilter{prop(t, "x", isSet, nil)}}}}, false},
		{"expression", &hogwirev1.Filters{Expression: "event = 'a'"}, false},
	} {
		if got := filters.NamesDecide(tc.f); got != tc.want {
			t.Errorf("%s: NamesDecide = %v, want %v", tc.name, got, tc.want)
			continue
		}
		if !tc.want {
			continue
		}
		names, all := filters.EventNames(tc.f)
		for _, ev := range []string{"a", "b", "c", ""} {
			if got, want := all || slices.Contains(names, ev), matches(t, tc.f, globals(ev, nil, nil)); got != want {
				t.Errorf("%s: event %q: the names say %v, the bytecode %v", tc.name, ev, got, want)
			}
		}
	}
}
