package filters

import (
	"math"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// Index selects, among many filters, those an event may match, by the
// property tests PostHog's filter builder produces most: a property equal
// to a value or to one of a list (exact), and a property that is set
// (is_set), on event or person properties, whether built or written the
// same way in the free expression. Each filters' items are kept
// under one such test that the filters require (see Requirement); an event
// whose property cannot pass it never sees them. Filters without a
// usable test are always candidates. The index only rules out: the
// candidates' filters must still run, and decide.
//
// An Index is built once (Add) and then read by any number of goroutines.
type Index[T comparable] struct {
	fields  []*indexField[T]
	byField map[fieldKey]*indexField[T]
	// rest are the items without an indexed requirement.
	rest []T
	n    int
}

type fieldKey struct {
	person bool
	key    string
}

// indexField holds the items whose requirement reads one property.
type indexField[T comparable] struct {
	fieldKey
	// byString holds the items requiring the property to equal a string
	// literal (or to be one of a list of them), byNumber those whose
	// literals are numbers. strNumber holds the byString items again under
	// the number Hog's = makes of their literal when it meets a number
	// (`x = '5'` holds for x = 5; a list's `in` does not convert, but a
	// candidate too many costs only its filter run).
	byString  map[string][]T
	byNumber  map[float64][]T
	strNumber map[float64][]T
	// set holds the items requiring only that the property be set, and
	// mixed those whose list holds both strings and numbers: both are
	// candidates for any value but null.
	set, mixed []T
	// all is every item of the field, the candidates when the property's
	// value is of a kind the maps cannot decide for (a boolean, a list, an
	// object).
	all []T
}

// Add indexes item under the filters f.
func (ix *Index[T]) Add(f *hogwirev1.Filters, item T) {
	r, ok := Requirement(f)
	ix.AddNeed(r, ok, item)
}

// AddNeed indexes item under what Requirement returned for its filters
// (ok false: nothing), for callers that keep it across builds: reading a
// free expression parses it.
func (ix *Index[T]) AddNeed(r Need, ok bool, item T) {
	ix.n++
	if !ok {
		ix.rest = append(ix.rest, item)
		return
	}
	k := fieldKey{person: r.Person, key: r.Key}
	fl := ix.byField[k]
	if fl == nil {
		if ix.byField == nil {
			ix.byField = map[fieldKey]*indexField[T]{}
		}
		fl = &indexField[T]{fieldKey: k, byString: map[string][]T{}, byNumber: map[float64][]T{}, strNumber: map[float64][]T{}}
		ix.byField[k] = fl
		ix.fields = append(ix.fields, fl)
	}
	fl.all = append(fl.all, item)
	switch {
	case r.Set:
		fl.set = append(fl.set, item)
		return
	case len(r.Strings) > 0 && len(r.Numbers) > 0:
		fl.mixed = append(fl.mixed, item)
		return
	}
	// An item is appended once per map key, its literals one after the
	// other: appendOnce drops a repeat ("5" and "5.0" are both 5).
	for _, s := range r.Strings {
		fl.byString[s] = appendOnce(fl.byString[s], item)
		if n := vm.ToNumber(vm.String(s)); !math.IsNaN(n) {
			fl.strNumber[n] = appendOnce(fl.strNumber[n], item)
		}
	}
	for _, n := range r.Numbers {
		fl.byNumber[n] = appendOnce(fl.byNumber[n], item)
	}
}

// appendOnce appends item unless it is already last (a list naming a
// value twice, or "5" and 5).
func appendOnce[T comparable](list []T, item T) []T {
	if len(list) > 0 && list[len(list)-1] == item {
		return list
	}
	return append(list, item)
}

// Len returns the number of items added.
func (ix *Index[T]) Len() int { return ix.n }

// Candidates appends to dst the items whose filters an event with these
// event and person properties may match (nil: none), and returns it. An
// item is appended at most once.
func (ix *Index[T]) Candidates(dst []T, props, person *vm.Dict) []T {
	dst = append(dst, ix.rest...)
	for _, fl := range ix.fields {
		src := props
		if fl.person {
			src = person
		}
		if src == nil {
			continue // null: no exact value or is_set holds
		}
		v, ok := src.GetString(fl.key)
		if !ok {
			continue
		}
		switch v.Kind() {
		case vm.KindNull:
			// A property set to null is not set, and equals nothing.
		case vm.KindString:
			dst = append(dst, fl.set...)
			dst = append(dst, fl.mixed...)
			dst = append(dst, fl.byString[v.AsString()]...)
			if len(fl.byNumber) > 0 {
				if n := vm.ToNumber(v); !math.IsNaN(n) {
					dst = append(dst, fl.byNumber[n]...)
				}
			}
		case vm.KindNumber:
			dst = append(dst, fl.set...)
			dst = append(dst, fl.mixed...)
			dst = append(dst, fl.byNumber[v.AsNumber()]...)
			dst = append(dst, fl.strNumber[v.AsNumber()]...)
		default:
			dst = append(dst, fl.all...)
		}
	}
	return dst
}

// Need is one property test an event must pass for some filters to match.
type Need struct {
	// Person reads person properties, otherwise event properties.
	Person bool
	Key    string
	// Set requires only that the property be set (not null); otherwise
	// the property must equal one of Strings or Numbers under the filter's
	// exact operator.
	Set     bool
	Strings []string
	Numbers []float64
}

// Requirement returns a test that every event the filters match passes,
// when the filters have one the Index can use: an exact or is_set
// property filter among the filters' properties, or among those of their
// only event entry, or the same tests written in the free expression as
// a top-level conjunct (see conjunctNeed for the forms read). Exact is
// preferred, as it tells events apart. A property filter is used only
// where the generated expression reads the property as Index does:
// $elements_chain and the person's distinct_id read other fields, and are
// not used.
//
// The filters being a conjunction, an event failing the test makes the
// whole expression false (or an error, where another part of it fails on
// the event: Hog's and evaluates every operand); either way it does not
// match.
func Requirement(f *hogwirev1.Filters) (Need, bool) {
	props := f.GetProperties()
	if evs := f.GetEvents(); len(evs) == 1 {
		props = append(props[:len(props):len(props)], evs[0].GetProperties()...)
	}
	var best Need
	found := false
	for _, p := range props {
		n, ok := need(p)
		if !ok {
			continue
		}
		if !n.Set {
			return n, true
		}
		if !found {
			best, found = n, true
		}
	}
	if e := expression(f); e != nil {
		if ns := exprNeeds(e); len(ns) > 0 && (!found || !ns[0].Set) {
			return ns[0], true
		}
	}
	return best, found
}

// need returns the test of one property filter, if it is one the Index
// can use; it mirrors property.
func need(p *hogwirev1.PropertyFilter) (Need, bool) {
	if p.GetKey() == "" {
		return Need{}, false
	}
	n := Need{Key: p.GetKey()}
	switch p.GetScope() {
	case hogwirev1.PropertyScope_PROPERTY_SCOPE_UNSPECIFIED, hogwirev1.PropertyScope_PROPERTY_SCOPE_EVENT:
		if n.Key == "$elements_chain" {
			return Need{}, false
		}
	case hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON:
		if n.Key == "distinct_id" {
			return Need{}, false
		}
		n.Person = true
	default:
		return Need{}, false
	}
	switch p.GetOperator() {
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_SET:
		n.Set = true
		return n, true
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT:
	default:
		return Need{}, false
	}
	v := p.GetValue()
	vals := []*structpb.Value{v}
	if l, ok := v.GetKind().(*structpb.Value_ListValue); ok {
		vals = l.ListValue.GetValues()
		if len(vals) == 0 {
			return Need{}, false // an empty list matches everything
		}
	}
	for _, e := range vals {
		switch k := e.GetKind().(type) {
		case *structpb.Value_StringValue:
			n.Strings = append(n.Strings, k.StringValue)
		case *structpb.Value_BoolValue:
			// Compiled as the string 'true' or 'false' (see literal).
			n.Strings = append(n.Strings, plain(e))
		case *structpb.Value_NumberValue:
			if math.IsNaN(k.NumberValue) || math.IsInf(k.NumberValue, 0) {
				return Need{}, false // rejected by Compile
			}
			n.Numbers = append(n.Numbers, k.NumberValue)
		default:
			return Need{}, false
		}
	}
	return n, true
}
