package filters

import (
	"math"
	"slices"
	"strings"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/hogvm/ast"
	"github.com/hogwire/hogwire/hogvm/parser"
)

// expression parses the free expression as Source embeds it, so that the
// tree is the one the filters' bytecode was compiled from. It returns nil
// when there is none, or when it does not parse (Compile rejects such
// filters; nothing is read from them).
func expression(f *hogwirev1.Filters) ast.Expr {
	src := f.GetExpression()
	if strings.TrimSpace(src) == "" {
		return nil
	}
	e, err := parser.ParseExpr("(\n" + src + "\n)")
	if err != nil {
		return nil
	}
	return e
}

// conjuncts calls visit with each operand of e's top-level conjunction
// (e itself when it is not one), through nested ones: `a and (b and c)`
// gives a, b and c. The parser already flattens most nesting; this does
// the rest. Hog's and evaluates every operand and is true only when each
// is truthy, so an event for which one operand is not true (or fails)
// does not match the whole.
func conjuncts(e ast.Expr, visit func(ast.Expr)) {
	if a, ok := e.(*ast.And); ok {
		for _, x := range a.Exprs {
			conjuncts(x, visit)
		}
		return
	}
	visit(e)
}

// exprNeeds returns the tests the Index can use among the top-level
// conjuncts of the expression, exact ones first.
func exprNeeds(e ast.Expr) []Need {
	var exact, set []Need
	conjuncts(e, func(c ast.Expr) {
		n, ok := conjunctNeed(c)
		switch {
		case !ok:
		case n.Set:
			set = append(set, n)
		default:
			exact = append(exact, n)
		}
	})
	return append(exact, set...)
}

// conjunctNeed returns the test one conjunct of an expression makes, when
// it is one the Index can use. Only forms whose semantics are exactly
// those of the builder's exact and is_set code are used (see need):
//
//	properties.k = 'v'             the builder's own code for exact
//	person.properties.k = 5        (k any identifier, quoted or not)
//	'v' = properties.k             Hog's = is symmetric (compareValues)
//	properties.k in ('a', 5)       the builder's code for an exact list
//	properties.k != null           the builder's code for is_set; also
//	properties.k is not null       null != properties.k
//	properties.k = true            no null equals a boolean: is_set
//
// Everything else is not used: properties['k'] and `in [...]` compile to
// other code than the builder's, not, or and function calls do not make
// the conjunction require their operands, != some value or = null hold
// for events without the property, and event.properties.k reads the
// event name's (null) properties in filter globals.
func conjunctNeed(c ast.Expr) (Need, bool) {
	cmp, ok := c.(*ast.Compare)
	if !ok {
		return Need{}, false
	}
	switch cmp.Op {
	case ast.Eq:
		n, lit, ok := propertyAndConstant(cmp.Left, cmp.Right)
		if !ok {
			if n, lit, ok = propertyAndConstant(cmp.Right, cmp.Left); !ok {
				return Need{}, false
			}
		}
		switch lit.Value.(type) {
		case bool:
			// The builder compiles a boolean value as the string 'true' or
			// 'false'; a real boolean meets other values differently (1 =
			// true holds, 'abc' = false too), but never null.
			n.Set = true
			return n, true
		case nil:
			return Need{}, false // is_not_set
		}
		if !addLiteral(&n, lit) {
			return Need{}, false
		}
		return n, true
	case ast.NotEq:
		n, lit, ok := propertyAndConstant(cmp.Left, cmp.Right)
		if !ok {
			if n, lit, ok = propertyAndConstant(cmp.Right, cmp.Left); !ok {
				return Need{}, false
			}
		}
		if lit.Value != nil {
			return Need{}, false // holds for null too
		}
		n.Set = true
		return n, true
	case ast.In:
		// x in (a, b): the builder's list form. A one-element (a) is not a
		// tuple but a (string) value, which in would search as a
		// substring; [a, b] builds an array, not a tuple.
		n, ok := propertyRef(cmp.Left)
		if !ok {
			return Need{}, false
		}
		tu, ok := cmp.Right.(*ast.Tuple)
		if !ok || len(tu.Exprs) == 0 {
			return Need{}, false
		}
		for _, x := range tu.Exprs {
			k, ok := x.(*ast.Constant)
			if !ok || !addLiteral(&n, k) {
				return Need{}, false
			}
		}
		return n, true
	}
	return Need{}, false
}

// propertyAndConstant reports whether x reads a property as the builder's
// code does and y is a constant.
func propertyAndConstant(x, y ast.Expr) (Need, *ast.Constant, bool) {
	n, ok := propertyRef(x)
	if !ok {
		return Need{}, nil, false
	}
	k, ok := y.(*ast.Constant)
	return n, k, ok
}

// propertyRef reports whether e is properties.k or person.properties.k:
// one Field, compiled to GET_GLOBAL of that path, as the builder's
// properties.`k` is (a filter expression has no locals to shadow the
// globals). The keys need skips are skipped here too, to keep one rule.
func propertyRef(e ast.Expr) (Need, bool) {
	f, ok := e.(*ast.Field)
	if !ok {
		return Need{}, false
	}
	switch {
	case len(f.Chain) == 2 && f.Chain[0] == "properties":
		if k := f.Chain[1]; k != "" && k != "$elements_chain" {
			return Need{Key: k}, true
		}
	case len(f.Chain) == 3 && f.Chain[0] == "person" && f.Chain[1] == "properties":
		if k := f.Chain[2]; k != "" && k != "distinct_id" {
			return Need{Person: true, Key: k}, true
		}
	}
	return Need{}, false
}

// addLiteral adds a string or finite number constant to n's values, as
// the VM holds it (an integer as the float64 it converts to).
func addLiteral(n *Need, k *ast.Constant) bool {
	switch v := k.Value.(type) {
	case string:
		n.Strings = append(n.Strings, v)
	case int64:
		n.Numbers = append(n.Numbers, float64(v))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
		n.Numbers = append(n.Numbers, v)
	default:
		return false
	}
	return true
}

// exprEventNames returns the event names the expression requires, when a
// top-level conjunct is event = 'name' (either way round) or
// event in ('a', 'b'): the event global is the name, a string, and a
// string equals (or is among a tuple's elements as) only the same string.
// Several such conjuncts require a name in every one. ok is false when
// no conjunct names events.
func exprEventNames(e ast.Expr) (names []string, ok bool) {
	conjuncts(e, func(c ast.Expr) {
		ns, found := conjunctEventNames(c)
		if !found {
			return
		}
		slices.Sort(ns)
		ns = slices.Compact(ns)
		if ok {
			ns = slices.DeleteFunc(ns, func(n string) bool { return !slices.Contains(names, n) })
		}
		names, ok = ns, true
	})
	return names, ok
}

func conjunctEventNames(c ast.Expr) ([]string, bool) {
	cmp, ok := c.(*ast.Compare)
	if !ok {
		return nil, false
	}
	switch cmp.Op {
	case ast.Eq:
		x, y := cmp.Left, cmp.Right
		if !isEventName(x) {
			x, y = y, x
		}
		k, ok := y.(*ast.Constant)
		if !isEventName(x) || !ok {
			return nil, false
		}
		// A number would compare as a number ('5.0' = 5).
		s, ok := k.Value.(string)
		return []string{s}, ok
	case ast.In:
		tu, ok := cmp.Right.(*ast.Tuple)
		if !isEventName(cmp.Left) || !ok || len(tu.Exprs) == 0 {
			return nil, false
		}
		names := make([]string, 0, len(tu.Exprs))
		for _, x := range tu.Exprs {
			k, ok := x.(*ast.Constant)
			if !ok {
				return nil, false
			}
			// in compares without conversion (SameValueZero): no other
			// kind of element equals a string.
			if s, ok := k.Value.(string); ok {
				names = append(names, s)
			}
		}
		return names, true
	}
	return nil, false
}

// isEventName reports whether e reads the event global, the event's name.
func isEventName(e ast.Expr) bool {
	f, ok := e.(*ast.Field)
	return ok && len(f.Chain) == 1 && f.Chain[0] == "event"
}
