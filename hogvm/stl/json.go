package stl

import (
	"strings"
	"unsafe"

	"github.com/hogwire/hogwire/hogvm/vm"
)

// nestedGet walks a JSON path: strings are keys, numbers 1-based indexes.
func nestedGet(v vm.Value, path []vm.Value) (vm.Value, error) {
	for _, key := range path {
		if v.Kind() == vm.KindNull {
			return vm.Null, nil
		}
		var err error
		if v, err = vm.GetProperty(v, key); err != nil {
			return vm.Null, err
		}
	}
	return v, nil
}

// jsonInput parses string arguments of the JSONExtract family.
func jsonInput(v vm.Value) (vm.Value, bool) {
	if v.Kind() != vm.KindString {
		return v, true
	}
	p, err := vm.ParseJSON([]byte(v.AsString()))
	return p, err == nil
}

func (l *builder) registerJSON() {
	l.def("jsonParse", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		v, err := vm.ParseJSON([]byte(vm.JSString(a[0])))
		if err != nil {
			return vm.Null, &vm.RuntimeError{Msg: "jsonParse: invalid JSON: " + err.Error(), Err: err}
		}
		return v, nil
	})
	l.def("jsonStringify", 1, 2, func(e vm.Env, a []vm.Value) (vm.Value, error) {
		indent := 0
		if ind := arg(a, 1); ind.Kind() == vm.KindNumber && ind.AsNumber() > 0 {
			indent = int(min(ind.AsNumber(), 10))
		}
		buf := vm.AppendJSON(nil, a[0], indent, e.RenderLimit())
		if len(buf) == 0 {
			return vm.String(""), nil
		}
		// buf is not used again, so the string can share its memory.
		return e.NewString(unsafe.String(&buf[0], len(buf)))
	})
	l.def("isValidJSON", 1, 1, pure(func(a []vm.Value) vm.Value {
		_, err := vm.ParseJSON([]byte(vm.JSString(a[0])))
		return vm.Bool(err == nil)
	}))
	l.def("JSONHas", 1, -1, pure(func(a []vm.Value) vm.Value {
		cur := a[0]
		for _, key := range a[1:] {
			p, ok := jsonInput(cur)
			if !ok {
				return vm.Bool(false)
			}
			switch p.Kind() {
			case vm.KindDict:
				v, ok := p.AsDict().Get(key)
				if !ok {
					return vm.Bool(false)
				}
				cur = v
			case vm.KindArray, vm.KindTuple:
				elems := p.AsArray().Elems
				if key.Kind() != vm.KindNumber {
					return vm.Bool(false)
				}
				i := key.AsNumber()
				switch {
				case i < 0 && -i <= float64(len(elems)):
					cur = elems[len(elems)+int(i)]
				case i > 0 && i <= float64(len(elems)):
					cur = elems[int(i)-1]
				default:
					return vm.Bool(false)
				}
			default:
				return vm.Bool(false)
			}
		}
		return vm.Bool(true)
	}))
	l.def("JSONLength", 1, -1, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		obj, ok := jsonInput(a[0])
		if !ok {
			return vm.Int(0), nil
		}
		v, err := nestedGet(obj, a[1:])
		if err != nil {
			return vm.Null, err
		}
		switch v.Kind() {
		case vm.KindArray, vm.KindTuple:
			return vm.Int(int64(len(v.AsArray().Elems))), nil
		case vm.KindDict:
			return vm.Int(int64(v.AsDict().Len())), nil
		case vm.KindNull:
			if isObject(obj) {
				return vm.Null, rtErr("JSONLength: Cannot convert undefined or null to object")
			}
		}
		return vm.Int(0), nil
	})
	// conv gets the value found, or found false when the input is not JSON.
	extract := func(name string, min int, conv func(v vm.Value, found bool) vm.Value) {
		l.def(name, min, -1, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
			obj, ok := jsonInput(a[0])
			if !ok {
				return conv(vm.Null, false), nil
			}
			if name == "JSONExtractString" && a[0].Kind() == vm.KindString {
				// Parsed JSON objects are plain JavaScript objects in
				// PostHog's VM, so they stringify as [object Object].
				v, err := nestedGet(obj, a[1:])
				if err != nil || v.Kind() == vm.KindNull {
					return vm.Null, err
				}
				return vm.String(strings.ReplaceAll(vm.JSString(v), "[object Map]", "[object Object]")), nil
			}
			path := a[1:]
			if name == "JSONExtract" {
				path = a[1 : len(a)-1]
			}
			v, err := nestedGet(obj, path)
			if err != nil {
				return vm.Null, err
			}
			return conv(v, true), nil
		})
	}
	extract("JSONExtractBool", 1, func(v vm.Value, _ bool) vm.Value { return vm.Bool(v.AsBool()) })
	// number reads the found value's text as parse does, null when absent
	// or not a number.
	number := func(parse func(string) float64) func(vm.Value, bool) vm.Value {
		return func(v vm.Value, found bool) vm.Value {
			if !found {
				return vm.Null
			}
			f := parse(vm.JSString(v))
			if f != f {
				return vm.Null
			}
			return vm.Number(f)
		}
	}
	extract("JSONExtractInt", 1, number(vm.ParseIntJS))
	extract("JSONExtractFloat", 1, number(vm.ParseFloatJS))
	extract("JSONExtractString", 1, func(v vm.Value, found bool) vm.Value {
		if !found || v.Kind() == vm.KindNull {
			return vm.Null
		}
		return vm.String(vm.JSString(v))
	})
	extract("JSONExtractArrayRaw", 1, func(v vm.Value, _ bool) vm.Value {
		if v.Kind() == vm.KindArray || v.Kind() == vm.KindTuple {
			return v
		}
		return vm.Null
	})
	extract("JSONExtract", 2, func(v vm.Value, found bool) vm.Value {
		if !found {
			return vm.Null
		}
		return v
	})
}

// isObject reports whether v is a reference value.
func isObject(v vm.Value) bool { return v.Kind() >= vm.KindArray }
