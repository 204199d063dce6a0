package vm_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// runAcrossFetches compiles src, runs it, and at every fetch serialises the
// state and resumes it on a new machine, answering fetch with its first
// argument. It returns what was printed and every serialised state.
func runAcrossFetches(t *testing.T, src string) (string, []string) {
	t.Helper()
	p, err := compiler.Compile(src, compiler.Options{Functions: []string{"fetch"}})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := vm.Link(p, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	newMachine := func() *vm.Machine {
		return vm.New(vm.Options{AsyncFunctions: []string{"fetch"}, Print: func(s string) { out.WriteString(s + "\n") }})
	}
	ctx := context.Background()
	res, err := newMachine().Run(ctx, prog, vm.Null)
	var states []string
	for err == nil && res.Async != nil {
		data, merr := res.Async.State.MarshalJSON()
		if merr != nil {
			t.Fatal(merr)
		}
		states = append(states, string(data))
		st, uerr := vm.UnmarshalState(data, stl.Library())
		if uerr != nil {
			t.Fatalf("unmarshal: %v\n%s", uerr, data)
		}
		res, err = newMachine().Resume(ctx, st, res.Async.Args[0])
	}
	if err != nil {
		t.Fatalf("run: %v (printed %q)", err, out.String())
	}
	return out.String(), states
}

// TestLoopClosuresAcrossResume: each iteration's variable stays its own
// through a pause, a serialised state and a resume on another machine, and
// closures still share a variable that is in scope.
func TestLoopClosuresAcrossResume(t *testing.T) {
	out, _ := runAcrossFetches(t, `
let fns := []
let total := 0
for (let i := 1; i <= 3; i := i + 1) {
  let j := fetch(i * 10)
  fun add() {
    total := total + j
    return j
  }
  fns := arrayPushBack(fns, add)
}
let got := []
for (let f in fns) {
  got := arrayPushBack(got, f())
  fetch(0)
}
print(got, total)
`)
	if out != "[10, 20, 30] 60\n" {
		t.Errorf("printed %q, want %q", out, "[10, 20, 30] 60\n")
	}
}

// TestClosedUpvaluesAreNotKept: a loop that makes and drops closures leaves
// no upvalues behind in the run: a later pause serialises only the ones a
// live closure still uses.
func TestClosedUpvaluesAreNotKept(t *testing.T) {
	_, states := runAcrossFetches(t, `
let keep := null
for (let i := 0; i < 5000; i := i + 1) {
  let j := i
  let f := () -> j
  if (i = 4999) {
    keep := f
  }
}
fetch(1)
print(keep())
`)
	if len(states) != 1 {
		t.Fatalf("%d pauses, want 1", len(states))
	}
	var st struct {
		Upvalues []struct {
			ID     int  `json:"id"`
			Closed bool `json:"closed"`
		} `json:"upvalues"`
	}
	if err := json.Unmarshal([]byte(states[0]), &st); err != nil {
		t.Fatal(err)
	}
	// The kept closure's j, plus keep's own slot if a closure captured it.
	if len(st.Upvalues) != 1 || !st.Upvalues[0].Closed || st.Upvalues[0].ID != 5000 {
		t.Errorf("state holds upvalues %+v, want only the kept closure's (id 5000, closed)", st.Upvalues)
	}
}
