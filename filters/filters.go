// Package filters compiles a destination's filters to one Hog expression,
// the way PostHog compiles a HogFunction's filters
// (posthog/cdp/filters.py with HogQL's property_to_expr).
//
// # Semantics
//
// An event matches when it matches
//   - every entry of Filters.properties (AND),
//   - any entry of Filters.events (OR), or there are no entries: an entry
//     with an empty event name matches every event, otherwise it matches
//     event = '<name>'; the entry's own property filters are ANDed onto it,
//   - and Filters.expression, when set.
//
// Empty filters compile to `true`. The data plane treats only a result
// that is exactly boolean true as a match, as PostHog does, so a free
// expression on its own must evaluate to true (not merely truthy).
//
// # Operators
//
// x is the property: properties.`key` for event properties (the key
// $elements_chain reads the elements_chain column instead, as in PostHog),
// person.properties.`key` for person properties (the person key
// distinct_id reads the event's distinct_id: PostHog reads it from the
// person's distinct-id row, which is the event's).
//
//	exact           x = v             list: x in (v1, v2, …)
//	is_not          x != v            list: x not in (v1, v2, …)
//	icontains       toString(x) ilike '%v%'
//	                                  list: multiSearchAnyCaseInsensitive(toString(x), [v1, …]) > 0
//	not_icontains   toString(x) not ilike '%v%'
//	                                  list: multiSearchAnyCaseInsensitive(toString(x), [v1, …]) = 0
//	regex           ifNull(match(toString(x), v), false)        list: any
//	not_regex       ifNull(not match(toString(x), v), true)     list: all
//	gt gte lt lte   x > v …                                      list: any
//	is_set          x != null
//	is_not_set      x = null
//	is_date_before  toDateTime(toString(x)) < toDateTime(v)      list: any
//	is_date_after   toDateTime(toString(x)) > toDateTime(v)      list: any
//
// A one-element list is its element; an empty list matches everything. As
// in PostHog, % and _ inside an icontains value are LIKE wildcards, a
// boolean value is compared as the string 'true' or 'false' (Hog compares
// a boolean with a string by the string being 'true'), and null is never
// equal to a value. Comparison follows Hog: a number and a string compare
// as numbers, so properties.count > 5 holds for "7".
//
// Two deliberate differences from PostHog: a numeric string given to
// gt/gte/lt/lte is compiled as a number (PostHog keeps the string, and
// two strings compare as text, so '9' > '10'); and a relative date such
// as "-7d" (s, M for minutes, h, d, w, m for months, q, y) is evaluated
// when the filter runs, as dateAdd('day', -7, now()), where PostHog
// resolves it once when the filter is saved. Absolute dates without a zone
// are UTC.
//
// # Filter globals
//
// The expression reads the globals PostHog gives filters, which mirror
// ClickHouse's events table rather than the invocation globals given to
// destination code. The data plane must build exactly these; Globals does:
//
//	event                    string: the event name, e.g. "$pageview"
//	uuid                     string
//	distinct_id              string
//	timestamp                string: ISO 8601
//	properties               object: the event's properties
//	elements_chain           string ("" when absent)
//	elements_chain_href      string: the first href="…" in elements_chain
//	elements_chain_texts     array of strings: every text="…", distinct
//	elements_chain_ids       array of strings: every attr_id="…", distinct
//	elements_chain_elements  array of strings: the tag names among a, button,
//	                         form, input, select, textarea, label, distinct
//	person                   {id, properties} or null
//	pdi                      {distinct_id, person_id, person: {id, properties}} or null
//	$group_0 … $group_4      string: group keys ("" when absent)
//	group_0 … group_4        {properties}
//	variables                object (null when absent)
//
// Every event-scoped and person-scoped property filter reads only event,
// properties, elements_chain, person.properties and distinct_id; the rest
// is there for free expressions written for PostHog.
package filters

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/hogvm/compiler"
)

// FieldError is an error in one field of the filters. Field is a path
// such as "filters.properties[2].operator" or "filters.expression"; Line
// and Column (1-based, 0 when not applicable) locate a compile error in
// the expression.
type FieldError struct {
	Field        string
	Line, Column int
	Msg          string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d, column %d: %s", e.Field, e.Line, e.Column, e.Msg)
	}
	return e.Field + ": " + e.Msg
}

// FieldPath returns Field; the control plane names the field of a
// google.rpc.BadRequest with it.
func (e *FieldError) FieldPath() string { return e.Field }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Compile returns the bytecode (PostHog's JSON form, ["_H", 1, …]) of the
// expression Source builds. Errors are *FieldError.
func Compile(f *hogwirev1.Filters) ([]byte, error) {
	src, err := Source(f)
	if err != nil {
		return nil, err
	}
	prog, err := compiler.CompileExpr(src, compiler.Options{})
	if err != nil {
		// Every piece was checked by Source, so this is a bug here.
		return nil, fmt.Errorf("filters: compiling the generated expression %q: %w", src, err)
	}
	return json.Marshal(prog)
}

// Source returns the filters as one Hog expression. Errors are
// *FieldError; the free expression is compiled on its own to check it.
func Source(f *hogwirev1.Filters) (string, error) {
	if f == nil {
		return "true", nil
	}
	var parts []string
	for i, p := range f.GetProperties() {
		s, err := property(p, fmt.Sprintf("filters.properties[%d]", i))
		if err != nil {
			return "", err
		}
		parts = append(parts, s)
	}
	if len(f.GetEvents()) > 0 {
		var alts []string
		for i, e := range f.GetEvents() {
			path := fmt.Sprintf("filters.events[%d]", i)
			var conj []string
			if e.GetEvent() != "" {
				conj = append(conj, "event = "+QuoteString(e.GetEvent()))
			}
			for j, p := range e.GetProperties() {
				s, err := property(p, fmt.Sprintf("%s.properties[%d]", path, j))
				if err != nil {
					return "", err
				}
				conj = append(conj, s)
			}
			alts = append(alts, join(conj, " and ", "true"))
		}
		parts = append(parts, join(alts, " or ", "true"))
	}
	if expr := f.GetExpression(); strings.TrimSpace(expr) != "" {
		if _, err := compiler.CompileExpr(expr, compiler.Options{}); err != nil {
			fe := &FieldError{Field: "filters.expression", Msg: err.Error()}
			if ce, ok := err.(*compiler.Error); ok {
				fe.Line, fe.Column, fe.Msg = ce.Line, ce.Column, ce.Msg
			}
			return "", fe
		}
		// On lines of its own, so that a trailing -- comment cannot swallow
		// the closing parenthesis.
		parts = append(parts, "(\n"+expr+"\n)")
	}
	return join(parts, " and ", "true"), nil
}

// join joins terms with sep; with more than one term each compound term
// is parenthesized, and so is the whole.
func join(terms []string, sep, empty string) string {
	switch len(terms) {
	case 0:
		return empty
	case 1:
		return terms[0]
	}
	var b strings.Builder
	b.WriteByte('(')
	for i, t := range terms {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(t)
	}
	b.WriteByte(')')
	return b.String()
}

// EventNames returns the event names the filters can match, sorted and
// without repeats, or all=true when any event can match. The names are
// those of the event entries (all when there are none, or one without a
// name), narrowed to those a top-level conjunct of the expression
// requires: event = 'name' or event in ('a', 'b'). The data plane uses it
// to skip destinations without running their filters; properties and the
// rest of the expression only narrow the match further. names may be
// empty with all=false: the filters match no event.
func EventNames(f *hogwirev1.Filters) (names []string, all bool) {
	names, all = entryNames(f)
	e := expression(f)
	if e == nil {
		return names, all
	}
	required, ok := exprEventNames(e)
	switch {
	case !ok:
		return names, all
	case all:
		return required, false
	}
	return slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(required, n) }), false
}

// entryNames is EventNames from the event entries alone.
func entryNames(f *hogwirev1.Filters) (names []string, all bool) {
	if len(f.GetEvents()) == 0 {
		return nil, true
	}
	for _, e := range f.GetEvents() {
		if e.GetEvent() == "" {
			return nil, true
		}
		names = append(names, e.GetEvent())
	}
	slices.Sort(names)
	return slices.Compact(names), false
}

// NamesDecide reports whether the filters test nothing but the event's
// name, so that EventNames decides a match exactly and the bytecode need
// not run: no property filter, no expression, no event filter with
// properties.
func NamesDecide(f *hogwirev1.Filters) bool {
	if len(f.GetProperties()) > 0 || f.GetExpression() != "" {
		return false
	}
	for _, e := range f.GetEvents() {
		if len(e.GetProperties()) > 0 {
			return false
		}
	}
	return true
}

var opNames = map[hogwirev1.PropertyOperator]string{
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT:          "exact",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT:         "is_not",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_ICONTAINS:      "icontains",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_ICONTAINS:  "not_icontains",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_REGEX:          "regex",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_REGEX:      "not_regex",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GT:             "gt",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GTE:            "gte",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_LT:             "lt",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_LTE:            "lte",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_SET:         "is_set",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT_SET:     "is_not_set",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_DATE_BEFORE: "is_date_before",
	hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_DATE_AFTER:  "is_date_after",
}

// property compiles one property filter; path names it in errors.
func property(p *hogwirev1.PropertyFilter, path string) (string, error) {
	if p.GetKey() == "" {
		return "", fieldErr(path+".key", "is required")
	}
	var x string
	switch p.GetScope() {
	case hogwirev1.PropertyScope_PROPERTY_SCOPE_UNSPECIFIED, hogwirev1.PropertyScope_PROPERTY_SCOPE_EVENT:
		if p.GetKey() == "$elements_chain" {
			x = "elements_chain"
		} else {
			x = "properties." + QuoteIdent(p.GetKey())
		}
	case hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON:
		if p.GetKey() == "distinct_id" {
			x = "distinct_id"
		} else {
			x = "person.properties." + QuoteIdent(p.GetKey())
		}
	default:
		return "", fieldErr(path+".scope", "unknown scope %d", p.GetScope())
	}
	op := p.GetOperator()
	name, ok := opNames[op]
	if !ok {
		if op == hogwirev1.PropertyOperator_PROPERTY_OPERATOR_UNSPECIFIED {
			return "", fieldErr(path+".operator", "is required")
		}
		return "", fieldErr(path+".operator", "unknown operator %d", op)
	}
	switch op {
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_SET:
		return x + " != null", nil
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT_SET:
		return x + " = null", nil
	}

	vpath := path + ".value"
	v := p.GetValue()
	var vals []*structpb.Value
	isList := false
	switch v.GetKind().(type) {
	case nil, *structpb.Value_NullValue:
		return "", fieldErr(vpath, "is required for operator %s", name)
	case *structpb.Value_StructValue:
		return "", fieldErr(vpath, "must be a string, a number, a boolean or a list of them, not an object")
	case *structpb.Value_ListValue:
		isList = true
		vals = v.GetListValue().GetValues()
		for i, e := range vals {
			switch e.GetKind().(type) {
			case *structpb.Value_StringValue, *structpb.Value_NumberValue, *structpb.Value_BoolValue:
			default:
				return "", fieldErr(fmt.Sprintf("%s[%d]", vpath, i), "must be a string, a number or a boolean")
			}
		}
	default:
		vals = []*structpb.Value{v}
	}
	if isList && len(vals) == 0 {
		return "true", nil
	}
	// Check every value and render it before building the expression.
	lits := make([]string, len(vals))
	for i, e := range vals {
		ep := vpath
		if isList {
			ep = fmt.Sprintf("%s[%d]", vpath, i)
		}
		lit, err := literal(op, e, ep)
		if err != nil {
			return "", err
		}
		lits[i] = lit
	}

	switch op {
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT, hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT:
		eq, in := " = ", " in "
		if op == hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT {
			eq, in = " != ", " not in "
		}
		if len(lits) == 1 {
			return x + eq + lits[0], nil
		}
		return x + in + "(" + strings.Join(lits, ", ") + ")", nil
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_ICONTAINS, hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_ICONTAINS:
		neg := op == hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_ICONTAINS
		if len(vals) == 1 {
			like := " ilike "
			if neg {
				like = " not ilike "
			}
			return "toString(" + x + ")" + like + QuoteString("%"+plain(vals[0])+"%"), nil
		}
		strs := make([]string, len(vals))
		for i, e := range vals {
			strs[i] = QuoteString(plain(e))
		}
		cmp := " > 0"
		if neg {
			cmp = " = 0"
		}
		return "multiSearchAnyCaseInsensitive(toString(" + x + "), [" + strings.Join(strs, ", ") + "])" + cmp, nil
	}

	terms := make([]string, len(lits))
	for i, lit := range lits {
		switch op {
		case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_REGEX:
			terms[i] = "ifNull(match(toString(" + x + "), " + lit + "), false)"
		case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_REGEX:
			terms[i] = "ifNull(not match(toString(" + x + "), " + lit + "), true)"
		case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GT:
			terms[i] = x + " > " + lit
		case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GTE:
			terms[i] = x + " >= " + lit
		case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_LT:
			terms[i] = x + " < " + lit
		case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_LTE:
			terms[i] = x + " <= " + lit
		case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_DATE_BEFORE:
			terms[i] = "toDateTime(toString(" + x + ")) < " + lit
		case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_DATE_AFTER:
			terms[i] = "toDateTime(toString(" + x + ")) > " + lit
		}
	}
	if op == hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_REGEX {
		return join(terms, " and ", "true"), nil
	}
	return join(terms, " or ", "true"), nil
}

// literal renders one filter value as a Hog literal for op, checking it.
func literal(op hogwirev1.PropertyOperator, v *structpb.Value, path string) (string, error) {
	switch op {
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_REGEX, hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_REGEX:
		pat := plain(v)
		if _, err := regexp.Compile(pat); err != nil {
			return "", fieldErr(path, "invalid regular expression (RE2 syntax): %v", err)
		}
		return QuoteString(pat), nil
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_DATE_BEFORE, hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_DATE_AFTER:
		s, ok := v.GetKind().(*structpb.Value_StringValue)
		if !ok {
			return "", fieldErr(path, "must be a date string such as \"2024-05-03\", \"2024-05-03T14:30:00Z\" or \"-7d\"")
		}
		return dateLiteral(s.StringValue, path)
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GT, hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GTE,
		hogwirev1.PropertyOperator_PROPERTY_OPERATOR_LT, hogwirev1.PropertyOperator_PROPERTY_OPERATOR_LTE:
		if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(s.StringValue), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return number(f), nil
			}
		}
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		if math.IsNaN(k.NumberValue) || math.IsInf(k.NumberValue, 0) {
			return "", fieldErr(path, "must be a finite number")
		}
		return number(k.NumberValue), nil
	case *structpb.Value_BoolValue:
		// PostHog compares booleans as the strings 'true'/'false'; Hog then
		// matches a boolean property against them too.
		return QuoteString(strconv.FormatBool(k.BoolValue)), nil
	}
	return QuoteString(v.GetStringValue()), nil
}

// plain returns a scalar value as text, numbers formatted as Hog prints
// them.
func plain(v *structpb.Value) string {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		return number(k.NumberValue)
	case *structpb.Value_BoolValue:
		return strconv.FormatBool(k.BoolValue)
	}
	return v.GetStringValue()
}

// number formats f as a Hog number literal: integral values as integers,
// since JSON gives every number as a float.
func number(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

var (
	// absoluteDate is the date-like grammar Hog's toDateTime accepts.
	absoluteDate = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?(?:Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$`)
	// relativeDate is PostHog's relative date syntax, e.g. "-7d".
	relativeDate = regexp.MustCompile(`^-?([0-9]+)([sMhHdDwWmqQyY])$`)
)

// dateUnits maps PostHog's relative date units to dateAdd units and a
// multiplier.
var dateUnits = map[string]struct {
	unit string
	mul  int64
}{
	"s": {"second", 1}, "M": {"minute", 1}, "h": {"hour", 1}, "H": {"hour", 1},
	"d": {"day", 1}, "D": {"day", 1}, "w": {"day", 7}, "W": {"day", 7},
	"m": {"month", 1}, "q": {"month", 3}, "Q": {"month", 3}, "y": {"month", 12}, "Y": {"month", 12},
}

func dateLiteral(s, path string) (string, error) {
	t := strings.TrimSpace(s)
	if absoluteDate.MatchString(t) {
		return "toDateTime(" + QuoteString(t) + ")", nil
	}
	if m := relativeDate.FindStringSubmatch(t); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err == nil && n <= 1_000_000 {
			u := dateUnits[m[2]]
			return fmt.Sprintf("dateAdd(%s, %d, now())", QuoteString(u.unit), -n*u.mul), nil
		}
	}
	return "", fieldErr(path, "%q is not a date: want e.g. \"2024-05-03\", \"2024-05-03T14:30:00Z\" or a relative date such as \"-7d\"", s)
}
