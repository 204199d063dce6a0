package vm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hogwire/hogwire/hogvm/vm"
)

func run(t *testing.T, opts vm.Options, code ...any) (vm.Result, error) {
	t.Helper()
	return vm.New(opts).Run(context.Background(), mustLink(t, code...), vm.Null)
}

// infinite is `while (true) {}`.
var infinite = []any{int64(29), int64(40), int64(2), int64(39), int64(-5)}

func TestTimeout(t *testing.T) {
	_, err := run(t, vm.Options{Timeout: 20 * time.Millisecond}, infinite...)
	var le *vm.LimitError
	if !errors.As(err, &le) || !errors.Is(err, vm.ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), "Execution timed out after 0.02 seconds. Performed ") {
		t.Errorf("message %q", err.Error())
	}
}

func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := vm.New(vm.Options{}).Run(ctx, mustLink(t, infinite...), vm.Null)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestTimeoutIsCumulativeAcrossResumes(t *testing.T) {
	// sleep(0); while (true) {}
	p := mustLink(t, int64(33), int64(0), int64(2), "sleep", int64(1), int64(35), int64(29), int64(40), int64(2), int64(39), int64(-5))
	m := vm.New(vm.Options{Timeout: 30 * time.Millisecond})
	res, err := m.Run(context.Background(), p, vm.Null)
	if err != nil || res.Async == nil {
		t.Fatal(res, err)
	}
	start := time.Now()
	_, err = m.Resume(context.Background(), res.Async.State, vm.Null)
	if !errors.Is(err, vm.ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

func TestStepLimit(t *testing.T) {
	res, err := run(t, vm.Options{MaxSteps: 10000}, infinite...)
	if !errors.Is(err, vm.ErrStepLimit) {
		t.Fatalf("err = %v", err)
	}
	_ = res
}

func TestMemoryLimit(t *testing.T) {
	// let s := 'x'; while (true) { s := concat(s, s) }
	_, err := run(t, vm.Options{MemoryLimit: 1 << 20},
		int64(32), "x", int64(29), int64(40), int64(11), int64(36), int64(0), int64(36), int64(0), int64(2), "concat", int64(2), int64(37), int64(0), int64(39), int64(-14))
	if !errors.Is(err, vm.ErrMemoryLimit) {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), "Memory limit of 1048576 bytes exceeded. Tried to allocate ") {
		t.Errorf("message %q", err.Error())
	}
}

func TestStringSizeLimit(t *testing.T) {
	_, err := run(t, vm.Options{MaxStringBytes: 100, MemoryLimit: -1},
		int64(32), "x", int64(29), int64(40), int64(11), int64(36), int64(0), int64(36), int64(0), int64(2), "concat", int64(2), int64(37), int64(0), int64(39), int64(-14))
	if !errors.Is(err, vm.ErrSizeLimit) {
		t.Fatalf("err = %v", err)
	}
}

func TestArraySizeLimit(t *testing.T) {
	if _, err := run(t, vm.Options{MaxArrayLength: 1000}, int64(33), int64(1e9), int64(2), "range", int64(1)); !errors.Is(err, vm.ErrSizeLimit) {
		t.Fatalf("range: err = %v", err)
	}
	// let a := []; a[1e9] := 1
	if _, err := run(t, vm.Options{MaxArrayLength: 1000}, int64(43), int64(0), int64(36), int64(0), int64(33), int64(1e9), int64(33), int64(1), int64(46)); !errors.Is(err, vm.ErrSizeLimit) {
		t.Fatalf("set: err = %v", err)
	}
}

func TestCallDepth(t *testing.T) {
	// fun f() { return f() } f()
	code := []any{int64(52), "f", int64(0), int64(1), int64(5), int64(55), int64(0), int64(54), int64(0), int64(38),
		int64(53), int64(1), true, int64(0), int64(36), int64(0), int64(54), int64(0), int64(38)}
	_, err := run(t, vm.Options{}, code...)
	if !errors.Is(err, vm.ErrCallDepth) || err.Error() != "Call stack exceeded maximum length of 1000" {
		t.Fatalf("err = %v", err)
	}
	if _, err := run(t, vm.Options{MaxCallDepth: 10}, code...); !errors.Is(err, vm.ErrCallDepth) {
		t.Fatalf("err = %v", err)
	}
}

func TestTooManyArgs(t *testing.T) {
	code := []any{}
	for i := 0; i < 301; i++ {
		code = append(code, int64(33), int64(i))
	}
	code = append(code, int64(2), "concat", int64(301))
	if _, err := run(t, vm.Options{}, code...); !errors.Is(err, vm.ErrTooManyArgs) || err.Error() != "Too many arguments" {
		t.Fatalf("err = %v", err)
	}
	if _, err := run(t, vm.Options{MaxArgs: 400}, code...); err != nil {
		t.Fatalf("with MaxArgs 400: %v", err)
	}
}

func TestThrownError(t *testing.T) {
	// throw Error('it''s bad', {'code': 1})
	_, err := run(t, vm.Options{}, int64(32), "it's bad", int64(32), "code", int64(33), int64(1), int64(42), int64(1), int64(2), "Error", int64(2), int64(49))
	var te *vm.ThrownError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v", err)
	}
	if te.Type != "Error" || te.Message != "it's bad" || vm.Format(te.Payload) != "{'code': 1}" {
		t.Errorf("%+v", te)
	}
	if err.Error() != `Error('it\'s bad')` {
		t.Errorf("string form %q", err.Error())
	}
	_, err = run(t, vm.Options{}, int64(32), "Custom", int64(32), "m", int64(2), "HogError", int64(2), int64(49))
	if !errors.As(err, &te) || err.Error() != "Custom('m')" {
		t.Errorf("HogError: %v", err)
	}
}

func TestRuntimeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []any
		msg  string
	}{
		{"throw non-error", []any{int64(33), int64(1), int64(49)}, "Can not throw: value is not of type Error"},
		{"pop try", []any{int64(51)}, "Invalid operation POP_TRY: no try block to pop"},
		{"global not found", []any{int64(32), "b", int64(32), "a", int64(1), int64(2)}, "Global variable not found: a.b"},
		{"unknown function", []any{int64(2), "nope", int64(0)}, "Unsupported function call: nope"},
		{"arity min", []any{int64(2), "concat", int64(0)}, "Function concat requires at least 1 arguments"},
		{"arity max", []any{int64(33), int64(1), int64(33), int64(1), int64(2), "length", int64(2)}, "Function length requires at most 1 arguments"},
		{"arity bytecode stl", []any{int64(33), int64(1), int64(2), "arrayMap", int64(1)}, "Function arrayMap requires exactly 2 arguments"},
		{"invalid closure", []any{int64(33), int64(1), int64(54), int64(0)}, "Invalid closure: 1"},
		{"too many args to lambda", []any{int64(33), int64(1), int64(52), "f", int64(0), int64(0), int64(2), int64(31), int64(38), int64(53), int64(0), int64(54), int64(1)}, "Too many arguments. Passed 1, expected 0"},
		{"index zero", []any{int64(33), int64(1), int64(43), int64(1), int64(33), int64(0), int64(45)}, "Hog arrays start from index 1"},
		{"set on string", []any{int64(32), "s", int64(32), "k", int64(33), int64(1), int64(46)}, "Can not set k on non-object: string"},
		{"bad json", []any{int64(32), "{", int64(2), "jsonParse", int64(1)}, "jsonParse: invalid JSON"},
		{"stack underflow", []any{int64(6)}, "Invalid HogQL bytecode, stack is empty, can not pop"},
		{"unknown opcode", []any{int64(99)}, `Unexpected node while running bytecode in chunk "root": 99`},
		{"truncated", []any{int64(33)}, "Unexpected end of bytecode"},
		{"bad jump", []any{int64(39), int64(-100)}, "Invalid jump target in bytecode"},
		{"upvalue in root", []any{int64(55), int64(0)}, "Invalid upvalue index: 0"},
		{"closure count", []any{int64(52), "f", int64(0), int64(1), int64(2), int64(31), int64(38), int64(53), int64(0)}, "Invalid upvalue count. Expected 1, got 0"},
	} {
		_, err := run(t, vm.Options{}, tc.code...)
		var re *vm.RuntimeError
		if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.msg)
		}
	}
}

// TestNativeErrorsAreNotCatchable: try { jsonParse('{') } catch { } still fails.
func TestNativeErrorsAreNotCatchable(t *testing.T) {
	_, err := run(t, vm.Options{},
		int64(50), int64(8), int64(32), "{", int64(2), "jsonParse", int64(1), int64(35), int64(51), int64(39), int64(1), int64(35))
	var re *vm.RuntimeError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
}

// testHost serves host functions from a map and records checkpoints;
// stop, when set, ends the run at the first checkpoint past it.
type testHost struct {
	funcs  map[string]func([]vm.Value) (vm.Value, error)
	yields []vm.Usage
	stop   func(vm.Usage) error
}

func (h *testHost) Call(name string, args []vm.Value) (vm.Value, error) { return h.funcs[name](args) }

func (h *testHost) Yield(u vm.Usage) error {
	h.yields = append(h.yields, u)
	if h.stop != nil {
		return h.stop(u)
	}
	return nil
}

func TestHostFunctions(t *testing.T) {
	var got []vm.Value
	h := &testHost{funcs: map[string]func([]vm.Value) (vm.Value, error){
		"double": func(args []vm.Value) (vm.Value, error) {
			got = append(got, args...)
			return vm.Number(args[0].AsNumber() * 2), nil
		},
		"fail": func([]vm.Value) (vm.Value, error) { return vm.Null, errors.New("boom") },
		// A host function overrides the standard library.
		"length": func([]vm.Value) (vm.Value, error) { return vm.String("host"), nil },
	}}
	m := vm.New(vm.Options{HostFunctions: []string{"double", "fail", "length"}})
	res, err := m.RunHost(context.Background(), h, mustLink(t, int64(33), int64(21), int64(2), "double", int64(1), int64(32), "x", int64(2), "length", int64(1), int64(43), int64(2), int64(38)), vm.Null)
	if err != nil || vm.Format(res.Value) != "[42, 'host']" || len(got) != 1 {
		t.Fatalf("res=%s err=%v", vm.Format(res.Value), err)
	}
	_, err = m.RunHost(context.Background(), h, mustLink(t, int64(2), "fail", int64(0)), vm.Null)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
	// Without a host, the standard library answers.
	res, err = m.Run(context.Background(), mustLink(t, int64(32), "x", int64(2), "length", int64(1), int64(38)), vm.Null)
	if err != nil || res.Value.AsNumber() != 1 {
		t.Fatalf("res=%s err=%v", vm.Format(res.Value), err)
	}
}

// An infinite loop reaches its host every few thousand steps, and the
// host's error ends it.
func TestHostYield(t *testing.T) {
	stop := errors.New("stop")
	h := &testHost{stop: func(u vm.Usage) error {
		if u.Steps > 50000 {
			return stop
		}
		return nil
	}}
	_, err := vm.New(vm.Options{Timeout: -1}).RunHost(context.Background(), h, mustLink(t, infinite...), vm.Null)
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v", err)
	}
	if n := len(h.yields); n < 10 || n > 100 {
		t.Fatalf("%d yields for 50000 steps", n)
	}
	for i := 1; i < len(h.yields); i++ {
		if h.yields[i].Steps <= h.yields[i-1].Steps {
			t.Fatalf("steps went back: %v", h.yields)
		}
	}
}

func TestGlobalsAreCopiedOnRead(t *testing.T) {
	g := vm.FromGo(map[string]any{"event": map[string]any{"properties": map[string]any{"a": 1}}})
	// let p := event.properties; p.a := 2; return event.properties.a
	p := mustLink(t,
		int64(32), "properties", int64(32), "event", int64(1), int64(2),
		int64(36), int64(0), int64(32), "a", int64(33), int64(2), int64(46),
		int64(32), "a", int64(32), "properties", int64(32), "event", int64(1), int64(3), int64(38))
	res, err := vm.New(vm.Options{}).Run(context.Background(), p, g)
	if err != nil || res.Value.AsNumber() != 1 {
		t.Fatalf("res=%s err=%v", vm.Format(res.Value), err)
	}
	if got := g.ToGo().(map[string]any)["event"].(map[string]any)["properties"].(map[string]any)["a"]; got != int64(1) {
		t.Fatalf("globals changed: %v", got)
	}
}

func TestConcurrentRuns(t *testing.T) {
	p := mustLink(t, filterCode...)
	g := filterGlobals(t)
	m := vm.New(vm.Options{})
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			for j := 0; j < 200; j++ {
				res, err := m.Run(context.Background(), p, g)
				if err == nil && !res.Value.AsBool() {
					err = errors.New("filter did not match")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestFilterMatchesAndRejects(t *testing.T) {
	p := mustLink(t, filterCode...)
	m := vm.New(vm.Options{})
	for _, tc := range []struct {
		event, browser string
		want           bool
	}{{"$pageview", "Chrome", true}, {"$pageview", "Firefox", false}, {"$pageleave", "Chrome", false}} {
		g := vm.FromGo(map[string]any{"event": tc.event, "properties": map[string]any{"$browser": tc.browser}})
		res, err := m.Run(context.Background(), p, g)
		if err != nil || res.Value.AsBool() != tc.want {
			t.Errorf("%+v: got %s, %v", tc, vm.Format(res.Value), err)
		}
	}
	// Missing properties compare as null.
	res, err := m.Run(context.Background(), p, vm.FromGo(map[string]any{"event": "$pageview", "properties": map[string]any{}}))
	if err != nil || res.Value.AsBool() {
		t.Errorf("missing property: %s, %v", vm.Format(res.Value), err)
	}
}

func TestPrintAndFormat(t *testing.T) {
	var lines []string
	m := vm.New(vm.Options{Print: func(s string) { lines = append(lines, s) }})
	// print('a', 1.5, [1, 'b'], null); print()
	_, err := m.Run(context.Background(), mustLink(t,
		int64(32), "a", int64(34), 1.5, int64(33), int64(1), int64(32), "b", int64(43), int64(2), int64(31), int64(2), "print", int64(4), int64(35),
		int64(2), "print", int64(0), int64(35)), vm.Null)
	if err != nil || strings.Join(lines, "|") != "a 1.5 [1, 'b'] null|" {
		t.Fatalf("lines=%q err=%v", lines, err)
	}
}

func TestPanickingHostFunctionIsContained(t *testing.T) {
	h := &testHost{funcs: map[string]func([]vm.Value) (vm.Value, error){
		"bad": func([]vm.Value) (vm.Value, error) { panic("host bug") },
	}}
	m := vm.New(vm.Options{HostFunctions: []string{"bad"}})
	_, err := m.RunHost(context.Background(), h, mustLink(t, int64(2), "bad", int64(0)), vm.Null)
	if !errors.Is(err, vm.ErrInternal) || !strings.Contains(err.Error(), "host bug") {
		t.Fatalf("err = %v", err)
	}
	// The machine keeps working.
	res, err := m.Run(context.Background(), mustLink(t, int64(33), int64(1), int64(38)), vm.Null)
	if err != nil || res.Value.AsNumber() != 1 {
		t.Fatal(res, err)
	}
}
