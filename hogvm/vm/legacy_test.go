package vm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

func printed(t *testing.T, src string) string {
	t.Helper()
	p, err := bytecode.Decode([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	prog, err := vm.Link(p, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	m := vm.New(vm.Options{Print: func(s string) { out = append(out, s) }})
	if _, err := m.Run(context.Background(), prog, vm.Null); err != nil {
		out = append(out, "error: "+err.Error())
	}
	return strings.Join(out, "\n")
}

// Expected outputs below come from npm @posthog/hogvm 1.0.71.
func TestDeclareFn(t *testing.T) {
	got := printed(t, `["_H", 1, 41, "add", 2, 6, 36, 1, 36, 0, 7, 38, 33, 2, 33, 10, 2, "add", 2, 2, "print", 1, 33, 1, 2, "add", 1, 2, "print", 1]`)
	if got != "-8\n1" {
		t.Fatalf("got %q", got)
	}
}

func TestVersion0ArgumentOrder(t *testing.T) {
	got := printed(t, `["_h", 32, "b", 32, "a", 2, "concat", 2, 2, "print", 1, 33, 3, 33, 1, 2, "range", 2, 2, "print", 1]`)
	if got != "ab\n[1, 2]" {
		t.Fatalf("got %q", got)
	}
}

func TestNullOpcodeIsNop(t *testing.T) {
	if got := printed(t, `["_H", 1, null, 33, 1, null, 2, "print", 1]`); got != "1" {
		t.Fatalf("got %q", got)
	}
}

func TestValueConversions(t *testing.T) {
	v := vm.FromGo(map[string]any{"b": []any{1, 2.5, "x", nil, true}, "a": map[string]any{"2": 1, "1": 2, "z": 3}, "n": int64(7)})
	if got := vm.Format(v); got != "{'a': {'1': 2, '2': 1, 'z': 3}, 'b': [1, 2.5, 'x', null, true], 'n': 7}" {
		t.Errorf("Format = %s", got)
	}
	js, _ := v.MarshalJSON()
	if string(js) != `{"a":{"1":2,"2":1,"z":3},"b":[1,2.5,"x",null,true],"n":7}` {
		t.Errorf("JSON = %s", js)
	}
	back, err := vm.ParseJSON(js)
	if err != nil || vm.Format(back) != vm.Format(v) {
		t.Errorf("ParseJSON = %s, %v", vm.Format(back), err)
	}
	g := v.ToGo().(map[string]any)
	if g["n"] != int64(7) || g["b"].([]any)[1] != 2.5 || g["a"].(map[string]any)["z"] != int64(3) {
		t.Errorf("ToGo = %#v", g)
	}
	if vm.FromGo(struct{}{}).Kind() != vm.KindNull {
		t.Error("unsupported types should become null")
	}
	d := vm.NewDict(0)
	for i := 0; i < 20; i++ { // past the size where dicts switch to an index
		d.Set(vm.Int(int64(i)), vm.String("n"))
		d.SetString(strings.Repeat("k", i+1), vm.Int(int64(i)))
	}
	if v, ok := d.Get(vm.Int(3)); !ok || v.AsString() != "n" {
		t.Error("number key lookup")
	}
	if _, ok := d.Get(vm.String("3")); ok {
		t.Error("'3' and 3 must be different keys")
	}
	if v, ok := d.GetString("kkkkk"); !ok || v.AsNumber() != 4 || d.Len() != 40 {
		t.Error("string key lookup")
	}
}

func TestDictCopySharesIndexSafely(t *testing.T) {
	props := map[string]any{}
	for i := 0; i < 20; i++ {
		props[strings.Repeat("p", i+1)] = i
	}
	g := vm.FromGo(map[string]any{"props": props})
	// let p := props; p.new := 1; return [p.new, props.new, p.ppp]
	p := mustLink(t,
		int64(32), "props", int64(1), int64(1),
		int64(36), int64(0), int64(32), "new", int64(33), int64(1), int64(46),
		int64(36), int64(0), int64(32), "new", int64(45),
		int64(32), "new", int64(32), "props", int64(1), int64(2),
		int64(36), int64(0), int64(32), "ppp", int64(45),
		int64(36), int64(0),
		int64(43), int64(4), int64(38))
	res, err := vm.New(vm.Options{}).Run(context.Background(), p, g)
	if err != nil || !strings.HasPrefix(vm.Format(res.Value), "[1, null, 2, {") {
		t.Fatalf("res=%s err=%v", vm.Format(res.Value), err)
	}
	copied := res.Value.AsArray().Elems[3].AsDict()
	orig, _ := g.AsDict().GetString("props")
	// The original gains keys after the copy was made; the copy, which
	// borrowed its index, must neither see them nor lose its own keys.
	orig.AsDict().SetString("late", vm.Int(1))
	orig.AsDict().SetString("new", vm.Int(99))
	if _, ok := copied.GetString("late"); ok {
		t.Error("copy sees a key added to the original")
	}
	if v, ok := copied.GetString("new"); !ok || v.AsNumber() != 1 {
		t.Errorf("copy lost its own key: %v %v", vm.Format(v), ok)
	}
	if v, ok := copied.GetString("ppp"); !ok || v.AsNumber() != 2 {
		t.Error("copy lost an original key")
	}
}
