package vm_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

func compileHog(tb testing.TB, src string) *vm.Program {
	tb.Helper()
	bc, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		tb.Fatalf("%s: %v", src, err)
	}
	p, err := vm.Link(bc, stl.Library())
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Eval returns what Run does, value, errors and all.
func TestEvalMatchesRun(t *testing.T) {
	m := vm.New(vm.Options{})
	ctx := context.Background()
	globals := filterGlobals(t)
	vm.Freeze(globals)
	for _, src := range []string{
		"return properties.$browser = 'Chrome'",
		"return event = '$pageview' and properties.$browser ilike '%chr%'",
		"return properties",
		"return person.properties.plan",
		"return properties.missing.deeper",
		"return [1, 2, {'a': properties.$os}]",
		"let x := 0; let i := 0; while (i < 100) { x := x + i; i := i + 1 } return x",
		"return jsonParse(properties.$browser)",
		"throw Error('no')",
		"return nope.x",
		"return properties.$browser =~ '('",
		"return length",
	} {
		p := compileHog(t, src)
		res, rerr := m.Run(ctx, p, globals)
		v, finished, eerr := m.Eval(ctx, p, globals)
		if errString(rerr) != errString(eerr) || finished != res.Finished || vm.Format(v) != vm.Format(res.Value) {
			t.Errorf("%s: Eval = %s %v %v, Run = %s %v %v", src, vm.Format(v), finished, eerr, vm.Format(res.Value), res.Finished, rerr)
		}
	}
}

// A program that calls an async function does not finish under Eval, and
// leaves nothing to resume.
func TestEvalAsyncDoesNotFinish(t *testing.T) {
	m := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}})
	fetch := mustLink(t, int64(bytecode.String), "https://x.example", int64(bytecode.CallGlobal), "fetch", int64(1),
		int64(bytecode.Pop), int64(bytecode.True), int64(bytecode.Return))
	for src, p := range map[string]*vm.Program{
		"fetch(url); return true":           fetch,
		"sleep(1); return true":             compileHog(t, "sleep(1); return true"),
		"let f := sleep; f(1); return true": compileHog(t, "let f := sleep; f(1); return true"),
	} {
		v, finished, err := m.Eval(context.Background(), p, vm.Null)
		if err != nil || finished || !v.IsNull() {
			t.Errorf("%s: Eval = %s %v %v, want null false nil", src, vm.Format(v), finished, err)
		}
	}
	// The async step limit still applies.
	m = vm.New(vm.Options{MaxAsyncSteps: -1})
	if _, finished, err := m.Eval(context.Background(), compileHog(t, "sleep(1); return true"), vm.Null); finished || err != nil {
		t.Errorf("no async limit: %v %v", finished, err)
	}
}

// Eval applies every limit Run does.
func TestEvalLimits(t *testing.T) {
	ctx := context.Background()
	eval := func(opts vm.Options, code ...any) error {
		_, _, err := vm.New(opts).Eval(ctx, mustLink(t, code...), vm.Null)
		return err
	}
	if err := eval(vm.Options{MaxSteps: 10000}, infinite...); !errors.Is(err, vm.ErrStepLimit) {
		t.Errorf("steps: %v", err)
	}
	if err := eval(vm.Options{Timeout: 20 * time.Millisecond}, infinite...); !errors.Is(err, vm.ErrTimeout) {
		t.Errorf("timeout: %v", err)
	}
	if err := eval(vm.Options{MemoryLimit: 1 << 20},
		int64(32), "x", int64(29), int64(40), int64(11), int64(36), int64(0), int64(36), int64(0), int64(2), "concat", int64(2), int64(37), int64(0), int64(39), int64(-14)); !errors.Is(err, vm.ErrMemoryLimit) {
		t.Errorf("memory: %v", err)
	}
	if err := eval(vm.Options{MaxCallDepth: 10}, int64(52), "f", int64(0), int64(1), int64(5), int64(55), int64(0), int64(54), int64(0), int64(38),
		int64(53), int64(1), true, int64(0), int64(36), int64(0), int64(54), int64(0), int64(38)); !errors.Is(err, vm.ErrCallDepth) {
		t.Errorf("call depth: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := vm.New(vm.Options{}).Eval(cctx, mustLink(t, infinite...), vm.Null); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context: %v", err)
	}
	if _, _, err := vm.New(vm.Options{}).Eval(ctx, nil, vm.Null); err == nil {
		t.Error("nil program: no error")
	}
}

// A global path reads the right value whatever its position hint says:
// dicts laid out differently, a dict changed between runs, a key gone.
func TestGlobalPathHints(t *testing.T) {
	m := vm.New(vm.Options{})
	p := compileHog(t, "return properties.plan")
	layout := func(keys ...string) vm.Value {
		props := vm.NewDict(len(keys))
		for _, k := range keys {
			props.SetString(k, vm.String("v "+k))
		}
		g := vm.NewDict(2)
		if len(keys)%2 == 0 {
			// As long as "properties", to catch a hint that checks less
			// than the whole key.
			g.SetString("timestamps", vm.String("e"))
		}
		g.SetString("properties", vm.DictValue(props))
		return vm.DictValue(g)
	}
	many := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "plan", "name"}
	reversed := slices.Clone(many)
	slices.Reverse(reversed)
	cases := []struct {
		g    vm.Value
		want string
	}{
		{layout("plan"), "'v plan'"},
		{layout("x", "plan"), "'v plan'"},
		{layout("plan", "x", "y"), "'v plan'"},
		{layout("name", "size"), "null"},
		{layout("name", "plan", "size"), "'v plan'"},
		{layout(many...), "'v plan'"},
		{layout(reversed...), "'v plan'"},
		{vm.FromGo(map[string]any{"properties": "plan"}), "null"},
		{vm.FromGo(map[string]any{"plan": 1}), ""},
	}
	for round := range 2 {
		for i, c := range cases {
			v, _, err := m.Eval(context.Background(), p, c.g)
			got := vm.Format(v)
			if err != nil {
				got = ""
			}
			if got != c.want {
				t.Errorf("round %d, case %d: %q (%v), want %q", round, i, got, err, c.want)
			}
		}
	}
	// A dict the embedder changes between runs (not frozen): the key the
	// hint points at moves.
	props := vm.NewDict(3)
	props.SetString("plan", vm.String("one"))
	g := vm.NewDict(1)
	g.SetString("properties", vm.DictValue(props))
	for i, want := range []string{"one", "two", "three"} {
		if i > 0 {
			props.SetString("plan", vm.String(want))
		}
		if v, _, err := m.Eval(context.Background(), p, vm.DictValue(g)); err != nil || v.AsString() != want {
			t.Errorf("changed dict, run %d: %s %v, want %s", i, vm.Format(v), err, want)
		}
	}
}

// Runs of one program on differently laid out globals at once agree on
// every value (go test -race checks the hints).
func TestGlobalPathHintsConcurrent(t *testing.T) {
	m := vm.New(vm.Options{})
	p := compileHog(t, "if (properties.plan = 'pro') { return person.id } return -1")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				n := (w + i) % 5
				props := map[string]any{"plan": "pro"}
				for j := range n * 3 {
					props[fmt.Sprint("k", j)] = j
				}
				top := map[string]any{"properties": props, "person": map[string]any{"id": n}}
				for j := range n {
					top[fmt.Sprint("t", j)] = j
				}
				g := vm.FromGo(top)
				if i%2 == 0 {
					vm.Freeze(g)
				}
				v, _, err := m.Eval(context.Background(), p, g)
				if err != nil || v.AsNumber() != float64(n) {
					t.Errorf("worker %d, run %d: %s %v, want %d", w, i, vm.Format(v), err, n)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// A constant compared with a global path runs as one instruction, with the
// result, the error and the step count of the three it replaces.
func TestFusedCompareMatchesUnfused(t *testing.T) {
	ops := []bytecode.Op{bytecode.Eq, bytecode.NotEq, bytecode.Gt, bytecode.GtEq, bytecode.Lt, bytecode.LtEq,
		bytecode.Like, bytecode.ILike, bytecode.NotLike, bytecode.NotILike,
		bytecode.Regex, bytecode.NotRegex, bytecode.IRegex, bytecode.NotIRegex}
	consts := [][]any{
		{int64(bytecode.String), "pro"}, {int64(bytecode.String), "%r%"}, {int64(bytecode.String), "^P"},
		{int64(bytecode.String), "("}, {int64(bytecode.String), ""}, {int64(bytecode.String), "2024-05-03"},
		{int64(bytecode.Integer), int64(12)}, {int64(bytecode.Integer), int64(0)}, {int64(bytecode.Float), 1.5},
	}
	values := []any{"pro", "Pro", "professional", "", "12", 12, 12.0, 1.5, 0, true, false, nil,
		[]any{1, 2}, map[string]any{"a": 1}, "2024-05-03T00:00:00Z"}
	m := vm.New(vm.Options{})
	ctx := context.Background()
	for _, op := range ops {
		for _, c := range consts {
			path := []any{int64(bytecode.String), "plan", int64(bytecode.String), "properties", int64(bytecode.GetGlobal), int64(2), int64(op), int64(bytecode.Return)}
			fused := mustLink(t, append(slices.Clone(c), path...)...)
			// A jump onto the path keeps the constant apart.
			plain := mustLink(t, append(append(slices.Clone(c), int64(bytecode.Jump), int64(0)), path...)...)
			if got := vm.RootOps(fused)[0]; got != vm.OpGlobalCompare {
				t.Fatalf("%v %v: first op %d, not fused", c, op, got)
			}
			if got := vm.RootOps(plain)[0]; got == vm.OpGlobalCompare {
				t.Fatalf("%v %v: fused across a jump target", c, op)
			}
			for _, val := range append(values, "missing") {
				props := map[string]any{"plan": val}
				if val == "missing" {
					props = map[string]any{}
				}
				g := vm.FromGo(map[string]any{"properties": props})
				fr, ferr := m.Run(ctx, fused, g)
				pr, perr := m.Run(ctx, plain, g)
				if errString(ferr) != errString(perr) || vm.Format(fr.Value) != vm.Format(pr.Value) || fr.Finished != pr.Finished {
					t.Errorf("%v %v %v: fused %s %v, plain %s %v", c, op, val, vm.Format(fr.Value), ferr, vm.Format(pr.Value), perr)
				}
				if ferr == nil && fr.Ops != pr.Ops-1 {
					t.Errorf("%v %v %v: fused ran %d ops, plain %d (with its jump)", c, op, val, fr.Ops, pr.Ops)
				}
			}
		}
	}
	// Not fused: a comparison that is a jump target, and In.
	for _, code := range [][]any{
		{int64(bytecode.String), "a", int64(bytecode.String), "plan", int64(bytecode.GetGlobal), int64(1), int64(bytecode.In), int64(bytecode.Return)},
	} {
		if got := vm.RootOps(mustLink(t, code...))[0]; got == vm.OpGlobalCompare {
			t.Errorf("%v: fused", code)
		}
	}
}

// Async functions are recognised however many a machine has.
func TestAsyncFunctionsFewAndMany(t *testing.T) {
	for _, n := range []int{1, 8, 20} {
		var names []string
		for i := range n {
			names = append(names, fmt.Sprint("f", i))
		}
		m := vm.New(vm.Options{AsyncFunctions: names})
		for _, name := range append(names, "sleep") {
			p := mustLink(t, int64(bytecode.CallGlobal), name, int64(0), int64(bytecode.Return))
			res, err := m.Run(context.Background(), p, vm.Null)
			if err != nil || res.Async == nil || res.Async.Name != name {
				t.Errorf("%d async functions, %s: %+v %v, want a pause", n, name, res, err)
			}
		}
		p := compileHog(t, "return lower('A')")
		if res, err := m.Run(context.Background(), p, vm.Null); err != nil || !res.Finished || res.Value.AsString() != "a" {
			t.Errorf("%d async functions, lower: %+v %v", n, res, err)
		}
	}
}
