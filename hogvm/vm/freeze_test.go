package vm_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// freezeGlobals is an event's globals, built anew for every call.
func freezeGlobals() vm.Value {
	return vm.FromGo(map[string]any{
		"event": map[string]any{
			"event": "$pageview",
			"properties": map[string]any{
				"plan": "pro", "seats": 12, "tags": []any{"a", map[string]any{"b": "c"}},
				"$set": map[string]any{"email": "max@example.com"}, "nested": map[string]any{"deep": map[string]any{"x": 1}},
			},
		},
		"person": map[string]any{"id": "p1", "properties": map[string]any{}},
		"inputs": map[string]any{"headers": map[string]any{"A": "1"}, "flag": true},
	})
}

// Programs read frozen globals exactly as they read others: the same
// values, aliases and changes, with the same steps and memory counted; and
// the frozen globals stay as they were.
func TestFreezeReadsAsCopies(t *testing.T) {
	programs := map[string]string{
		"read":      `return event`,
		"json":      `return jsonStringify({'e': event, 'p': person})`,
		"nested":    `return event.properties.nested.deep.x`,
		"keys":      `return [keys(event.properties), values(event.properties.nested)]`,
		"set":       `let e := event; e.properties.plan := 'free'; e.properties.nested.deep.x := 2; return [e, event.properties.plan]`,
		"alias":     `let p := event.properties; let q := p; q.tags.2.b := 'd'; return [p.tags, event.properties.tags]`,
		"identity":  `let p := event.properties; let a := p.nested; let b := p.nested; a.y := 1; return b`,
		"push":      `let t := event.properties.tags; t := arrayPushBack(t, 'z'); return [t, event.properties.tags]`,
		"add key":   `let h := inputs.headers; h.B := '2'; h.A := '0'; return [h, inputs.headers]`,
		"twice":     `let a := event; let b := event; a.event := 'x'; return [a.event, b.event]`,
		"in values": `let vs := values(event.properties); vs.1.email := 'y'; return [vs, event.properties['$set']]`,
		"iterate":   `let out := []; for (let k, v in event.properties) { out := arrayPushBack(out, [k, typeof(v)]) } return out`,
		"equal":     `return [event = event, event.properties.nested = {'deep': {'x': 1}}]`,
	}
	m := vm.New(vm.Options{})
	for name, src := range programs {
		p := compileProgram(t, src)
		plain, err := m.Run(context.Background(), p, freezeGlobals())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		frozen := freezeGlobals()
		vm.Freeze(frozen)
		before, _ := frozen.MarshalJSON()
		got, err := m.Run(context.Background(), p, frozen)
		if err != nil {
			t.Fatalf("%s frozen: %v", name, err)
		}
		want, _ := plain.Value.MarshalJSON()
		have, _ := got.Value.MarshalJSON()
		if string(have) != string(want) {
			t.Errorf("%s: frozen globals give %s, want %s", name, have, want)
		}
		if got.Ops != plain.Ops || got.Allocated != plain.Allocated {
			t.Errorf("%s: frozen globals cost %d ops and %d bytes, want %d and %d", name, got.Ops, got.Allocated, plain.Ops, plain.Allocated)
		}
		if after, _ := frozen.MarshalJSON(); string(after) != string(before) {
			t.Errorf("%s: the program changed the frozen globals: %s, was %s", name, after, before)
		}
	}
}

// Runs on several goroutines share frozen globals and change their own
// copies of them (go test -race checks the sharing).
func TestFreezeConcurrentRuns(t *testing.T) {
	g := freezeGlobals()
	vm.Freeze(g)
	p := compileProgram(t, `let e := event; e.properties.nested.deep.x := e.properties.nested.deep.x + 1
		let h := inputs.headers; h.B := 'b'
		return jsonStringify([e.properties.nested, h, values(event.properties)])`)
	m := vm.New(vm.Options{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				res, err := m.Run(context.Background(), p, g)
				if err != nil {
					t.Error(err)
					return
				}
				if s := res.Value.AsString(); !strings.HasPrefix(s, `[{"deep":{"x":2}},{"A":"1","B":"b"}`) {
					t.Errorf("got %s", s)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A run that pauses with copies of frozen globals on its stack resumes
// with them, in the process and from the state's JSON.
func TestFreezePauseAndResume(t *testing.T) {
	g := freezeGlobals()
	vm.Freeze(g)
	p := compileProgram(t, `let e := event; fun f() { return e.properties.plan }
		let r := fetch('x', {'body': e})
		e.properties.plan := r
		return [f(), event.properties.plan, e.properties.nested]`)
	m := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}})
	res, err := m.Run(context.Background(), p, g)
	if err != nil || res.Async == nil {
		t.Fatalf("Run = %+v, %v; want a pause", res, err)
	}
	data, err := res.Async.State.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const want = `["free","pro",{"deep":{"x":1}}]`
	out, err := m.Resume(context.Background(), res.Async.State, vm.String("free"))
	if got, _ := out.Value.MarshalJSON(); err != nil || string(got) != want {
		t.Errorf("Resume = %s, %v; want %s", got, err, want)
	}
	st, err := vm.UnmarshalState(data, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	out, err = m.Resume(context.Background(), st, vm.String("free"))
	if got, _ := out.Value.MarshalJSON(); err != nil || string(got) != want {
		t.Errorf("Resume from JSON = %s, %v; want %s", got, err, want)
	}
}

// Freeze leaves alone what a lazy copy could not stand for exactly: a
// cyclic tree and one deeper than a copy goes. Programs read them as
// before; Set still works on them, and panics on a frozen dict.
func TestFreezeLeavesCyclesAndDepth(t *testing.T) {
	build := func() map[string]*vm.Dict {
		cyclic := vm.NewDict(2)
		inner := vm.NewDict(1)
		inner.SetString("outer", vm.DictValue(cyclic))
		cyclic.SetString("inner", vm.DictValue(inner))
		deep := vm.NewDict(0)
		for range 300 {
			d := vm.NewDict(1)
			d.SetString("d", vm.DictValue(deep))
			deep = d
		}
		return map[string]*vm.Dict{"cyclic": cyclic, "deep": deep}
	}
	plain, frozen := build(), build()
	m := vm.New(vm.Options{})
	p := compileProgram(t, `let c := g; c.x := 1; return [c, g]`)
	for name, v := range frozen {
		vm.Freeze(vm.DictValue(v))
		globals := func(d *vm.Dict) vm.Value {
			g := vm.NewDict(1)
			g.SetString("g", vm.DictValue(d))
			return vm.DictValue(g)
		}
		want, err := m.Run(context.Background(), p, globals(plain[name]))
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Run(context.Background(), p, globals(v))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := want.Value.MarshalJSON()
		g, _ := got.Value.MarshalJSON()
		if string(g) != string(w) || got.Allocated != want.Allocated {
			t.Errorf("%s: frozen gives %.80s (%d bytes), want %.80s (%d bytes)", name, g, got.Allocated, w, want.Allocated)
		}
		v.SetString("other", vm.Int(1)) // not frozen: no panic
	}
	shallow := vm.NewDict(1)
	shallow.SetString("a", vm.Int(1))
	vm.Freeze(vm.DictValue(shallow))
	defer func() {
		if recover() == nil {
			t.Error("Set on a frozen dict did not panic")
		}
	}()
	shallow.SetString("a", vm.Int(2))
}

func compileProgram(t testing.TB, src string) *vm.Program {
	t.Helper()
	b, err := compiler.Compile(src, compiler.Options{Functions: []string{"fetch"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := vm.Link(b, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A program's unchanged copy of a frozen dict has the frozen dict's
// Content; a changed copy, or a dict that is not frozen, has none.
func TestDictContent(t *testing.T) {
	globals := freezeGlobals()
	if _, ok := globals.AsDict().Content(); ok {
		t.Fatal("a dict that is not frozen has a Content")
	}
	vm.Freeze(globals)
	inputs, _ := globals.AsDict().GetString("inputs")
	headers, _ := inputs.AsDict().GetString("headers")
	want, ok := headers.AsDict().Content()
	if !ok {
		t.Fatal("a frozen dict has no Content")
	}
	if other, _ := inputs.AsDict().Content(); other == want {
		t.Fatal("two frozen dicts have the same Content")
	}
	m := vm.New(vm.Options{})
	for src, same := range map[string]bool{
		`return inputs.headers`:                                  true,
		`let h := inputs.headers; return {'headers': h}.headers`: true,
		`let h := inputs.headers; h.B := '2'; return h`:          false,
		`let h := inputs.headers; h.A := '1'; return h`:          false,
		`return {'A': '1'}`:                                      false,
	} {
		out, err := m.Run(context.Background(), compileProgram(t, src), globals)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got, ok := out.Value.AsDict().Content()
		if (ok && got == want) != same {
			t.Errorf("%s: Content %v (ok %v), same as the frozen dict's: %v, want %v", src, got, ok, got == want, same)
		}
	}
}

// A dict made in a DictBuf (of any size) is a dict like NewDict's, also
// past the room the buffer has, and freezes as one.
func TestDictBuf(t *testing.T) {
	bufs := map[string]func(n int) *vm.Dict{
		"DictBuf":  func(n int) *vm.Dict { return new(vm.DictBuf).Dict(n) },
		"DictBuf6": func(n int) *vm.Dict { return new(vm.DictBuf6).Dict(n) },
		"DictBuf2": func(n int) *vm.Dict { return new(vm.DictBuf2).Dict(n) },
		"DictBuf4": func(n int) *vm.Dict { return new(vm.DictBuf4).Dict(n) },
		"DictBuf0": func(n int) *vm.Dict { return new(vm.DictBuf0).Dict(n) },
	}
	for name, newDict := range bufs {
		t.Run(name, func(t *testing.T) { testDictBuf(t, newDict) })
	}
}

func testDictBuf(t *testing.T, newDict func(n int) *vm.Dict) {
	for _, n := range []int{0, 1, 2, 3, 6, 7, 8, 12} {
		d := newDict(n)
		for i := range n + 2 {
			d.SetString(strings.Repeat("k", i+1), vm.Int(int64(i)))
		}
		want := vm.NewDict(n)
		for i := range n + 2 {
			want.SetString(strings.Repeat("k", i+1), vm.Int(int64(i)))
		}
		got, _ := vm.DictValue(d).MarshalJSON()
		exp, _ := vm.DictValue(want).MarshalJSON()
		if string(got) != string(exp) || d.Len() != n+2 {
			t.Errorf("n=%d: %s, want %s", n, got, exp)
		}
		vm.Freeze(vm.DictValue(d))
		if _, ok := d.Content(); !ok {
			t.Errorf("n=%d: not frozen", n)
		}
	}
}
