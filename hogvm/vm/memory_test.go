package vm_test

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

func compileRun(t *testing.T, opts vm.Options, h vm.Host, src string) (vm.Result, error) {
	t.Helper()
	p, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := vm.Link(p, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	return vm.New(opts).RunHost(context.Background(), h, prog, vm.Null)
}

// The memory limit applies to what a run allocates, however it holds it:
// growing a container nested in another, growing an array by index,
// keeping what natives return, or only making garbage.
func TestMemoryLimitCountsAllocations(t *testing.T) {
	for name, src := range map[string]string{
		"nested dict": `let d := {'inner': {}}
			let i := 0
			while (true) { d.inner[toString(i)] := i; i := i + 1 }`,
		"array grown by index": `let a := []
			a[1000000] := 1
			return length(a)`,
		"kept native results": `let a := []
			while (true) { a := arrayPushBack(a, jsonParse('[1, 2, 3, {"a": "bcdefgh"}]')) }`,
		"garbage": `let i := 0
			while (true) { let s := concat('x', toString(i)); i := i + 1 }`,
		"string doubling": `let s := 'x'
			while (true) { s := concat(s, s) }`,
	} {
		_, err := compileRun(t, vm.Options{MemoryLimit: 1 << 20, Timeout: -1}, nil, src)
		if !errors.Is(err, vm.ErrMemoryLimit) {
			t.Errorf("%s: err = %v, want a memory limit", name, err)
		}
	}
}

// A huge allocation is refused before it happens: a 16 MiB concat under
// a 1 MiB limit fails without the process allocating it.
func TestMemoryLimitBeforeHugeAllocation(t *testing.T) {
	p, err := compiler.Compile(`let s := '0123456789abcdef'
		while (length(s) < 400000) { s := concat(s, s) }
		let parts := []
		while (length(parts) < 40) { parts := arrayPushBack(parts, s) }
		return concat(parts.1, parts.2, parts.3, parts.4, parts.5, parts.6, parts.7, parts.8, parts.9, parts.10,
			parts.11, parts.12, parts.13, parts.14, parts.15, parts.16, parts.17, parts.18, parts.19, parts.20,
			parts.21, parts.22, parts.23, parts.24, parts.25, parts.26, parts.27, parts.28, parts.29, parts.30,
			parts.31, parts.32, parts.33, parts.34, parts.35, parts.36, parts.37, parts.38, parts.39, parts.40)`, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := vm.Link(p, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	m := vm.New(vm.Options{MemoryLimit: 2 << 20, MaxStringBytes: 1 << 30})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = m.Run(context.Background(), prog, vm.Null)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, vm.ErrMemoryLimit) {
		t.Fatalf("err = %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Fatalf("the process allocated %d bytes for a run limited to 2 MiB", got)
	}
}

// The host sees the allocations grow, and can refuse them.
func TestHostMemoryBudget(t *testing.T) {
	errBudget := errors.New("budget")
	h := &testHost{stop: func(u vm.Usage) error {
		if u.Allocated > 256<<10 {
			return errBudget
		}
		return nil
	}}
	_, err := compileRun(t, vm.Options{MemoryLimit: -1, Timeout: -1}, h, `let a := []
		while (true) { a := arrayPushBack(a, 'x') }`)
	if !errors.Is(err, errBudget) {
		t.Fatalf("err = %v", err)
	}
	// A small program allocates little.
	res, err := compileRun(t, vm.Options{}, nil, `return {'a': [1, 2, concat('x', 'y')]}`)
	if err != nil || res.Allocated <= 0 || res.Allocated > 1024 {
		t.Fatalf("allocated %d, err %v", res.Allocated, err)
	}
}
