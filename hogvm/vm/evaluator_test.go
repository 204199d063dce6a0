package vm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// An Evaluator running programs one after the other returns what Eval
// does for each, whatever the one before left: errors, limits, a pause,
// a panic.
func TestEvaluatorMatchesEval(t *testing.T) {
	lib := vm.NewLibrary([]vm.Native{{Name: "boom", Min: 0, Max: 1, Fn: func(vm.Env, []vm.Value) (vm.Value, error) { panic("boom") }}}, nil)
	boom := func(tb testing.TB) *vm.Program {
		p, err := vm.Link(&bytecode.Program{Version: 1, Code: []any{int64(bytecode.String), "a", int64(bytecode.CallGlobal), "boom", int64(1), int64(bytecode.Return)}}, lib)
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	globals := filterGlobals(t)
	vm.Freeze(globals)
	progs := []*vm.Program{boom(t)}
	for _, src := range []string{
		"return lower(properties.$browser) = 'chrome'",
		"return upper(properties.$browser)",
		"return properties.$browser = 'Chrome'",
		"return properties",
		"let x := 0; let i := 0; while (i < 30) { x := x + i; i := i + 1 } return x",
		"let f := (a) -> a + 1; return f(1)",
		"try { throw Error('no') } catch (e) { return e.message }",
		"throw Error('no')",
		"return nope.x",
		"return lower(12)",
		"sleep(1); return true",
		"let i := 0; while (i < 100) { i := i + 1 } return i",
		"return [1, 2, {'a': properties.$os}]",
	} {
		progs = append(progs, compileHog(t, src))
	}
	for _, opts := range []vm.Options{{}, {MaxSteps: 150}} {
		m := vm.New(opts)
		e := m.Evaluator()
		if e.Machine() != m {
			t.Fatal("Evaluator of another machine")
		}
		for round := range 3 {
			for i := range progs {
				p := progs[(i*(round+1))%len(progs)]
				v, finished, err := e.Eval(ctx, p, globals)
				wv, wfinished, werr := m.Eval(ctx, p, globals)
				if errString(err) != errString(werr) || finished != wfinished || vm.Format(v) != vm.Format(wv) {
					t.Errorf("%+v, round %d, program %d: Evaluator = %s %v %v, Eval = %s %v %v", opts, round, i, vm.Format(v), finished, err, vm.Format(wv), wfinished, werr)
				}
			}
		}
	}
	// The step limit counts each run's steps alone.
	m := vm.New(vm.Options{MaxSteps: 2000})
	e := m.Evaluator()
	p := compileHog(t, "let i := 0; while (i < 100) { i := i + 1 } return i")
	for range 50 {
		if v, _, err := e.Eval(ctx, p, vm.Null); err != nil || v.AsNumber() != 100 {
			t.Fatalf("%s %v", vm.Format(v), err)
		}
	}
	if _, _, err := e.Eval(ctx, compileHog(t, "while (true) { }"), vm.Null); !errors.Is(err, vm.ErrStepLimit) {
		t.Errorf("steps: %v", err)
	}
	if _, _, err := e.Eval(ctx, nil, vm.Null); err == nil {
		t.Error("nil program: no error")
	}
}

// An Evaluator remembers what programs read of frozen globals for the
// next ones: each still reads what Eval would, from whichever globals it
// is given, and globals that are not frozen are read afresh every time.
func TestEvaluatorPathMemo(t *testing.T) {
	ctx := context.Background()
	var globals []vm.Value
	for i, plan := range []any{"Pro", "free", 12, nil, []any{"a", "B"}, map[string]any{"x": "Y"}, "Ünï", true} {
		g := vm.FromGo(map[string]any{
			"event":      "$pageview",
			"properties": map[string]any{"plan": plan, "seats": i, "list": []any{i, "x"}, "deep": map[string]any{"er": map[string]any{"est": plan}}},
			"person":     map[string]any{"properties": map[string]any{"plan": plan}},
			"top":        i,
		})
		if i != 3 {
			vm.Freeze(g)
		}
		globals = append(globals, g)
	}
	var progs []*vm.Program
	for _, src := range []string{
		"return lower(properties.plan) = 'pro'",
		"return properties.plan",
		"return upper(properties.plan)",
		"return properties.seats",
		"return properties.list.1",
		"return properties.list.length",
		"return properties.deep.er.est",
		"return properties.deep.er",
		"return person.properties.plan",
		"return event.properties.plan",
		"return properties.plan.x",
		"return properties.missing",
		"return top",
		"return nope.plan",
		"let p := properties; p.plan := 'changed'; return properties.plan",
	} {
		progs = append(progs, compileHog(t, src))
	}
	m := vm.New(vm.Options{})
	e := m.Evaluator()
	for round := range 4 {
		for gi := range globals {
			g := globals[(gi*(round+1))%len(globals)]
			for i := range progs {
				p := progs[(i*(round+3))%len(progs)]
				for range 2 {
					v, finished, err := e.Eval(ctx, p, g)
					wv, wfinished, werr := m.Eval(ctx, p, g)
					if errString(err) != errString(werr) || finished != wfinished || vm.Format(v) != vm.Format(wv) {
						t.Errorf("round %d, globals %d, program %d: Evaluator = %s %v %v, Eval = %s %v %v", round, gi, i, vm.Format(v), finished, err, vm.Format(wv), wfinished, werr)
					}
				}
			}
		}
	}
	// Filters run on each event of a batch in turn, on more events than
	// the memos hold.
	var batch []vm.Value
	for i := range 700 {
		g := vm.FromGo(map[string]any{"properties": map[string]any{"plan": fmt.Sprint("P", i), "n": i}})
		vm.Freeze(g)
		batch = append(batch, g)
	}
	lower, n := compileHog(t, "return lower(properties.plan)"), compileHog(t, "return properties.n")
	for range 3 {
		for i, g := range batch {
			if v, _, err := e.Eval(ctx, lower, g); err != nil || v.AsString() != fmt.Sprint("p", i) {
				t.Fatalf("batch event %d: %s %v", i, vm.Format(v), err)
			}
		}
		for i, g := range batch {
			if v, _, err := e.Eval(ctx, n, g); err != nil || v.AsNumber() != float64(i) {
				t.Fatalf("batch event %d: %s %v", i, vm.Format(v), err)
			}
		}
	}
	// Globals not frozen may change between runs.
	g := vm.FromGo(map[string]any{"properties": map[string]any{"plan": "Pro"}})
	p := compileHog(t, "return lower(properties.plan)")
	for _, plan := range []string{"Pro", "Free", "Team"} {
		g.AsDict().SetString("properties", vm.FromGo(map[string]any{"plan": plan}))
		if v, _, err := e.Eval(ctx, p, g); err != nil || v.AsString() != strings.ToLower(plan) {
			t.Errorf("changed globals: %s %v, want %s", vm.Format(v), err, strings.ToLower(plan))
		}
	}
}
