package vm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"
)

// builtin is a native standard-library function. args is a view of the
// value stack, valid only during the call.
type builtin struct {
	name     string
	min, max int // max < 0: unbounded
	fn       func(r *run, args []Value) (Value, error)
}

// stlFunctions is the native standard library, keyed by Hog name. It is
// filled once by init and never modified afterwards.
var stlFunctions map[string]*builtin

func arg(args []Value, i int) Value {
	if i < len(args) {
		return args[i]
	}
	return Null
}

func def(name string, min, max int, fn func(r *run, args []Value) (Value, error)) {
	stlFunctions[name] = &builtin{name: name, min: min, max: max, fn: fn}
}

// pure adapts a function that needs neither the run nor error reporting.
func pure(fn func(args []Value) Value) func(*run, []Value) (Value, error) {
	return func(_ *run, args []Value) (Value, error) { return fn(args), nil }
}

func typeError(fn string, v Value) error {
	return rtErr(fmt.Sprintf("%s: unsupported argument of type %s", fn, typeOf(v)))
}

// renderLimit bounds the text rendered for one value in this run.
func (r *run) renderLimit() int {
	if max := r.m.opts.MaxStringBytes; max > 0 && max < maxRender {
		return max
	}
	return maxRender
}

func (r *run) newString(s string) (Value, error) {
	if max := r.m.opts.MaxStringBytes; (max > 0 && len(s) > max) || len(s) > maxRender {
		return Null, r.limitErr(ErrSizeLimit, "String length %d exceeds the limit of %d bytes", len(s), max)
	}
	return String(s), nil
}

func (r *run) checkLen(n int) error {
	if max := r.m.opts.MaxArrayLength; max > 0 && n > max {
		return r.limitErr(ErrSizeLimit, "Array length %d exceeds the limit of %d", n, max)
	}
	return nil
}

// newArray wraps elems (owned by the array from now on) and prices it.
func newArray(elems []Value) Value {
	var cost int64 = costUnit
	for _, e := range elems {
		cost += costOf(e)
	}
	return arrayOrTuple(KindArray, &Array{Elems: elems, cost: cost})
}

func elemsOf(v Value) ([]Value, bool) {
	if v.k == KindArray || v.k == KindTuple {
		return v.arr().Elems, true
	}
	return nil, false
}

// toStringValue is Hog's toString(): dates in ISO form, strings raw,
// everything else as printed.
func toStringValue(v Value) string {
	switch v.k {
	case KindDate:
		d := v.AsDate()
		return fmt.Sprintf("%d-%02d-%02d", d.Year, d.Month, d.Day)
	case KindDateTime:
		return isoDateTime(v.AsDateTime())
	}
	return FormatOutput(v)
}

func typeOf(v Value) string {
	switch v.k {
	case KindNull:
		return "null"
	case KindBool:
		return "boolean"
	case KindNumber:
		if f := v.num(); f == math.Trunc(f) {
			return "integer"
		}
		return "float"
	case KindString:
		return "string"
	case KindArray:
		return "array"
	case KindTuple:
		return "tuple"
	case KindDict:
		if d := v.dict(); d.Len() > 0 {
			if ast, ok := d.GetString("__hx_ast"); ok && ast.Truthy() {
				return "sql"
			}
		}
		return "object"
	case KindDateTime:
		return "datetime"
	case KindDate:
		return "date"
	case KindError:
		return "error"
	case KindClosure, KindCallable:
		return "function"
	}
	return "unknown"
}

func isEmpty(v Value) bool {
	switch v.k {
	case KindNull:
		return true
	case KindArray, KindTuple:
		return len(v.arr().Elems) == 0
	case KindDict:
		return v.dict().Len() == 0
	case KindString:
		return v.n == 0
	}
	return false
}

// jsAdd is JavaScript's a + b.
func jsAdd(a, b Value) Value {
	pa, pb := toPrimitive(a), toPrimitive(b)
	if pa.k == KindString || pb.k == KindString {
		return String(jsString(pa) + jsString(pb))
	}
	return Number(toNumber(pa) + toNumber(pb))
}

// jsRound is Math.round: halves round towards +Infinity.
func jsRound(f float64) float64 {
	if f != f || math.IsInf(f, 0) {
		return f
	}
	r := math.Floor(f)
	if f-r >= 0.5 {
		r++
	}
	return r
}

// expandReplacement applies String.prototype.replace's $ patterns.
func expandReplacement(repl, s, matched string, pos int) string {
	if !strings.Contains(repl, "$") {
		return repl
	}
	var sb strings.Builder
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '$' || i+1 == len(repl) {
			sb.WriteByte(c)
			continue
		}
		switch repl[i+1] {
		case '$':
			sb.WriteByte('$')
		case '&':
			sb.WriteString(matched)
		case '`':
			sb.WriteString(s[:pos])
		case '\'':
			sb.WriteString(s[pos+len(matched):])
		default:
			sb.WriteByte(c)
			continue
		}
		i++
	}
	return sb.String()
}

func replaceJS(s, old, repl string, all bool) string {
	if old == "" {
		if !all {
			return expandReplacement(repl, s, "", 0) + s
		}
		// An empty pattern matches between every two UTF-16 units.
		var sb strings.Builder
		pos := 0
		for _, c := range s {
			sb.WriteString(expandReplacement(repl, s, "", pos))
			if c >= 0x10000 {
				// Splitting a surrogate pair leaves two invalid halves.
				sb.WriteRune(utf8.RuneError)
				sb.WriteString(expandReplacement(repl, s, "", pos))
				sb.WriteRune(utf8.RuneError)
			} else {
				sb.WriteRune(c)
			}
			pos += utf8.RuneLen(c)
		}
		sb.WriteString(expandReplacement(repl, s, "", pos))
		return sb.String()
	}
	var sb strings.Builder
	start := 0
	for {
		i := strings.Index(s[start:], old)
		if i < 0 {
			break
		}
		pos := start + i
		sb.WriteString(s[start:pos])
		sb.WriteString(expandReplacement(repl, s, old, pos))
		start = pos + len(old)
		if !all {
			break
		}
	}
	sb.WriteString(s[start:])
	return sb.String()
}

func trimChar(args []Value, left, right bool) (Value, error) {
	s := arg(args, 0)
	if s.k == KindNull {
		return Null, nil
	}
	if s.k != KindString {
		return Null, typeError("trim", s)
	}
	ch := " "
	if c := arg(args, 1); c.k != KindNull {
		ch = jsString(c)
	}
	if utf16Len(ch) != 1 {
		return String(""), nil
	}
	str := s.str()
	if left {
		for strings.HasPrefix(str, ch) {
			str = str[len(ch):]
		}
	}
	if right {
		for strings.HasSuffix(str, ch) {
			str = str[:len(str)-len(ch)]
		}
	}
	return String(str), nil
}

func splitJS(s, sep string, limit int) []Value {
	var parts []string
	if sep == "" {
		units := utf16Units(s)
		for i := range units {
			parts = append(parts, fromUTF16(units[i:i+1]))
		}
	} else {
		parts = strings.Split(s, sep)
	}
	if limit >= 0 && limit < len(parts) {
		parts = parts[:limit]
	}
	out := make([]Value, len(parts))
	for i, p := range parts {
		out[i] = String(p)
	}
	return out
}

// sortJS is Array.prototype.sort with no comparator: by string form,
// stable, in UTF-16 order.
func sortJS(elems []Value) []Value {
	out := slices.Clone(elems)
	keys := make(map[int]string, len(out))
	idx := make([]int, len(out))
	for i := range out {
		idx[i] = i
		keys[i] = jsString(out[i])
	}
	slices.SortStableFunc(idx, func(a, b int) int { return compareUTF16(keys[a], keys[b]) })
	sorted := make([]Value, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted
}

func objectKeys(v Value) []Value {
	switch v.k {
	case KindArray, KindTuple:
		n := len(v.arr().Elems)
		out := make([]Value, n)
		for i := range out {
			out[i] = Int(int64(i))
		}
		return out
	case KindDict:
		return slices.Clone(v.dict().keys)
	case KindDateTime:
		return []Value{String("__hogDateTime__"), String("dt"), String("zone")}
	case KindDate:
		return []Value{String("__hogDate__"), String("year"), String("month"), String("day")}
	case KindError:
		return []Value{String("__hogError__"), String("type"), String("message"), String("payload")}
	}
	return []Value{}
}

func objectValues(v Value) []Value {
	switch v.k {
	case KindArray, KindTuple:
		return slices.Clone(v.arr().Elems)
	case KindDict:
		return slices.Clone(v.dict().vals)
	case KindDateTime, KindDate, KindError:
		keys := objectKeys(v)
		out := make([]Value, len(keys))
		for i, k := range keys {
			out[i], _ = getProperty(v, k)
		}
		return out
	}
	return []Value{}
}

func hogError(typ, msg, payload Value) Value {
	t := "Error"
	if typ.Truthy() {
		t = jsString(typ)
	}
	m := "An error occurred"
	if msg.Truthy() {
		m = jsString(msg)
	}
	return Value{k: KindError, p: ptr(&ErrorValue{Type: t, Message: m, Payload: payload})}
}

func init() {
	stlFunctions = make(map[string]*builtin, 160)
	registerCore()
	registerStrings()
	registerArrays()
	registerJSON()
	registerDates()
	registerEncoding()
	linkBytecodeSTL()
}

func registerCore() {
	def("print", 0, -1, func(r *run, args []Value) (Value, error) {
		if r.m.opts.Print == nil {
			return Null, nil
		}
		b := r.line[:0]
		limit := r.renderLimit()
		for i, a := range args {
			if i > 0 {
				b = append(b, ' ')
			}
			b = appendOutput(b, a, limit)
		}
		if len(b) > limit {
			return Null, r.limitErr(ErrSizeLimit, "print: output exceeds the limit of %d bytes", limit)
		}
		if cap(b) <= 64<<10 {
			r.line = b
		}
		r.m.opts.Print(string(b))
		return Null, nil
	})
	toStr := func(r *run, a []Value) (Value, error) { return r.newString(toStringValue(a[0])) }
	def("toString", 1, 2, toStr)
	def("toUUID", 1, 1, toStr)
	def("toInt", 1, 1, pure(func(a []Value) Value {
		v := a[0]
		switch v.k {
		case KindDateTime:
			return Number(math.Floor(v.AsDateTime().Seconds))
		case KindDate:
			return Number(math.Floor(dateToSeconds(v.AsDate()) / 86400))
		}
		f := parseIntJS(jsString(v))
		if f != f {
			return Null
		}
		return Number(f)
	}))
	def("toFloat", 1, 1, pure(func(a []Value) Value {
		v := a[0]
		switch v.k {
		case KindDateTime:
			return Number(v.AsDateTime().Seconds)
		case KindDate:
			return Number(math.Floor(dateToSeconds(v.AsDate()) / 86400))
		}
		f := parseFloatJS(jsString(v))
		if f != f {
			return Null
		}
		return Number(f)
	}))
	def("ifNull", 2, 2, pure(func(a []Value) Value {
		if a[0].k != KindNull {
			return a[0]
		}
		return a[1]
	}))
	def("isNull", 1, 1, pure(func(a []Value) Value { return Bool(a[0].k == KindNull) }))
	def("isNotNull", 1, 1, pure(func(a []Value) Value { return Bool(a[0].k != KindNull) }))
	def("coalesce", 1, -1, pure(func(a []Value) Value {
		for _, v := range a {
			if v.k != KindNull {
				return v
			}
		}
		return Null
	}))
	def("assumeNotNull", 1, 1, func(_ *run, a []Value) (Value, error) {
		if a[0].k == KindNull {
			return Null, rtErr("Value is null in assumeNotNull")
		}
		return a[0], nil
	})
	def("typeof", 1, 1, pure(func(a []Value) Value { return String(typeOf(a[0])) }))
	def("empty", 1, 1, pure(func(a []Value) Value { return Bool(isEmpty(a[0])) }))
	def("notEmpty", 1, 1, pure(func(a []Value) Value { return Bool(!isEmpty(a[0])) }))
	def("tuple", 0, -1, pure(func(a []Value) Value {
		t := newArray(slices.Clone(a))
		t.k = KindTuple
		return t
	}))
	def("equals", 2, 2, pure(func(a []Value) Value { return Bool(strictEquals(a[0], a[1])) }))
	def("notEquals", 2, 2, pure(func(a []Value) Value { return Bool(!strictEquals(a[0], a[1])) }))
	def("greater", 2, 2, pure(func(a []Value) Value { return Bool(relational(a[0], a[1], opGt)) }))
	def("greaterOrEquals", 2, 2, pure(func(a []Value) Value { return Bool(relational(a[0], a[1], opGtEq)) }))
	def("less", 2, 2, pure(func(a []Value) Value { return Bool(relational(a[0], a[1], opLt)) }))
	def("lessOrEquals", 2, 2, pure(func(a []Value) Value { return Bool(relational(a[0], a[1], opLtEq)) }))
	def("not", 1, 1, pure(func(a []Value) Value { return Bool(!a[0].Truthy()) }))
	def("and", 1, -1, pure(func(a []Value) Value {
		for _, v := range a {
			if !v.Truthy() {
				return Bool(false)
			}
		}
		return Bool(true)
	}))
	def("or", 1, -1, pure(func(a []Value) Value {
		for _, v := range a {
			if v.Truthy() {
				return Bool(true)
			}
		}
		return Bool(false)
	}))
	def("if", 3, 3, pure(func(a []Value) Value {
		if a[0].Truthy() {
			return a[1]
		}
		return a[2]
	}))
	def("multiIf", 3, -1, pure(func(a []Value) Value {
		pairs := a[:len(a)-1]
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i].Truthy() {
				return pairs[i+1]
			}
		}
		return a[len(a)-1]
	}))
	def("in", 2, 2, pure(func(a []Value) Value {
		if elems, ok := elemsOf(a[1]); ok {
			for _, e := range elems {
				if sameValueZero(e, a[0]) {
					return Bool(true)
				}
			}
		}
		return Bool(false)
	}))
	def("min2", 2, 2, pure(func(a []Value) Value {
		if relational(a[0], a[1], opLt) {
			return a[0]
		}
		return a[1]
	}))
	def("plus", 2, 2, pure(func(a []Value) Value { return jsAdd(a[0], a[1]) }))
	def("minus", 2, 2, pure(func(a []Value) Value { return Number(toNumber(a[0]) - toNumber(a[1])) }))
	def("floor", 1, 2, pure(func(a []Value) Value { return Number(math.Floor(toNumber(a[0]))) }))
	def("round", 1, 2, pure(func(a []Value) Value { return Number(jsRound(toNumber(a[0]))) }))
	def("range", 1, 2, func(r *run, a []Value) (Value, error) {
		start, end := 0.0, toNumber(a[0])
		if len(a) > 1 {
			start, end = toNumber(a[0]), toNumber(a[1])-toNumber(a[0])
		}
		if end != end || end < 0 {
			end = 0
		}
		if end > math.MaxInt32 {
			return Null, r.limitErr(ErrSizeLimit, "Invalid array length")
		}
		n := int(end)
		if err := r.checkLen(n); err != nil {
			return Null, err
		}
		out := make([]Value, n)
		for i := range out {
			out[i] = Number(start + float64(i))
		}
		return newArray(out), nil
	})
	def("randomFloat", 0, 0, pure(func([]Value) Value { return Number(rand.Float64()) }))
	def("generateUUIDv4", 0, 0, pure(func([]Value) Value {
		const hex = "0123456789abcdef"
		b := []byte("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx")
		for i, c := range b {
			switch c {
			case 'x':
				b[i] = hex[rand.IntN(16)]
			case 'y':
				b[i] = hex[rand.IntN(4)|8]
			}
		}
		return String(string(b))
	}))
	for _, name := range []string{"Error", "RetryError", "NotImplementedError"} {
		typ := String(name)
		def(name, 0, 2, pure(func(a []Value) Value { return hogError(typ, arg(a, 0), arg(a, 1)) }))
	}
	def("HogError", 1, 3, pure(func(a []Value) Value { return hogError(a[0], arg(a, 1), arg(a, 2)) }))
}

func registerStrings() {
	def("concat", 1, -1, func(r *run, a []Value) (Value, error) {
		var sb strings.Builder
		for _, v := range a {
			if v.k != KindNull {
				sb.WriteString(toStringValue(v))
			}
		}
		return r.newString(sb.String())
	})
	def("length", 1, 1, pure(func(a []Value) Value {
		switch a[0].k {
		case KindString:
			return Int(int64(utf16Len(a[0].str())))
		case KindArray, KindTuple:
			return Int(int64(len(a[0].arr().Elems)))
		}
		return Null
	}))
	strFn := func(name string, f func(string) string) {
		def(name, 1, 1, func(r *run, a []Value) (Value, error) {
			switch a[0].k {
			case KindNull:
				return Null, nil
			case KindString:
				return String(f(a[0].str())), nil
			}
			return Null, typeError(name, a[0])
		})
	}
	strFn("lower", strings.ToLower)
	strFn("upper", strings.ToUpper)
	strFn("reverse", func(s string) string {
		u := utf16Units(s)
		slices.Reverse(u)
		return fromUTF16(u)
	})
	def("trim", 1, 2, func(_ *run, a []Value) (Value, error) { return trimChar(a, true, true) })
	def("trimLeft", 1, 2, func(_ *run, a []Value) (Value, error) { return trimChar(a, true, false) })
	def("trimRight", 1, 2, func(_ *run, a []Value) (Value, error) { return trimChar(a, false, true) })
	def("splitByString", 2, 3, func(r *run, a []Value) (Value, error) {
		s := a[1]
		if s.k == KindNull {
			return Null, nil
		}
		if s.k != KindString {
			return Null, typeError("splitByString", s)
		}
		limit := -1
		if m := arg(a, 2); m.k != KindNull {
			limit = int(max(0, min(toNumber(m), math.MaxInt32)))
		}
		parts := splitJS(s.str(), jsString(a[0]), limit)
		if err := r.checkLen(len(parts)); err != nil {
			return Null, err
		}
		return newArray(parts), nil
	})
	replace := func(name string, all bool) {
		def(name, 3, 3, func(r *run, a []Value) (Value, error) {
			if a[0].k == KindNull {
				return Null, nil
			}
			if a[0].k != KindString {
				return Null, typeError(name, a[0])
			}
			return r.newString(replaceJS(a[0].str(), jsString(a[1]), jsString(a[2]), all))
		})
	}
	replace("replaceOne", false)
	replace("replaceAll", true)
	position := func(name string, fold bool) {
		def(name, 2, 3, pure(func(a []Value) Value {
			if a[0].k != KindString {
				return Int(0)
			}
			s, sub := a[0].str(), jsString(a[1])
			if fold {
				s, sub = strings.ToLower(s), strings.ToLower(sub)
			}
			return Int(int64(indexUTF16(s, sub, strings.Index(s, sub)) + 1))
		}))
	}
	position("position", false)
	position("positionCaseInsensitive", true)
	def("substring", 2, 3, pure(func(a []Value) Value {
		if a[0].k != KindString {
			return String("")
		}
		s := a[0].str()
		n := float64(utf16Len(s))
		start := toNumber(a[1]) - 1
		length := n - start
		if l := arg(a, 2); l.k == KindNumber {
			length = l.num()
		}
		if start < 0 || length < 0 || start != start || !(start < n) {
			return String("")
		}
		end := math.Min(start+length, n)
		return String(sliceUTF16(s, int(start), int(end)))
	}))
	def("startsWith", 2, 2, pure(func(a []Value) Value {
		return Bool(a[0].k == KindString && a[1].k == KindString && strings.HasPrefix(a[0].str(), a[1].str()))
	}))
	likeFn := func(name string, ci, neg bool) {
		def(name, 2, 2, func(r *run, a []Value) (Value, error) {
			ok, err := r.like(a[0], a[1], ci)
			return Bool(ok != neg), err
		})
	}
	likeFn("like", false, false)
	likeFn("ilike", true, false)
	likeFn("notLike", false, true)
	likeFn("notILike", true, true)
	def("match", 2, 2, func(r *run, a []Value) (Value, error) {
		ok, err := r.match(a[1], a[0])
		return Bool(ok), err
	})
	def("extractRegex", 2, 2, func(r *run, a []Value) (Value, error) {
		if a[0].k == KindNull || a[1].k == KindNull {
			return String(""), nil
		}
		re, err := r.m.regexes.get(jsString(a[1]))
		if err != nil {
			return Null, err
		}
		m := re.FindStringSubmatch(jsString(a[0]))
		switch {
		case m == nil:
			return String(""), nil
		case len(m) > 1:
			return String(m[1]), nil
		}
		return String(m[0]), nil
	})
	def("multiSearchAnyCaseInsensitive", 2, 2, pure(func(a []Value) Value {
		elems, ok := elemsOf(a[1])
		if a[0].k == KindNull || !ok || a[1].k != KindArray {
			return Int(0)
		}
		hay := strings.ToLower(jsString(a[0]))
		for _, n := range elems {
			if strings.Contains(hay, strings.ToLower(jsString(n))) {
				return Int(1)
			}
		}
		return Int(0)
	}))
}

func registerArrays() {
	def("keys", 1, 1, pure(func(a []Value) Value { return newArray(objectKeys(a[0])) }))
	def("values", 1, 1, pure(func(a []Value) Value { return newArray(objectValues(a[0])) }))
	def("indexOf", 2, 2, pure(func(a []Value) Value {
		if elems, ok := elemsOf(a[0]); ok {
			for i, e := range elems {
				if strictEquals(e, a[1]) {
					return Int(int64(i + 1))
				}
			}
		}
		return Int(0)
	}))
	def("has", 2, 2, pure(func(a []Value) Value {
		elems, _ := elemsOf(a[0])
		for _, e := range elems {
			if sameValueZero(e, a[1]) {
				return Bool(true)
			}
		}
		return Bool(false)
	}))
	def("arrayPushBack", 2, 2, func(r *run, a []Value) (Value, error) {
		elems, _ := elemsOf(a[0])
		if err := r.checkLen(len(elems) + 1); err != nil {
			return Null, err
		}
		out := make([]Value, len(elems), len(elems)+1)
		copy(out, elems)
		return newArray(append(out, a[1])), nil
	})
	def("arrayPushFront", 2, 2, func(r *run, a []Value) (Value, error) {
		elems, _ := elemsOf(a[0])
		if err := r.checkLen(len(elems) + 1); err != nil {
			return Null, err
		}
		out := make([]Value, 1, len(elems)+1)
		out[0] = a[1]
		return newArray(append(out, elems...)), nil
	})
	def("arrayPopBack", 1, 1, pure(func(a []Value) Value {
		elems, _ := elemsOf(a[0])
		if len(elems) == 0 {
			return newArray([]Value{})
		}
		return newArray(slices.Clone(elems[:len(elems)-1]))
	}))
	def("arrayPopFront", 1, 1, pure(func(a []Value) Value {
		elems, _ := elemsOf(a[0])
		if len(elems) == 0 {
			return newArray([]Value{})
		}
		return newArray(slices.Clone(elems[1:]))
	}))
	def("arrayReverse", 1, 1, pure(func(a []Value) Value {
		elems, _ := elemsOf(a[0])
		out := slices.Clone(elems)
		slices.Reverse(out)
		return newArray(nonNil(out))
	}))
	def("arraySort", 1, -1, pure(func(a []Value) Value {
		elems, _ := elemsOf(a[0])
		return newArray(nonNil(sortJS(elems)))
	}))
	def("arrayReverseSort", 1, -1, pure(func(a []Value) Value {
		elems, _ := elemsOf(a[0])
		out := sortJS(elems)
		slices.Reverse(out)
		return newArray(nonNil(out))
	}))
	def("arrayStringConcat", 1, 2, func(r *run, a []Value) (Value, error) {
		elems, ok := elemsOf(a[0])
		if !ok {
			return String(""), nil
		}
		sep := ""
		if len(a) > 1 {
			sep = jsString(a[1])
		}
		return r.newString(joinJS(elems, sep, 0))
	})
}

func nonNil(v []Value) []Value {
	if v == nil {
		return []Value{}
	}
	return v
}

// bcSTL is a standard-library function written in Hog, run as bytecode.
type bcSTL struct {
	argCount int
	chunk    *chunk
	closure  *Closure
}

// bytecodeSTLTable is the linked bytecode standard library, built once by
// init and never modified afterwards.
var bytecodeSTLTable map[string]*bcSTL

func bytecodeSTL() map[string]*bcSTL { return bytecodeSTLTable }

func linkBytecodeSTL() {
	bytecodeSTLTable = make(map[string]*bcSTL, len(bytecodeSTLSource))
	for name, src := range bytecodeSTLSource {
		c := linkChunk("stl/"+name, 1, src.code, false)
		cl := &Closure{Callable: &Callable{Name: name, ArgCount: src.args, kind: callSTL, chunk: c}}
		bytecodeSTLTable[name] = &bcSTL{argCount: src.args, chunk: c, closure: cl}
	}
}
