package vm_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// fusedCallValues are what a global path may hold when a fused call
// reads it: strings ASCII or not, with or without capitals, numbers,
// booleans, null, containers, and a missing key.
var fusedCallValues = []any{"pro", "Pro", "PRO", "", "pRo ", "  x  ", "Ünïcödé", "ÀÉÎ", "straße", "İ", "ǅ", "日本語", "😀A",
	"12", 12, 12.5, math.Copysign(0, -1), 0, true, false, nil, []any{"A", 1}, map[string]any{"A": "B"}, strings.Repeat("Ab", 600), "missing"}

func fusedCallGlobals(val any) vm.Value {
	props := map[string]any{"plan": val}
	if val == "missing" {
		props = map[string]any{}
	}
	return vm.FromGo(map[string]any{"properties": props})
}

// pathCall is `f(properties.plan)` as the compiler lowers it.
func pathCall(f string) []any {
	return []any{int64(bytecode.String), "plan", int64(bytecode.String), "properties", int64(bytecode.GetGlobal), int64(2),
		int64(bytecode.CallGlobal), f, int64(1)}
}

// pathJumpCall is pathCall with a jump onto the call, which keeps it
// from fusing with the path.
func pathJumpCall(f string) []any {
	return append(pathCall(f)[:6:6], int64(bytecode.Jump), int64(0), int64(bytecode.CallGlobal), f, int64(1))
}

// A native called on a global path runs as one instruction, alone or
// compared with a constant, with the value, the error and the step count
// of the instructions it replaces.
func TestFusedCallMatchesUnfused(t *testing.T) {
	fns := []string{"lower", "upper", "length", "toString", "trim", "reverse", "empty", "notEmpty", "typeof", "toInt", "toFloat", "jsonStringify", "keys"}
	cmps := []bytecode.Op{bytecode.Eq, bytecode.NotEq, bytecode.Lt, bytecode.ILike, bytecode.Regex}
	m := vm.New(vm.Options{})
	ctx := context.Background()
	check := func(name string, fused, plain *vm.Program, wantOp uint8) {
		t.Helper()
		if got := vm.RootOps(fused)[0]; got != wantOp {
			t.Fatalf("%s: first op %d, want %d", name, got, wantOp)
		}
		if ops := vm.RootOps(plain); slices.Contains(ops, vm.OpGlobalCall) || slices.Contains(ops, vm.OpGlobalCallCompare) {
			t.Fatalf("%s: fused across a jump target", name)
		}
		for _, val := range fusedCallValues {
			g := fusedCallGlobals(val)
			fr, ferr := m.Run(ctx, fused, g)
			pr, perr := m.Run(ctx, plain, g)
			if errString(ferr) != errString(perr) || vm.Format(fr.Value) != vm.Format(pr.Value) || fr.Finished != pr.Finished {
				t.Errorf("%s on %v: fused %s %v, plain %s %v", name, val, vm.Format(fr.Value), ferr, vm.Format(pr.Value), perr)
			}
			if ferr == nil && (fr.Ops != pr.Ops-1 || fr.Allocated != pr.Allocated) {
				t.Errorf("%s on %v: fused ran %d ops and allocated %d, plain %d (with its jump) and %d", name, val, fr.Ops, fr.Allocated, pr.Ops, pr.Allocated)
			}
		}
	}
	for _, f := range fns {
		code := append(pathCall(f), int64(bytecode.Return))
		check(f, mustLink(t, code...), mustLink(t, append(pathJumpCall(f), int64(bytecode.Return))...), vm.OpGlobalCall)
		for _, op := range cmps {
			for _, c := range [][]any{{int64(bytecode.String), "pro"}, {int64(bytecode.String), "%R%"}, {int64(bytecode.Integer), int64(3)}} {
				code := append(append(slices.Clone(c), pathCall(f)...), int64(op), int64(bytecode.Return))
				plain := append(append(slices.Clone(c), pathJumpCall(f)...), int64(op), int64(bytecode.Return))
				check(fmt.Sprint(c, " ", op, " ", f), mustLink(t, code...), mustLink(t, plain...), vm.OpGlobalCallCompare)
			}
		}
	}
	// Not fused: calls with too few or too many arguments for the
	// function (they fail as they did), of functions not in the library,
	// of two arguments, and a call that is a jump target.
	for _, code := range [][]any{
		append(pathCall("lower")[:6], int64(bytecode.CallGlobal), "splitByString", int64(1), int64(bytecode.Return)),
		append(pathCall("lower")[:6], int64(bytecode.CallGlobal), "today", int64(1), int64(bytecode.Return)),
		append(pathCall("lower")[:6], int64(bytecode.CallGlobal), "mine", int64(1), int64(bytecode.Return)),
		append(pathCall("lower")[:6], int64(bytecode.String), "a", int64(bytecode.CallGlobal), "splitByString", int64(2), int64(bytecode.Return)),
		append(pathJumpCall("lower"), int64(bytecode.Return)),
	} {
		if ops := vm.RootOps(mustLink(t, code...)); slices.Contains(ops, vm.OpGlobalCall) {
			t.Errorf("%v: fused (%v)", code, ops)
		}
	}
}

// lowerHost serves a host function named lower, which takes the place of
// the library's.
type lowerHost struct{}

func (lowerHost) Call(name string, args []vm.Value) (vm.Value, error) {
	return vm.String("host " + name), nil
}
func (lowerHost) Yield(vm.Usage) error { return nil }

// A fused call goes to whatever the call would: a host function, an async
// function or a function the program declares of the same name, and the
// library's function when a closure holds an upvalue open.
func TestFusedCallShadowed(t *testing.T) {
	ctx := context.Background()
	g := fusedCallGlobals("Pro")
	code := append(pathCall("lower"), int64(bytecode.Return))
	p := mustLink(t, code...)
	cmp := mustLink(t, append(append([]any{int64(bytecode.String), "host lower"}, pathCall("lower")...), int64(bytecode.Eq), int64(bytecode.Return))...)
	if vm.RootOps(p)[0] != vm.OpGlobalCall || vm.RootOps(cmp)[0] != vm.OpGlobalCallCompare {
		t.Fatalf("not fused: %v %v", vm.RootOps(p), vm.RootOps(cmp))
	}

	host := vm.New(vm.Options{HostFunctions: []string{"lower"}})
	if res, err := host.RunHost(ctx, lowerHost{}, p, g); err != nil || res.Value.AsString() != "host lower" || res.Ops != 3 {
		t.Errorf("host function: %s %d ops %v", vm.Format(res.Value), res.Ops, err)
	}
	if res, err := host.RunHost(ctx, lowerHost{}, cmp, g); err != nil || !res.Value.AsBool() || res.Ops != 5 {
		t.Errorf("host function compared: %s %d ops %v", vm.Format(res.Value), res.Ops, err)
	}
	// Without a host, the library's.
	if res, err := host.Run(ctx, p, g); err != nil || res.Value.AsString() != "pro" || res.Ops != 3 {
		t.Errorf("no host: %s %d ops %v", vm.Format(res.Value), res.Ops, err)
	}

	async := vm.New(vm.Options{AsyncFunctions: []string{"lower"}})
	for _, prog := range []*vm.Program{p, cmp} {
		res, err := async.Run(ctx, prog, g)
		if err != nil || res.Async == nil || res.Async.Name != "lower" || vm.Format(vm.NewArray(res.Async.Args)) != `['Pro']` {
			t.Fatalf("async function: %+v %v", res, err)
		}
		res, err = async.Resume(ctx, res.Async.State, vm.String("host lower"))
		want := "'host lower'"
		if prog == cmp {
			want = "true"
		}
		if err != nil || !res.Finished || vm.Format(res.Value) != want {
			t.Errorf("async function resumed: %s %v, want %s", vm.Format(res.Value), err, want)
		}
		if v, finished, err := async.Eval(ctx, prog, g); err != nil || finished || v.Kind() != vm.KindNull {
			t.Errorf("async function, Eval: %s %v %v", vm.Format(v), finished, err)
		}
	}

	// A function the program declares (bytecode version 0).
	m := vm.New(vm.Options{})
	declared := &bytecode.Program{Code: append([]any{int64(bytecode.DeclareFn), "lower", int64(1), int64(3),
		int64(bytecode.String), "mine", int64(bytecode.Return)}, code...)}
	dp, err := vm.Link(declared, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(vm.RootOps(dp), vm.OpGlobalCall) {
		t.Fatalf("not fused: %v", vm.RootOps(dp))
	}
	if res, err := m.Run(ctx, dp, g); err != nil || res.Value.AsString() != "mine" {
		t.Errorf("declared function: %s %v", vm.Format(res.Value), err)
	}

	// An open upvalue: the call takes the long way, to the same result.
	up := compileHog(t, "let x := 'A'; let f := () -> x; return lower(properties.plan) = 'pro' and f() = 'A'")
	if !slices.Contains(vm.RootOps(up), vm.OpGlobalCallCompare) {
		t.Fatalf("not fused: %v", vm.RootOps(up))
	}
	if res, err := m.Run(ctx, up, g); err != nil || !res.Value.AsBool() {
		t.Errorf("open upvalue: %s %v", vm.Format(res.Value), err)
	}
}

// A fused call's result counts towards the memory limit as the call's
// does, and its errors end the run as the call's do.
func TestFusedCallLimits(t *testing.T) {
	ctx := context.Background()
	p := compileHog(t, "return upper(properties.plan) = 'X'")
	if !slices.Contains(vm.RootOps(p), vm.OpGlobalCallCompare) {
		t.Fatalf("not fused: %v", vm.RootOps(p))
	}
	// Checkpoints come every 64 KiB allocated: the result passes one,
	// checked at the next instruction, the return.
	g := fusedCallGlobals(strings.Repeat("a", 70<<10))
	m := vm.New(vm.Options{MemoryLimit: 1000})
	if _, err := m.Run(ctx, p, g); !errors.Is(err, vm.ErrMemoryLimit) {
		t.Errorf("memory limit: %v", err)
	}
	if _, err := m.Run(ctx, p, fusedCallGlobals(12)); err == nil || !strings.Contains(err.Error(), "upper") {
		t.Errorf("type error: %v", err)
	}
}
