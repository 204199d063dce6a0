package vm_test

import (
	"slices"
	"testing"

	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// A template that only reads a global says which; LookupGlobal reads it as
// the program would, and declines what it cannot read without the VM.
func TestGlobalPathAndLookup(t *testing.T) {
	for tmpl, want := range map[string][]string{
		"{event.properties.plan}":       {"event", "properties", "plan"},
		"{event}":                       {"event"},
		"{event.properties['plan']}":    nil,
		"plan: {event.properties.plan}": nil,
	} {
		src, err := compiler.CompileTemplate(tmpl, compiler.Options{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := vm.Link(src, stl.Library())
		if err != nil {
			t.Fatal(err)
		}
		if got := p.GlobalPath(); !slices.Equal(got, want) {
			t.Errorf("%s: GlobalPath %q, want %q", tmpl, got, want)
		}
	}
	globals := vm.FromGo(map[string]any{"event": map[string]any{"properties": map[string]any{"plan": "pro"}, "tags": []any{"a"}}})
	for _, c := range []struct {
		path []string
		want any
		ok   bool
	}{
		{[]string{"event", "properties", "plan"}, "pro", true},
		{[]string{"event", "properties", "missing", "deeper"}, nil, true},
		{[]string{"event", "tags", "0"}, nil, false}, // a property of an array: the VM's job
		{[]string{"nope"}, nil, false},
	} {
		v, ok := vm.LookupGlobal(globals, c.path)
		if ok != c.ok || (ok && v.ToGo() != c.want) {
			t.Errorf("%v: %v %v, want %v %v", c.path, v.ToGo(), ok, c.want, c.ok)
		}
	}
}

// A template without placeholders is a constant, which an embedder can
// take once instead of running it.
func TestProgramConstant(t *testing.T) {
	for tmpl, want := range map[string]any{
		"POST":                 "POST",
		"":                     "",
		"https://x.example/in": "https://x.example/in",
		"{event}":              nil,
		"a {event.x} b":        nil,
	} {
		src, err := compiler.CompileTemplate(tmpl, compiler.Options{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := vm.Link(src, stl.Library())
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.Constant()
		if want == nil {
			if ok {
				t.Errorf("%q: Constant %v, want none", tmpl, got)
			}
			continue
		}
		if !ok || got.ToGo() != want {
			t.Errorf("%q: Constant %v, %v; want %q", tmpl, got, ok, want)
		}
	}
	if c, ok := compileProgram(t, `return 'POST'`).Constant(); !ok || c.AsString() != "POST" {
		t.Errorf("return 'POST': Constant %v, %v", c, ok)
	}
	if _, ok := compileProgram(t, `let m := 'POST'; return m`).Constant(); ok {
		t.Error("a program that returns a string in more steps is a constant")
	}
}
