package vm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/vm"
)

// FuzzParseJSON checks ParseJSON against encoding/json: the same inputs are
// accepted, and they decode to the same values.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, ` [ ] `, `{}`, `"x"`, `-0`, `1e400`, `-1e400`, `0.1e-5`, `1E+2`,
		`01`, `1.`, `.5`, `-`, `+1`, `1e`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `[1 2]`, `nul`, `truex`, `"\u00e9\ud83d\ude00"`,
		`"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`, `"\ud800\uZZZZ"`, `"\x"`, "\"\xff\xfe\"", "\"a\tb\"", `"\/\b\f\n\r\t\"\\"`,
		`{"a":1,"a":2}`, `{"2":1,"1":2,"b":3,"a":4}`, `[[[[[]]]]]`, "\t\n\r 1 \n", `1 2`, `"unterminated`, `{"a":`, `[`, ``,
		"\"caf\xc3\xa9\"", `123456789012345678901234567890`, `{"x":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{")) > 900 || bytes.Contains(data, []byte("__hog")) {
			return // depth limits differ; markers are revived into dates and errors
		}
		got, err := vm.ParseJSON(data)
		want, werr := oracle(data)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: ParseJSON error %v, encoding/json error %v", data, err, werr)
		}
		if err != nil {
			return
		}
		if g := plain(got); !reflect.DeepEqual(g, want) {
			t.Fatalf("%q:\nParseJSON   %#v\nencoding/json %#v", data, g, want)
		}
	})
}

// oracle decodes data with encoding/json, numbers as ParseJSON reads them.
func oracle(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if len(bytes.Trim(data[dec.InputOffset():], " \t\n\r")) > 0 {
		return nil, errors.New("trailing data")
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, _ := strconv.ParseFloat(string(v), 64) // ±Inf on overflow, as ParseJSON
		return f
	case []any:
		for i := range v {
			v[i] = numbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = numbers(v[k])
		}
	}
	return v
}

// plain converts a parsed value to what encoding/json decodes into.
func plain(v vm.Value) any {
	switch v.Kind() {
	case vm.KindBool:
		return v.AsBool()
	case vm.KindNumber:
		return v.AsNumber()
	case vm.KindString:
		return v.AsString()
	case vm.KindArray, vm.KindTuple:
		out := []any{}
		for _, e := range v.AsArray().Elems {
			out = append(out, plain(e))
		}
		return out
	case vm.KindDict:
		out := map[string]any{}
		d := v.AsDict()
		vals := d.Values()
		for i, k := range d.Keys() {
			out[k.AsString()] = plain(vals[i])
		}
		return out
	}
	return nil
}

// Keys come out in JavaScript's property order, and an object with a
// duplicate key keeps the last value at the first key's place.
func TestParseJSONKeyOrder(t *testing.T) {
	v, err := vm.ParseJSON([]byte(`{"b":1,"10":2,"a":3,"2":4,"b":5}`))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range v.AsDict().Keys() {
		keys = append(keys, k.AsString())
	}
	if got := strings.Join(keys, ","); got != "2,10,b,a" {
		t.Errorf("keys %s, want 2,10,b,a", got)
	}
	if b, _ := v.AsDict().GetString("b"); b.AsNumber() != 5 {
		t.Errorf("b = %v, want the last value 5", b)
	}
}

// AppendJSON into a buffer with room allocates nothing: its writer, path
// of containers included, stays on the stack.
func TestAppendJSONAllocs(t *testing.T) {
	inner := vm.NewDict(2)
	inner.SetString("plan", vm.String("pro"))
	inner.SetString("seats", vm.Int(12))
	d := vm.NewDict(3)
	d.SetString("event", vm.String("$pageview"))
	d.SetString("props", vm.DictValue(inner))
	d.SetString("list", vm.NewArray([]vm.Value{vm.Int(1), vm.DictValue(inner)}))
	v := vm.DictValue(d)
	buf := make([]byte, 0, 256)
	want := `{"event":"$pageview","props":{"plan":"pro","seats":12},"list":[1,{"plan":"pro","seats":12}]}`
	if got := vm.AppendJSON(buf, v, 0, 0); string(got) != want {
		t.Fatalf("AppendJSON = %s, want %s", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { vm.AppendJSON(buf, v, 0, 0) }); n != 0 {
		t.Errorf("AppendJSON into a buffer with room: %v allocations, want 0", n)
	}
}

// A cycle is rendered as null at any depth, also past the containers the
// writer keeps without allocating, and the path unwinds past them: a
// sibling that repeats a container on the path is rendered whole.
func TestJSONCycleDeep(t *testing.T) {
	for _, depth := range []int{1, 7, 8, 9, 20} {
		root := vm.NewDict(2)
		cur := root
		for range depth {
			next := vm.NewDict(1)
			cur.SetString("next", vm.DictValue(next))
			cur = next
		}
		cur.SetString("back", vm.DictValue(root))
		leaf := vm.NewDict(1)
		leaf.SetString("x", vm.Int(1))
		cur.SetString("leaf", vm.DictValue(leaf))
		root.SetString("again", vm.DictValue(leaf))
		want := strings.Repeat(`{"next":`, depth) + `{"back":null,"leaf":{"x":1}}` + strings.Repeat(`}`, depth-1) + `,"again":{"x":1}}`
		got, err := vm.DictValue(root).MarshalJSON()
		if err != nil || string(got) != want {
			t.Errorf("depth %d: MarshalJSON = %s, %v; want %s", depth, got, err, want)
		}
		if got := vm.AppendJSON(nil, vm.DictValue(root), 0, 0); string(got) != want {
			t.Errorf("depth %d: AppendJSON = %s, want %s", depth, got, want)
		}
	}
}
