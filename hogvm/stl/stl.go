// Package stl is Hog's standard library: the functions every Hog program
// may call by name (PostHog's HOG.md §6), as native Go functions and as
// functions written in Hog bytecode (arrayMap, arrayFilter, …), with the
// semantics of PostHog's reference VM. The VM core (package vm) knows none
// of them: programs are linked against Library.
package stl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// Library returns Hog's standard library. It is built once and shared:
// a vm.Library is immutable.
func Library() *vm.Library { return library() }

var library = sync.OnceValue(func() *vm.Library {
	l := &builder{}
	l.registerCore()
	l.registerStrings()
	l.registerArrays()
	l.registerJSON()
	l.registerDates()
	l.registerEncoding()
	// These return their arguments' values in a new container: only the
	// container is new memory.
	l.shares("tuple", "keys", "values", "arrayPushBack", "arrayPushFront", "arrayPopBack", "arrayPopFront",
		"arrayReverse", "arraySort", "arrayReverseSort", "splitByString", "JSONExtractArrayRaw", "JSONExtract",
		"ifNull", "coalesce", "if", "multiIf", "min2")
	funcs := make([]vm.BytecodeFunc, 0, len(bytecodeSource))
	for name, src := range bytecodeSource {
		funcs = append(funcs, vm.BytecodeFunc{Name: name, Args: src.args, Code: src.code})
	}
	return vm.NewLibrary(l.natives, funcs)
})

// builder collects native functions.
type builder struct{ natives []vm.Native }

func (l *builder) def(name string, min, max int, fn func(e vm.Env, args []vm.Value) (vm.Value, error)) {
	l.natives = append(l.natives, vm.Native{Name: name, Min: min, Max: max, Fn: fn})
}

func (l *builder) shares(names ...string) {
	for i := range l.natives {
		if slices.Contains(names, l.natives[i].Name) {
			l.natives[i].Shares = true
		}
	}
}

func arg(args []vm.Value, i int) vm.Value {
	if i < len(args) {
		return args[i]
	}
	return vm.Null
}

// pure adapts a function that needs neither the run nor error reporting.
func pure(fn func(args []vm.Value) vm.Value) func(vm.Env, []vm.Value) (vm.Value, error) {
	return func(_ vm.Env, args []vm.Value) (vm.Value, error) { return fn(args), nil }
}

func rtErr(msg string) error { return &vm.RuntimeError{Msg: msg} }

func sizeErr(format string, args ...any) error {
	return &vm.LimitError{Limit: vm.ErrSizeLimit, Msg: fmt.Sprintf(format, args...)}
}

func typeError(fn string, v vm.Value) error {
	return rtErr(fmt.Sprintf("%s: unsupported argument of type %s", fn, vm.TypeOf(v)))
}

func elemsOf(v vm.Value) ([]vm.Value, bool) {
	if v.Kind() == vm.KindArray || v.Kind() == vm.KindTuple {
		return v.AsArray().Elems, true
	}
	return nil, false
}

// toStringValue is Hog's toString(): dates in ISO form, strings raw,
// everything else as printed.
func toStringValue(v vm.Value) string {
	switch v.Kind() {
	case vm.KindDate:
		d := v.AsDate()
		return fmt.Sprintf("%d-%02d-%02d", d.Year, d.Month, d.Day)
	case vm.KindDateTime:
		return isoDateTime(v.AsDateTime())
	}
	return vm.FormatOutput(v)
}

func isEmpty(v vm.Value) bool {
	switch v.Kind() {
	case vm.KindNull:
		return true
	case vm.KindArray, vm.KindTuple:
		return len(v.AsArray().Elems) == 0
	case vm.KindDict:
		return v.AsDict().Len() == 0
	case vm.KindString:
		return v.AsString() == ""
	}
	return false
}

// jsAdd is JavaScript's a + b.
func jsAdd(a, b vm.Value) vm.Value {
	pa, pb := vm.ToPrimitive(a), vm.ToPrimitive(b)
	if pa.Kind() == vm.KindString || pb.Kind() == vm.KindString {
		return vm.String(vm.JSString(pa) + vm.JSString(pb))
	}
	return vm.Number(vm.ToNumber(pa) + vm.ToNumber(pb))
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

func trimChar(args []vm.Value, left, right bool) (vm.Value, error) {
	s := arg(args, 0)
	if s.Kind() == vm.KindNull {
		return vm.Null, nil
	}
	if s.Kind() != vm.KindString {
		return vm.Null, typeError("trim", s)
	}
	ch := " "
	if c := arg(args, 1); c.Kind() != vm.KindNull {
		ch = vm.JSString(c)
	}
	if vm.UTF16Len(ch) != 1 {
		return vm.String(""), nil
	}
	str := s.AsString()
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
	return vm.String(str), nil
}

func splitJS(s, sep string, limit int) []vm.Value {
	var parts []string
	if sep == "" {
		units := vm.UTF16Units(s)
		for i := range units {
			parts = append(parts, vm.FromUTF16(units[i:i+1]))
		}
	} else {
		parts = strings.Split(s, sep)
	}
	if limit >= 0 && limit < len(parts) {
		parts = parts[:limit]
	}
	out := make([]vm.Value, len(parts))
	for i, p := range parts {
		out[i] = vm.String(p)
	}
	return out
}

// sortJS is Array.prototype.sort with no comparator: by string form,
// stable, in UTF-16 order.
func sortJS(elems []vm.Value) []vm.Value {
	out := slices.Clone(elems)
	keys := make(map[int]string, len(out))
	idx := make([]int, len(out))
	for i := range out {
		idx[i] = i
		keys[i] = vm.JSString(out[i])
	}
	slices.SortStableFunc(idx, func(a, b int) int { return vm.CompareStrings(keys[a], keys[b]) })
	sorted := make([]vm.Value, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted
}

func objectKeys(v vm.Value) []vm.Value {
	switch v.Kind() {
	case vm.KindArray, vm.KindTuple:
		n := len(v.AsArray().Elems)
		out := make([]vm.Value, n)
		for i := range out {
			out[i] = vm.Int(int64(i))
		}
		return out
	case vm.KindDict:
		return slices.Clone(v.AsDict().Keys())
	case vm.KindDateTime:
		return []vm.Value{vm.String("__hogDateTime__"), vm.String("dt"), vm.String("zone")}
	case vm.KindDate:
		return []vm.Value{vm.String("__hogDate__"), vm.String("year"), vm.String("month"), vm.String("day")}
	case vm.KindError:
		return []vm.Value{vm.String("__hogError__"), vm.String("type"), vm.String("message"), vm.String("payload")}
	}
	return []vm.Value{}
}

func objectValues(v vm.Value) []vm.Value {
	switch v.Kind() {
	case vm.KindArray, vm.KindTuple:
		return slices.Clone(v.AsArray().Elems)
	case vm.KindDict:
		return slices.Clone(v.AsDict().Values())
	case vm.KindDateTime, vm.KindDate, vm.KindError:
		keys := objectKeys(v)
		out := make([]vm.Value, len(keys))
		for i, k := range keys {
			out[i], _ = vm.GetProperty(v, k)
		}
		return out
	}
	return []vm.Value{}
}

func hogError(typ, msg, payload vm.Value) vm.Value {
	t := "Error"
	if typ.Truthy() {
		t = vm.JSString(typ)
	}
	m := "An error occurred"
	if msg.Truthy() {
		m = vm.JSString(msg)
	}
	return vm.NewError(t, m, payload)
}

func (l *builder) registerCore() {
	l.def("print", 0, -1, func(e vm.Env, args []vm.Value) (vm.Value, error) {
		return vm.Null, e.Print(args)
	})
	toStr := func(e vm.Env, a []vm.Value) (vm.Value, error) { return e.NewString(toStringValue(a[0])) }
	l.def("toString", 1, 2, toStr)
	l.def("toUUID", 1, 1, toStr)
	l.def("toInt", 1, 1, pure(func(a []vm.Value) vm.Value {
		v := a[0]
		switch v.Kind() {
		case vm.KindDateTime:
			return vm.Number(math.Floor(v.AsDateTime().Seconds))
		case vm.KindDate:
			return vm.Number(math.Floor(v.AsDate().Seconds() / 86400))
		}
		f := vm.ParseIntJS(vm.JSString(v))
		if f != f {
			return vm.Null
		}
		return vm.Number(f)
	}))
	l.def("toFloat", 1, 1, pure(func(a []vm.Value) vm.Value {
		v := a[0]
		switch v.Kind() {
		case vm.KindDateTime:
			return vm.Number(v.AsDateTime().Seconds)
		case vm.KindDate:
			return vm.Number(math.Floor(v.AsDate().Seconds() / 86400))
		}
		f := vm.ParseFloatJS(vm.JSString(v))
		if f != f {
			return vm.Null
		}
		return vm.Number(f)
	}))
	l.def("ifNull", 2, 2, pure(func(a []vm.Value) vm.Value {
		if a[0].Kind() != vm.KindNull {
			return a[0]
		}
		return a[1]
	}))
	l.def("isNull", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.Bool(a[0].Kind() == vm.KindNull) }))
	l.def("isNotNull", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.Bool(a[0].Kind() != vm.KindNull) }))
	l.def("coalesce", 1, -1, pure(func(a []vm.Value) vm.Value {
		for _, v := range a {
			if v.Kind() != vm.KindNull {
				return v
			}
		}
		return vm.Null
	}))
	l.def("assumeNotNull", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		if a[0].Kind() == vm.KindNull {
			return vm.Null, rtErr("Value is null in assumeNotNull")
		}
		return a[0], nil
	})
	l.def("typeof", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.String(vm.TypeOf(a[0])) }))
	l.def("empty", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.Bool(isEmpty(a[0])) }))
	l.def("notEmpty", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.Bool(!isEmpty(a[0])) }))
	l.def("tuple", 0, -1, pure(func(a []vm.Value) vm.Value {
		return vm.NewTuple(slices.Clone(a))
	}))
	l.def("equals", 2, 2, pure(func(a []vm.Value) vm.Value { return vm.Bool(vm.StrictEquals(a[0], a[1])) }))
	l.def("notEquals", 2, 2, pure(func(a []vm.Value) vm.Value { return vm.Bool(!vm.StrictEquals(a[0], a[1])) }))
	l.def("greater", 2, 2, pure(func(a []vm.Value) vm.Value { return vm.Bool(vm.Relational(a[0], a[1], bytecode.Gt)) }))
	l.def("greaterOrEquals", 2, 2, pure(func(a []vm.Value) vm.Value { return vm.Bool(vm.Relational(a[0], a[1], bytecode.GtEq)) }))
	l.def("less", 2, 2, pure(func(a []vm.Value) vm.Value { return vm.Bool(vm.Relational(a[0], a[1], bytecode.Lt)) }))
	l.def("lessOrEquals", 2, 2, pure(func(a []vm.Value) vm.Value { return vm.Bool(vm.Relational(a[0], a[1], bytecode.LtEq)) }))
	l.def("not", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.Bool(!a[0].Truthy()) }))
	l.def("and", 1, -1, pure(func(a []vm.Value) vm.Value {
		for _, v := range a {
			if !v.Truthy() {
				return vm.Bool(false)
			}
		}
		return vm.Bool(true)
	}))
	l.def("or", 1, -1, pure(func(a []vm.Value) vm.Value {
		for _, v := range a {
			if v.Truthy() {
				return vm.Bool(true)
			}
		}
		return vm.Bool(false)
	}))
	l.def("if", 3, 3, pure(func(a []vm.Value) vm.Value {
		if a[0].Truthy() {
			return a[1]
		}
		return a[2]
	}))
	l.def("multiIf", 3, -1, pure(func(a []vm.Value) vm.Value {
		pairs := a[:len(a)-1]
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i].Truthy() {
				return pairs[i+1]
			}
		}
		return a[len(a)-1]
	}))
	l.def("in", 2, 2, pure(func(a []vm.Value) vm.Value {
		if elems, ok := elemsOf(a[1]); ok {
			for _, e := range elems {
				if vm.SameValueZero(e, a[0]) {
					return vm.Bool(true)
				}
			}
		}
		return vm.Bool(false)
	}))
	l.def("min2", 2, 2, pure(func(a []vm.Value) vm.Value {
		if vm.Relational(a[0], a[1], bytecode.Lt) {
			return a[0]
		}
		return a[1]
	}))
	l.def("plus", 2, 2, pure(func(a []vm.Value) vm.Value { return jsAdd(a[0], a[1]) }))
	l.def("minus", 2, 2, pure(func(a []vm.Value) vm.Value { return vm.Number(vm.ToNumber(a[0]) - vm.ToNumber(a[1])) }))
	l.def("floor", 1, 2, pure(func(a []vm.Value) vm.Value { return vm.Number(math.Floor(vm.ToNumber(a[0]))) }))
	l.def("round", 1, 2, pure(func(a []vm.Value) vm.Value { return vm.Number(jsRound(vm.ToNumber(a[0]))) }))
	l.def("range", 1, 2, func(e vm.Env, a []vm.Value) (vm.Value, error) {
		start, end := 0.0, vm.ToNumber(a[0])
		if len(a) > 1 {
			start, end = vm.ToNumber(a[0]), vm.ToNumber(a[1])-vm.ToNumber(a[0])
		}
		if end != end || end < 0 {
			end = 0
		}
		if end > math.MaxInt32 {
			return vm.Null, sizeErr("Invalid array length")
		}
		n := int(end)
		if err := e.CheckLength(n); err != nil {
			return vm.Null, err
		}
		if err := e.Reserve(int64(n) * 16); err != nil {
			return vm.Null, err
		}
		out := make([]vm.Value, n)
		for i := range out {
			out[i] = vm.Number(start + float64(i))
		}
		return vm.NewArray(out), nil
	})
	l.def("randomFloat", 0, 0, pure(func([]vm.Value) vm.Value { return vm.Number(rand.Float64()) }))
	l.def("generateUUIDv4", 0, 0, pure(func([]vm.Value) vm.Value {
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
		return vm.String(string(b))
	}))
	for _, name := range []string{"Error", "RetryError", "NotImplementedError"} {
		typ := vm.String(name)
		l.def(name, 0, 2, pure(func(a []vm.Value) vm.Value { return hogError(typ, arg(a, 0), arg(a, 1)) }))
	}
	l.def("HogError", 1, 3, pure(func(a []vm.Value) vm.Value { return hogError(a[0], arg(a, 1), arg(a, 2)) }))
}

func (l *builder) registerStrings() {
	l.def("concat", 1, -1, func(e vm.Env, a []vm.Value) (vm.Value, error) {
		// Strings are most of what concat builds: reserve them first, so
		// that a memory limit stops a doubling string before it doubles.
		var size int
		for _, v := range a {
			size += len(v.AsString())
		}
		if err := e.Reserve(int64(size)); err != nil {
			return vm.Null, err
		}
		var sb strings.Builder
		sb.Grow(size)
		for _, v := range a {
			if v.Kind() != vm.KindNull {
				sb.WriteString(toStringValue(v))
			}
		}
		return e.NewString(sb.String())
	})
	l.def("length", 1, 1, pure(func(a []vm.Value) vm.Value {
		switch a[0].Kind() {
		case vm.KindString:
			return vm.Int(int64(vm.UTF16Len(a[0].AsString())))
		case vm.KindArray, vm.KindTuple:
			return vm.Int(int64(len(a[0].AsArray().Elems)))
		}
		return vm.Null
	}))
	strFn := func(name string, f func(string) string) {
		l.def(name, 1, 1, func(e vm.Env, a []vm.Value) (vm.Value, error) {
			switch a[0].Kind() {
			case vm.KindNull:
				return vm.Null, nil
			case vm.KindString:
				return vm.String(f(a[0].AsString())), nil
			}
			return vm.Null, typeError(name, a[0])
		})
	}
	strFn("lower", strings.ToLower)
	strFn("upper", strings.ToUpper)
	strFn("reverse", func(s string) string {
		u := vm.UTF16Units(s)
		slices.Reverse(u)
		return vm.FromUTF16(u)
	})
	l.def("trim", 1, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) { return trimChar(a, true, true) })
	l.def("trimLeft", 1, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) { return trimChar(a, true, false) })
	l.def("trimRight", 1, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) { return trimChar(a, false, true) })
	l.def("splitByString", 2, 3, func(e vm.Env, a []vm.Value) (vm.Value, error) {
		s := a[1]
		if s.Kind() == vm.KindNull {
			return vm.Null, nil
		}
		if s.Kind() != vm.KindString {
			return vm.Null, typeError("splitByString", s)
		}
		limit := -1
		if m := arg(a, 2); m.Kind() != vm.KindNull {
			limit = int(max(0, min(vm.ToNumber(m), math.MaxInt32)))
		}
		parts := splitJS(s.AsString(), vm.JSString(a[0]), limit)
		if err := e.CheckLength(len(parts)); err != nil {
			return vm.Null, err
		}
		return vm.NewArray(parts), nil
	})
	replace := func(name string, all bool) {
		l.def(name, 3, 3, func(e vm.Env, a []vm.Value) (vm.Value, error) {
			if a[0].Kind() == vm.KindNull {
				return vm.Null, nil
			}
			if a[0].Kind() != vm.KindString {
				return vm.Null, typeError(name, a[0])
			}
			return e.NewString(replaceJS(a[0].AsString(), vm.JSString(a[1]), vm.JSString(a[2]), all))
		})
	}
	replace("replaceOne", false)
	replace("replaceAll", true)
	position := func(name string, fold bool) {
		l.def(name, 2, 3, pure(func(a []vm.Value) vm.Value {
			if a[0].Kind() != vm.KindString {
				return vm.Int(0)
			}
			s, sub := a[0].AsString(), vm.JSString(a[1])
			if fold {
				s, sub = strings.ToLower(s), strings.ToLower(sub)
			}
			return vm.Int(int64(vm.IndexUTF16(s, sub, strings.Index(s, sub)) + 1))
		}))
	}
	position("position", false)
	position("positionCaseInsensitive", true)
	l.def("substring", 2, 3, pure(func(a []vm.Value) vm.Value {
		if a[0].Kind() != vm.KindString {
			return vm.String("")
		}
		s := a[0].AsString()
		n := float64(vm.UTF16Len(s))
		start := vm.ToNumber(a[1]) - 1
		length := n - start
		if l := arg(a, 2); l.Kind() == vm.KindNumber {
			length = l.AsNumber()
		}
		if start < 0 || length < 0 || start != start || !(start < n) {
			return vm.String("")
		}
		end := math.Min(start+length, n)
		return vm.String(vm.SliceUTF16(s, int(start), int(end)))
	}))
	l.def("startsWith", 2, 2, pure(func(a []vm.Value) vm.Value {
		return vm.Bool(a[0].Kind() == vm.KindString && a[1].Kind() == vm.KindString && strings.HasPrefix(a[0].AsString(), a[1].AsString()))
	}))
	likeFn := func(name string, ci, neg bool) {
		l.def(name, 2, 2, func(e vm.Env, a []vm.Value) (vm.Value, error) {
			ok, err := e.Like(a[0], a[1], ci)
			return vm.Bool(ok != neg), err
		})
	}
	likeFn("like", false, false)
	likeFn("ilike", true, false)
	likeFn("notLike", false, true)
	likeFn("notILike", true, true)
	l.def("match", 2, 2, func(e vm.Env, a []vm.Value) (vm.Value, error) {
		ok, err := e.Match(a[1], a[0])
		return vm.Bool(ok), err
	})
	l.def("extractRegex", 2, 2, func(e vm.Env, a []vm.Value) (vm.Value, error) {
		if a[0].Kind() == vm.KindNull || a[1].Kind() == vm.KindNull {
			return vm.String(""), nil
		}
		re, err := e.Regexp(vm.JSString(a[1]))
		if err != nil {
			return vm.Null, err
		}
		m := re.FindStringSubmatch(vm.JSString(a[0]))
		switch {
		case m == nil:
			return vm.String(""), nil
		case len(m) > 1:
			return vm.String(m[1]), nil
		}
		return vm.String(m[0]), nil
	})
	l.def("multiSearchAnyCaseInsensitive", 2, 2, pure(func(a []vm.Value) vm.Value {
		elems, ok := elemsOf(a[1])
		if a[0].Kind() == vm.KindNull || !ok || a[1].Kind() != vm.KindArray {
			return vm.Int(0)
		}
		hay := strings.ToLower(vm.JSString(a[0]))
		for _, n := range elems {
			if strings.Contains(hay, strings.ToLower(vm.JSString(n))) {
				return vm.Int(1)
			}
		}
		return vm.Int(0)
	}))
}

func (l *builder) registerArrays() {
	l.def("keys", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.NewArray(objectKeys(a[0])) }))
	l.def("values", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.NewArray(objectValues(a[0])) }))
	l.def("indexOf", 2, 2, pure(func(a []vm.Value) vm.Value {
		if elems, ok := elemsOf(a[0]); ok {
			for i, e := range elems {
				if vm.StrictEquals(e, a[1]) {
					return vm.Int(int64(i + 1))
				}
			}
		}
		return vm.Int(0)
	}))
	l.def("has", 2, 2, pure(func(a []vm.Value) vm.Value {
		elems, _ := elemsOf(a[0])
		for _, e := range elems {
			if vm.SameValueZero(e, a[1]) {
				return vm.Bool(true)
			}
		}
		return vm.Bool(false)
	}))
	l.def("arrayPushBack", 2, 2, func(e vm.Env, a []vm.Value) (vm.Value, error) {
		elems, _ := elemsOf(a[0])
		if err := e.CheckLength(len(elems) + 1); err != nil {
			return vm.Null, err
		}
		out := make([]vm.Value, len(elems), len(elems)+1)
		copy(out, elems)
		return vm.NewArray(append(out, a[1])), nil
	})
	l.def("arrayPushFront", 2, 2, func(e vm.Env, a []vm.Value) (vm.Value, error) {
		elems, _ := elemsOf(a[0])
		if err := e.CheckLength(len(elems) + 1); err != nil {
			return vm.Null, err
		}
		out := make([]vm.Value, 1, len(elems)+1)
		out[0] = a[1]
		return vm.NewArray(append(out, elems...)), nil
	})
	l.def("arrayPopBack", 1, 1, pure(func(a []vm.Value) vm.Value {
		elems, _ := elemsOf(a[0])
		if len(elems) == 0 {
			return vm.NewArray([]vm.Value{})
		}
		return vm.NewArray(slices.Clone(elems[:len(elems)-1]))
	}))
	l.def("arrayPopFront", 1, 1, pure(func(a []vm.Value) vm.Value {
		elems, _ := elemsOf(a[0])
		if len(elems) == 0 {
			return vm.NewArray([]vm.Value{})
		}
		return vm.NewArray(slices.Clone(elems[1:]))
	}))
	l.def("arrayReverse", 1, 1, pure(func(a []vm.Value) vm.Value {
		elems, _ := elemsOf(a[0])
		out := slices.Clone(elems)
		slices.Reverse(out)
		return vm.NewArray(nonNil(out))
	}))
	l.def("arraySort", 1, -1, pure(func(a []vm.Value) vm.Value {
		elems, _ := elemsOf(a[0])
		return vm.NewArray(nonNil(sortJS(elems)))
	}))
	l.def("arrayReverseSort", 1, -1, pure(func(a []vm.Value) vm.Value {
		elems, _ := elemsOf(a[0])
		out := sortJS(elems)
		slices.Reverse(out)
		return vm.NewArray(nonNil(out))
	}))
	l.def("arrayStringConcat", 1, 2, func(e vm.Env, a []vm.Value) (vm.Value, error) {
		elems, ok := elemsOf(a[0])
		if !ok {
			return vm.String(""), nil
		}
		sep := ""
		if len(a) > 1 {
			sep = vm.JSString(a[1])
		}
		return e.NewString(vm.JoinJS(elems, sep, 0))
	})
}

func nonNil(v []vm.Value) []vm.Value {
	if v == nil {
		return []vm.Value{}
	}
	return v
}
