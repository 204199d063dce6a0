package vm

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"

	"github.com/hogwire/hogwire/hogvm/bytecode"
)

// SameValueZero is JavaScript's SameValueZero, used by Array.includes and
// Map keys: numbers by value (NaN equals NaN), strings by content, other
// values by identity.
func SameValueZero(a, b Value) bool {
	if a.k != b.k {
		return false
	}
	switch a.k {
	case KindNull:
		return true
	case KindBool:
		return a.n == b.n
	case KindNumber:
		x, y := a.num(), b.num()
		return x == y || (x != x && y != y)
	case KindString:
		return a.n == b.n && a.str() == b.str()
	}
	return a.p == b.p
}

// StrictEquals is JavaScript's ===.
func StrictEquals(a, b Value) bool {
	if a.k == KindNumber && b.k == KindNumber {
		return a.num() == b.num()
	}
	return SameValueZero(a, b)
}

func temporalSeconds(v Value) (float64, bool) {
	switch v.k {
	case KindDateTime:
		return v.AsDateTime().Seconds, true
	case KindDate:
		d := v.AsDate()
		return d.Seconds(), true
	}
	return 0, false
}

// unify applies PostHog's comparison coercions (HOG.md §5.2).
func unify(l, r Value) (Value, Value) {
	if l.k == r.k && l.k <= KindString {
		return l, r
	}
	ls, lok := temporalSeconds(l)
	rs, rok := temporalSeconds(r)
	if lok && rok {
		return Number(ls), Number(rs)
	}
	if lok && r.k == KindString {
		if s, ok := dateStringToSeconds(r.str()); ok {
			return Number(ls), Number(s)
		}
	}
	if rok && l.k == KindString {
		if s, ok := dateStringToSeconds(l.str()); ok {
			return Number(s), Number(rs)
		}
	}
	switch {
	case l.k == KindNumber && r.k == KindString:
		return l, Number(stringToNumber(r.str()))
	case l.k == KindString && r.k == KindNumber:
		return Number(stringToNumber(l.str())), r
	case l.k == KindBool && r.k == KindString:
		return l, Bool(r.str() == "true")
	case l.k == KindString && r.k == KindBool:
		return Bool(l.str() == "true"), r
	case l.k == KindBool && r.k == KindNumber:
		return Number(float64(l.n)), r
	case l.k == KindNumber && r.k == KindBool:
		return l, Number(float64(r.n))
	}
	return l, r
}

func allFinite(elems []Value) bool {
	for _, e := range elems {
		if e.k != KindNumber || math.IsInf(e.num(), 0) || e.num() != e.num() {
			return false
		}
	}
	return true
}

func compareValues(l, r Value, op bytecode.Op) bool {
	// Fast path for the common filter case.
	if l.k == KindString && r.k == KindString && (op == bytecode.Eq || op == bytecode.NotEq) {
		eq := l.n == r.n && l.str() == r.str()
		return eq == (op == bytecode.Eq)
	}
	l, r = unify(l, r)
	if (l.k == KindArray || l.k == KindTuple) && (r.k == KindArray || r.k == KindTuple) && allFinite(l.arr().Elems) && allFinite(r.arr().Elems) {
		a, b := l.arr().Elems, r.arr().Elems
		ord := 0
		for i := 0; i < len(a) && i < len(b); i++ {
			if x, y := a[i].num(), b[i].num(); x != y {
				if x < y {
					ord = -1
				} else {
					ord = 1
				}
				break
			}
		}
		if ord == 0 {
			switch {
			case len(a) < len(b):
				ord = -1
			case len(a) > len(b):
				ord = 1
			}
		}
		switch op {
		case bytecode.Eq:
			return ord == 0
		case bytecode.NotEq:
			return ord != 0
		case bytecode.Gt:
			return ord > 0
		case bytecode.GtEq:
			return ord >= 0
		case bytecode.Lt:
			return ord < 0
		}
		return ord <= 0
	}
	switch op {
	case bytecode.Eq:
		return StrictEquals(l, r)
	case bytecode.NotEq:
		return !StrictEquals(l, r)
	}
	return Relational(l, r, op)
}

// ToPrimitive is JavaScript's ToPrimitive for Relational comparison.
func ToPrimitive(v Value) Value {
	if v.isObject() {
		return String(JSString(v))
	}
	return v
}

// Relational is JavaScript's <, <=, >, >= on arbitrary values.
func Relational(l, r Value, op bytecode.Op) bool {
	l, r = ToPrimitive(l), ToPrimitive(r)
	if l.k == KindString && r.k == KindString {
		c := CompareStrings(l.str(), r.str())
		switch op {
		case bytecode.Gt:
			return c > 0
		case bytecode.GtEq:
			return c >= 0
		case bytecode.Lt:
			return c < 0
		}
		return c <= 0
	}
	a, b := ToNumber(l), ToNumber(r)
	switch op {
	case bytecode.Gt:
		return a > b
	case bytecode.GtEq:
		return a >= b
	case bytecode.Lt:
		return a < b
	}
	return a <= b
}

// CompareStrings orders strings by UTF-16 code units, as JavaScript does.
func CompareStrings(a, b string) int {
	if isASCII(a) && isASCII(b) {
		return strings.Compare(a, b)
	}
	ua, ub := UTF16Units(a), UTF16Units(b)
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			if ua[i] < ub[i] {
				return -1
			}
			return 1
		}
	}
	return len(ua) - len(ub)
}

// includes is haystack.includes(needle) in JavaScript.
func includes(haystack, needle Value) (bool, error) {
	switch haystack.k {
	case KindArray, KindTuple:
		for _, e := range haystack.arr().Elems {
			if SameValueZero(e, needle) {
				return true, nil
			}
		}
		return false, nil
	case KindString:
		return strings.Contains(haystack.str(), JSString(needle)), nil
	}
	return false, rtErr(fmt.Sprintf("Can not use IN on a value of type %s", TypeOf(haystack)))
}

// likePattern converts a SQL LIKE pattern to an unanchored regex.
func likePattern(pattern string, ci bool) string {
	var sb strings.Builder
	if ci {
		sb.WriteString("(?i)")
	}
	for _, c := range pattern {
		switch c {
		case '-', '/', '\\', '^', '$', '*', '+', '?', '.', '(', ')', '|', '[', ']', '{', '}':
			sb.WriteByte('\\')
			sb.WriteRune(c)
		case '%':
			sb.WriteString(".*")
		case '_':
			sb.WriteByte('.')
		default:
			sb.WriteRune(c)
		}
	}
	return sb.String()
}

func (r *run) like(s, pattern Value, ci bool) (bool, error) {
	re, err := r.m.regexes.get(likePattern(JSString(pattern), ci))
	if err != nil {
		return false, err
	}
	return re.MatchString(JSString(s)), nil
}

// regexOp is `value =~ pattern`: false when either side is falsy.
func (r *run) regexOp(pattern, value Value, ci bool) (bool, error) {
	if ci {
		if !value.Truthy() {
			return false, nil
		}
		pattern = String("(?i)" + JSString(pattern))
	}
	return r.match(pattern, value)
}

func (r *run) match(pattern, value Value) (bool, error) {
	if !pattern.Truthy() || !value.Truthy() {
		return false, nil
	}
	re, err := r.m.regexes.get(JSString(pattern))
	if err != nil {
		return false, err
	}
	return re.MatchString(JSString(value)), nil
}

// regexCache keeps compiled regular expressions: programs usually match
// the same constant patterns on every run.
type regexCache struct {
	mu sync.RWMutex
	m  map[string]*regexp.Regexp
}

const regexCacheSize = 1024

func (c *regexCache) get(pattern string) (*regexp.Regexp, error) {
	c.mu.RLock()
	re := c.m[pattern]
	c.mu.RUnlock()
	if re != nil {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, &RuntimeError{Msg: "Invalid regular expression: " + err.Error(), Err: err}
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= regexCacheSize {
		c.m = make(map[string]*regexp.Regexp)
	}
	c.m[pattern] = re
	c.mu.Unlock()
	return re, nil
}

var errIndexZero = rtErr("Hog arrays start from index 1")

// GetProperty is obj[key] with Hog's rules: 1-based and negative array
// indexes, null for anything missing, null on non-objects.
func GetProperty(obj, key Value) (Value, error) {
	switch obj.k {
	case KindDict:
		v, _ := obj.dict().Get(key)
		return v, nil
	case KindArray, KindTuple:
		elems := obj.arr().Elems
		if key.k == KindNumber {
			f := key.num()
			if f == 0 {
				return Null, errIndexZero
			}
			if f != math.Trunc(f) {
				return Null, nil
			}
			i := int64(f)
			if i > 0 {
				i--
			} else {
				i += int64(len(elems))
			}
			if i >= 0 && i < int64(len(elems)) {
				return elems[i], nil
			}
			return Null, nil
		}
		if key.k == KindString && key.str() == "length" {
			return Number(float64(len(elems))), nil
		}
		return Null, nil
	case KindError:
		e := obj.AsError()
		switch key.AsString() {
		case "type":
			return String(e.Type), nil
		case "message":
			return String(e.Message), nil
		case "payload":
			return e.Payload, nil
		case "__hogError__":
			return Bool(true), nil
		}
	case KindDateTime:
		dt := obj.AsDateTime()
		switch key.AsString() {
		case "dt":
			return Number(dt.Seconds), nil
		case "zone":
			return String(dt.Zone), nil
		case "__hogDateTime__":
			return Bool(true), nil
		}
	case KindDate:
		d := obj.AsDate()
		switch key.AsString() {
		case "year":
			return Int(int64(d.Year)), nil
		case "month":
			return Int(int64(d.Month)), nil
		case "day":
			return Int(int64(d.Day)), nil
		case "__hogDate__":
			return Bool(true), nil
		}
	}
	return Null, nil
}

func (r *run) setProperty(obj, key, value Value) error {
	switch obj.k {
	case KindDict:
		d := obj.dict()
		n := d.Len()
		d.Set(key, value)
		if d.Len() > n {
			r.alloc += 2 * costUnit
		}
		return nil
	case KindArray, KindTuple:
		if key.k != KindNumber {
			return rtErr(fmt.Sprintf("Can not set %s on element of type object", JSString(key)))
		}
		f := key.num()
		if f <= 0 {
			return errIndexZero
		}
		if f != math.Trunc(f) {
			return nil
		}
		a := obj.arr()
		if f > float64(len(a.Elems)) {
			if max := r.m.opts.MaxArrayLength; max > 0 && f > float64(max) {
				return r.limitErr(ErrSizeLimit, "Array length %s exceeds the limit of %d", formatNumber(f), max)
			}
			grow := int(f) - len(a.Elems)
			err := r.reserve(int64(grow) * costUnit)
			r.reserved = 0
			if err != nil {
				return err
			}
			a.Elems = append(a.Elems, make([]Value, grow)...)
			a.cost += int64(grow) * costUnit
		}
		i := int(f) - 1
		a.cost += refCost(value, obj.p) - costOf(a.Elems[i])
		a.Elems[i] = value
		return nil
	case KindNull, KindBool, KindNumber, KindString:
		t := "object"
		switch obj.k {
		case KindBool:
			t = "boolean"
		case KindNumber:
			t = "number"
		case KindString:
			t = "string"
		}
		return rtErr(fmt.Sprintf("Can not set %s on non-object: %s", JSString(key), t))
	}
	return rtErr(fmt.Sprintf("Can not set %s on element of type object", JSString(key)))
}

// getGlobal resolves a GET_GLOBAL path: a global value (containers are
// copied so the program cannot change the embedder's data), else a
// function used as a value. The keys of a fused path, interned, are
// found with the run's hints (see run.findKey).
func (r *run) getGlobal(path []string, fused bool) (Value, error) {
	if len(path) == 0 {
		return Null, rtErr("Global variable not found: ")
	}
	hinted := r
	if !fused {
		hinted = nil
	}
	memoize, set := fused && r.memoize && r.globals.k == KindDict && r.globals.dict().frozen, 0
	if memoize {
		var m *pathMemo
		if m, set = r.lookupMemo(r.globals.p, path); m != nil {
			return m.v, nil
		}
	}
	if v, found, dictsOnly, err := walkGlobal(r.globals, path, hinted, GetProperty); found {
		if err != nil {
			return Null, err
		}
		if v.isObject() {
			v = deepCopy(v, 0)
			r.alloc += costOf(v)
			return v, nil
		}
		if memoize && dictsOnly {
			r.storeMemo(set, r.globals.p, path, v)
		}
		return v, nil
	}
	if len(path) == 1 {
		name := path[0]
		if r.m.isAsync(name) {
			return Value{k: KindClosure, p: ptr(&Closure{Callable: &Callable{Name: name, kind: callAsync, ip: -1}})}, nil
		}
		if f := r.prog.lib.native(name); f != nil {
			return Value{k: KindClosure, p: ptr(&Closure{Callable: &Callable{Name: name, ArgCount: max(f.Max, 0), kind: callSTL, ip: -1}})}, nil
		}
		if b := r.prog.lib.bytecodeFunc(name); b != nil {
			return Value{k: KindClosure, p: ptr(&Closure{Callable: &Callable{Name: name, ArgCount: b.argCount, kind: callSTL, chunk: b.chunk}})}, nil
		}
	}
	return Null, rtErr("Global variable not found: " + strings.Join(path, "."))
}

// walkGlobal follows a GET_GLOBAL path from the globals' root: through
// dicts, stopping at null, and through other values with prop. found is
// false when the root is not a global; dictsOnly is false when the walk
// took a property of a container other than a dict (the properties of
// scalars are null). The keys are found with hinted's hints when it is
// not nil.
func walkGlobal(globals Value, path []string, hinted *run, prop func(Value, Value) (Value, error)) (v Value, found, dictsOnly bool, err error) {
	g := globals.AsDict()
	if g == nil {
		return Null, false, false, nil
	}
	find := func(d *Dict, i int) int {
		if hinted != nil {
			return hinted.findKey(d, path[i])
		}
		return d.findString(path[i])
	}
	i := find(g, 0)
	if i < 0 {
		return Null, false, false, nil
	}
	v = g.val(i)
	dictsOnly = true
	for j := 1; j < len(path); j++ {
		switch v.k {
		case KindDict:
			d := v.dict()
			if i := find(d, j); i >= 0 {
				v = d.val(i)
			} else {
				v = Null
			}
		case KindNull:
			return Null, true, dictsOnly, nil
		default:
			dictsOnly = dictsOnly && !v.isObject()
			if v, err = prop(v, String(path[j])); err != nil {
				return Null, true, false, err
			}
		}
	}
	return v, true, dictsOnly, nil
}

// errNotDict stops LookupGlobal at a value that is neither dict nor null.
var errNotDict = errors.New("vm: not a dict")

// LookupGlobal reads a global as GET_GLOBAL does, but without copying it,
// for embedders that only read the value. ok is false when GET_GLOBAL
// would do more than walk dicts: the root is not a global, or the path
// goes through a value of another kind.
func LookupGlobal(globals Value, path []string) (v Value, ok bool) {
	if len(path) == 0 {
		return Null, false
	}
	v, found, _, err := walkGlobal(globals, path, nil, func(Value, Value) (Value, error) { return Null, errNotDict })
	return v, found && err == nil
}

// maxCopyDepth bounds copies of (possibly cyclic) embedder data.
const maxCopyDepth = 256

// deepCopy copies arrays and dicts; other objects are immutable and shared.
func deepCopy(v Value, depth int) Value {
	if depth > maxCopyDepth {
		return Null
	}
	switch v.k {
	case KindArray, KindTuple:
		a := v.arr()
		out := &Array{Elems: make([]Value, len(a.Elems)), cost: a.cost}
		for i, e := range a.Elems {
			if e.isObject() && e.p == v.p {
				out.Elems[i] = Null
				continue
			}
			out.Elems[i] = deepCopy(e, depth+1)
		}
		return arrayOrTuple(v.k, out)
	case KindDict:
		d := v.dict()
		if (d.frozen || d.lazy) && depth+int(d.height) <= maxCopyDepth {
			// The whole copy would be exact: share the values until the
			// program reads a container out of them or changes the copy.
			return DictValue(&Dict{keys: d.keys[:len(d.keys):len(d.keys)], vals: d.vals[:len(d.vals):len(d.vals)], cost: d.cost,
				index: d.index, strIndex: d.strIndex, sharedIndex: d.index != nil, lazy: true, flat: d.flat, height: d.height})
		}
		// Keys and indexes are shared with the original until the copy
		// adds a key (appending to a full slice reallocates).
		out := &Dict{keys: d.keys[:len(d.keys):len(d.keys)], vals: make([]Value, len(d.vals)), cost: d.cost,
			index: d.index, strIndex: d.strIndex, sharedIndex: d.index != nil}
		for i, e := range d.vals {
			if e.isObject() && e.p == v.p {
				out.vals[i] = Null
				continue
			}
			out.vals[i] = deepCopy(e, depth+1)
		}
		return DictValue(out)
	}
	return v
}
