package vm_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/stl"

	"github.com/hogwire/hogwire/hogvm/vm"
)

// fetchProgram is:
//
//	let res := fetch(inputs.url, {'method': 'POST', 'body': {'event': event.event}})
//	print(res.status, res.body.ok)
//	let res2 := fetch('second')
//	return [res.status, res2]
var fetchProgram = []any{
	int64(32), "url", int64(32), "inputs", int64(1), int64(2),
	int64(32), "method", int64(32), "POST", int64(32), "body",
	int64(32), "event", int64(32), "event", int64(32), "event", int64(1), int64(2), int64(42), int64(1),
	int64(42), int64(2), int64(2), "fetch", int64(2),
	int64(36), int64(0), int64(32), "status", int64(45),
	int64(36), int64(0), int64(32), "body", int64(45), int64(32), "ok", int64(45),
	int64(2), "print", int64(2), int64(35),
	int64(32), "second", int64(2), "fetch", int64(1),
	int64(36), int64(0), int64(32), "status", int64(45), int64(36), int64(1), int64(43), int64(2), int64(38),
}

func TestAsyncPauseResumeAcrossProcesses(t *testing.T) {
	p := mustLink(t, fetchProgram...)
	var out []string
	m := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}, Print: func(s string) { out = append(out, s) }})
	g := vm.FromGo(map[string]any{"inputs": map[string]any{"url": "https://x"}, "event": map[string]any{"event": "$pageview"}})
	ctx := context.Background()
	res, err := m.Run(ctx, p, g)
	if err != nil {
		t.Fatal(err)
	}
	if res.Finished || res.Async == nil || res.Async.Name != "fetch" {
		t.Fatalf("expected a pause at fetch, got %+v", res)
	}
	if got := vm.Format(vm.NewArray(res.Async.Args)); got != "['https://x', {'method': 'POST', 'body': {'event': '$pageview'}}]" {
		t.Fatalf("fetch args = %s", got)
	}
	// Serialise, then resume on a different machine, as another process would.
	data, err := res.Async.State.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	st, err := vm.UnmarshalState(data, stl.Library())
	if err != nil {
		t.Fatalf("unmarshal state: %v\n%s", err, data)
	}
	if st.AsyncSteps() != 1 {
		t.Errorf("async steps = %d, want 1", st.AsyncSteps())
	}
	m2 := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}, Print: func(s string) { out = append(out, s) }})
	resp, _ := vm.ParseJSON([]byte(`{"status": 200, "body": {"ok": true}}`))
	res, err = m2.Resume(ctx, st, resp)
	if err != nil {
		t.Fatal(err)
	}
	if res.Async == nil || res.Async.Name != "fetch" || vm.Format(vm.NewArray(res.Async.Args)) != "['second']" {
		t.Fatalf("expected second fetch, got %+v", res)
	}
	res, err = m2.Resume(ctx, res.Async.State, vm.String("done"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Finished || vm.Format(res.Value) != "[200, 'done']" {
		t.Fatalf("result = %s (finished %v)", vm.Format(res.Value), res.Finished)
	}
	if strings.Join(out, "\n") != "200 true" {
		t.Errorf("printed %q", out)
	}
}

func TestRunAsyncHelper(t *testing.T) {
	p := mustLink(t, fetchProgram...)
	m := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}})
	g := vm.FromGo(map[string]any{"inputs": map[string]any{"url": "u"}, "event": map[string]any{"event": "e"}})
	calls := 0
	res, err := m.RunAsync(context.Background(), p, g, func(_ context.Context, name string, args []vm.Value) (vm.Value, error) {
		calls++
		return vm.FromGo(map[string]any{"status": 201, "body": map[string]any{}}), nil
	})
	if err != nil || calls != 2 || vm.Format(res.Value) != "[201, {'body': {}, 'status': 201}]" {
		t.Fatalf("res=%s calls=%d err=%v", vm.Format(res.Value), calls, err)
	}
}

func TestAsyncStepLimit(t *testing.T) {
	// while (true) { sleep(0) }
	p := mustLink(t, int64(29), int64(40), int64(8), int64(33), int64(0), int64(2), "sleep", int64(1), int64(35), int64(39), int64(-11))
	m := vm.New(vm.Options{MaxAsyncSteps: 3, AsyncFunctions: []string{"sleep"}})
	n := 0
	_, err := m.RunAsync(context.Background(), p, vm.Null, func(context.Context, string, []vm.Value) (vm.Value, error) {
		n++
		return vm.Null, nil
	})
	var le *vm.LimitError
	if !errors.As(err, &le) || !errors.Is(err, vm.ErrAsyncStepLimit) || n != 3 {
		t.Fatalf("err=%v n=%d", err, n)
	}
	if err.Error() != "Exceeded maximum number of async steps: 3" {
		t.Errorf("message %q", err.Error())
	}
}

// TestAsyncThroughVariable checks that `let f := fetch; f(1)` resumes
// after the call (npm 1.0.71 re-executes the call operand instead).
func TestAsyncThroughVariable(t *testing.T) {
	p := mustLink(t,
		int64(32), "fetch", int64(1), int64(1), // let f := fetch
		int64(33), int64(1), int64(36), int64(0), int64(54), int64(1), // f(1)
		int64(33), int64(2), int64(6), int64(38), // return result + 2
	)
	m := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}})
	res, err := m.Run(context.Background(), p, vm.Null)
	if err != nil || res.Async == nil || res.Async.Name != "fetch" {
		t.Fatalf("res=%+v err=%v", res, err)
	}
	data, _ := res.Async.State.MarshalJSON()
	st, err := vm.UnmarshalState(data, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	res, err = m.Resume(context.Background(), st, vm.Int(40))
	if err != nil || res.Value.AsNumber() != 42 {
		t.Fatalf("res=%s err=%v", vm.Format(res.Value), err)
	}
}

// TestStateWithClosuresAndTry pauses inside a function called from a try
// block with a captured variable, round-trips the state and resumes.
func TestStateWithClosuresAndTry(t *testing.T) {
	// let x := 10
	// let add := (y) -> { let r := fetch(y); return r + x }
	// try { print(add(5)); throw Error('after') } catch (e) { print(e.message) }
	// return x
	p := mustLink(t,
		int64(33), int64(10),
		int64(52), "lambda", int64(1), int64(1), int64(14),
		int64(36), int64(0), int64(2), "fetch", int64(1), // r := fetch(y)
		int64(55), int64(0), int64(36), int64(1), int64(6), int64(38), // return r + x
		int64(35), int64(31), int64(38),
		int64(53), int64(1), true, int64(0),
		int64(50), int64(20),
		int64(33), int64(5), int64(36), int64(1), int64(54), int64(1), int64(2), "print", int64(1), int64(35),
		int64(32), "after", int64(2), "Error", int64(1), int64(49),
		int64(51), int64(39), int64(7),
		int64(32), "message", int64(45), int64(2), "print", int64(1), int64(35),
		int64(36), int64(0), int64(38),
	)
	var out []string
	m := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}, Print: func(s string) { out = append(out, s) }})
	res, err := m.Run(context.Background(), p, vm.Null)
	if err != nil || res.Async == nil {
		t.Fatalf("res=%+v err=%v", res, err)
	}
	data, _ := res.Async.State.MarshalJSON()
	st, err := vm.UnmarshalState(data, stl.Library())
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	res, err = m.Resume(context.Background(), st, vm.Int(1))
	if err != nil || !res.Finished || res.Value.AsNumber() != 10 {
		t.Fatalf("res=%s err=%v", vm.Format(res.Value), err)
	}
	if strings.Join(out, "|") != "11|after" {
		t.Fatalf("printed %q", out)
	}
}

// TestAsyncInsideBytecodeSTL pauses inside arrayMap's callback:
// arrayMap(x -> fetch(x), [1, 2]), serialising the state at every pause.
func TestAsyncInsideBytecodeSTL(t *testing.T) {
	p := mustLink(t,
		int64(52), "lambda", int64(1), int64(0), int64(6),
		int64(36), int64(0), int64(2), "fetch", int64(1), int64(38),
		int64(53), int64(0),
		int64(33), int64(1), int64(33), int64(2), int64(43), int64(2),
		int64(2), "arrayMap", int64(2), int64(38))
	m := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}})
	res, err := m.Run(context.Background(), p, vm.Null)
	var seen []string
	for err == nil && res.Async != nil {
		seen = append(seen, vm.Format(vm.NewArray(res.Async.Args)))
		data, merr := res.Async.State.MarshalJSON()
		if merr != nil {
			t.Fatal(merr)
		}
		st, uerr := vm.UnmarshalState(data, stl.Library())
		if uerr != nil {
			t.Fatalf("%v\n%s", uerr, data)
		}
		res, err = m.Resume(context.Background(), st, vm.Number(res.Async.Args[0].AsNumber()*10))
	}
	if err != nil || vm.Format(res.Value) != "[10, 20]" || strings.Join(seen, " ") != "[1] [2]" {
		t.Fatalf("res=%s err=%v seen=%v", vm.Format(res.Value), err, seen)
	}
}

func TestRunAsyncPerformsSleep(t *testing.T) {
	// sleep(0.01); return 1
	p := mustLink(t, int64(34), 0.01, int64(2), "sleep", int64(1), int64(35), int64(33), int64(1), int64(38))
	m := vm.New(vm.Options{})
	res, err := m.RunAsync(context.Background(), p, vm.Null, func(context.Context, string, []vm.Value) (vm.Value, error) {
		t.Error("perform must not be called for sleep")
		return vm.Null, nil
	})
	if err != nil || res.Value.AsNumber() != 1 {
		t.Fatal(res, err)
	}
}

// A run resumed after an async call reads its globals as before the pause,
// also after the state went through JSON (another process).
func TestResumeKeepsGlobals(t *testing.T) {
	p, err := compiler.Compile("let r := fetch('u', {})\nreturn f'{inputs.a}-{r}'", compiler.Options{Functions: []string{"fetch"}})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := vm.Link(p, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	m := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}})
	globals := vm.FromGo(map[string]any{"inputs": map[string]any{"a": "x"}})
	for _, viaJSON := range []bool{false, true} {
		res, err := m.Run(context.Background(), prog, globals)
		if err != nil || res.Async == nil {
			t.Fatalf("run: %v %v", res, err)
		}
		st := res.Async.State
		if viaJSON {
			b, err := st.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if st, err = vm.UnmarshalState(b, stl.Library()); err != nil {
				t.Fatal(err)
			}
		}
		res, err = m.Resume(context.Background(), st, vm.String("ok"))
		if err != nil {
			t.Fatalf("resume (via JSON %v): %v", viaJSON, err)
		}
		if got := res.Value.ToGo(); got != "x-ok" {
			t.Errorf("resume (via JSON %v) returned %v, want x-ok", viaJSON, got)
		}
	}
}
