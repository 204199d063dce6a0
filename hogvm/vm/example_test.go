package vm_test

import (
	"context"
	"fmt"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// A filter is linked once and evaluated for every event.
func Example() {
	src, err := bytecode.Decode([]byte(`["_H", 1, 32, "$pageview", 32, "event", 1, 1, 11,
		32, "Chrome", 32, "$browser", 32, "properties", 1, 2, 11, 3, 2]`))
	if err != nil {
		panic(err)
	}
	filter, err := vm.Link(src, stl.Library()) // immutable; share it between goroutines
	if err != nil {
		panic(err)
	}
	m := vm.New(vm.Options{})
	globals, _ := vm.ParseJSON([]byte(`{"event": "$pageview", "properties": {"$browser": "Chrome"}}`))
	res, err := m.Run(context.Background(), filter, globals)
	fmt.Println(res.Value.AsBool(), err)
	// Output: true <nil>
}

// Async host functions such as fetch pause the run; the embedder performs
// the call and resumes, possibly in another process via the JSON state.
func ExampleMachine_Resume() {
	// let res := fetch('https://example.com'); print(res.status)
	src, _ := bytecode.Decode([]byte(`["_H", 1, 32, "https://example.com", 2, "fetch", 1,
		36, 0, 32, "status", 45, 2, "print", 1, 35, 35]`))
	prog, _ := vm.Link(src, stl.Library())
	m := vm.New(vm.Options{
		AsyncFunctions: []string{"fetch"},
		Print:          func(line string) { fmt.Println(line) },
	})
	res, _ := m.Run(context.Background(), prog, vm.Null)
	fmt.Println(res.Async.Name, vm.Format(vm.NewArray(res.Async.Args)))

	saved, _ := res.Async.State.MarshalJSON() // store it anywhere
	state, _ := vm.UnmarshalState(saved, stl.Library())
	response := vm.FromGo(map[string]any{"status": 200, "body": "ok"})
	res, err := m.Resume(context.Background(), state, response)
	fmt.Println(res.Finished, err)
	// Output:
	// fetch ['https://example.com']
	// 200
	// true <nil>
}

// Errors thrown by Hog code and not caught come back as *vm.ThrownError.
func ExampleThrownError() {
	src, _ := bytecode.Decode([]byte(`["_H", 1, 32, "bad input", 2, "Error", 1, 49]`))
	prog, _ := vm.Link(src, stl.Library())
	_, err := vm.New(vm.Options{}).Run(context.Background(), prog, vm.Null)
	fmt.Println(err)
	// Output: Error('bad input')
}
