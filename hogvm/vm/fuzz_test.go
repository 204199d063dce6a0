package vm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// FuzzExec runs arbitrary bytecode with tight limits: whatever the input,
// the VM must return (a result or an error) quickly and never panic.
func FuzzExec(f *testing.F) {
	files, _ := filepath.Glob("testdata/conformance/*.hoge")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil && len(data) < 4000 {
			f.Add(data)
		}
	}
	f.Add([]byte(`["_H", 1, 32, "a", 32, "b", 1, 2, 2, "print", 1]`))
	f.Add([]byte(`["_H", 1, 52, "f", 1, 1, 5, 55, 0, 54, 0, 38, 53, 1, true, 0, 36, 0, 54, 0]`))
	f.Add([]byte(`["_H", 1, 50, 6, 2, "Error", 0, 49, 51, 39, 1, 35]`))
	f.Add([]byte(`["_H", 1, 33, 2, 2, "fetch", 1, 36, 0, 43, 1, 38]`))
	m := vm.New(vm.Options{
		Timeout:        200 * time.Millisecond,
		MaxSteps:       20000,
		MemoryLimit:    1 << 20,
		MaxStringBytes: 1 << 16,
		MaxArrayLength: 1 << 12,
		AsyncFunctions: []string{"fetch"},
		Print:          func(string) {},
	})
	globals := vm.FromGo(map[string]any{"a": map[string]any{"b": []any{1, "x"}}, "event": "$pageview"})
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := bytecode.Decode(data)
		if err != nil {
			return
		}
		p, err := vm.Link(src, stl.Library())
		if err != nil {
			return
		}
		start := time.Now()
		res, err := m.Run(context.Background(), p, globals)
		// Eval ends the same way as Run's first leg.
		if _, finished, eerr := m.Eval(context.Background(), p, globals); !errors.Is(err, vm.ErrTimeout) && !errors.Is(eerr, vm.ErrTimeout) &&
			(finished != res.Finished || (err == nil) != (eerr == nil) || (err != nil && err.Error() != eerr.Error())) {
			t.Fatalf("Eval: finished %v, %v; Run: finished %v, %v", finished, eerr, res.Finished, err)
		}
		for i := 0; err == nil && res.Async != nil && i < 3; i++ {
			js, merr := res.Async.State.MarshalJSON()
			if merr != nil {
				t.Fatalf("marshal state: %v", merr)
			}
			st, uerr := vm.UnmarshalState(js, stl.Library())
			if uerr != nil {
				t.Fatalf("unmarshal own state: %v\n%s", uerr, js)
			}
			res, err = m.Resume(context.Background(), st, vm.Int(int64(i)))
		}
		if errors.Is(err, vm.ErrInternal) {
			t.Fatalf("VM panicked: %v", err)
		}
		if err == nil {
			_ = vm.Format(res.Value)
			_, _ = res.Value.MarshalJSON()
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("run took %v", d)
		}
	})
}
