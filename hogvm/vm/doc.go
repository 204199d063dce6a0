// Package vm runs Hog bytecode, PostHog's bytecode for destinations,
// filters and templates, with the output and semantics of PostHog's
// reference TypeScript VM (@posthog/hogvm).
//
// The VM core knows no function by name: a program is linked against a
// Library of native and bytecode functions (package stl builds Hog's
// standard library) and calls the embedder's host functions. Link a
// decoded program once, then run it as often as needed from any number of
// goroutines:
//
//	src, err := bytecode.Decode(jsonBytes)        // ["_H", 1, ...]
//	prog, err := vm.Link(src, stl.Library())      // immutable, shareable
//	m := vm.New(vm.Options{                       // limits, host functions, print
//		Print:          func(line string) { log.Println(line) },
//		AsyncFunctions: []string{"fetch"},
//	})
//	res, err := m.Run(ctx, prog, globals)         // globals: a dict Value
//
// A run either finishes (res.Finished, res.Value) or pauses at a call to an
// async function (res.Async: the function's name and arguments, and the
// State). The embedder performs the call and resumes with its result:
//
//	res, err = m.Resume(ctx, res.Async.State, result)
//
// A caller that needs only the value, such as a filter, runs the program
// with Eval: the same run and limits, without a Result to fill or a State
// to keep, and finished is false where Run would pause.
//
// A State marshals to JSON (in the shape of PostHog's VMState, with the
// bytecode embedded) and UnmarshalState restores it, so a run can pause in
// one process and resume in another. Limits are cumulative across resumes.
//
// The data plane builds one globals value per event (ParseJSON of the
// event's JSON keeps PostHog's key order) and runs every destination's
// filter and code against it; runs never modify it, and it must not be
// modified while runs use it.
//
// Values are the tagged Value type: null, booleans, numbers (doubles, as in
// PostHog), strings, arrays, tuples, dicts, dates, errors and functions.
// FromGo and Value.ToGo convert JSON-like Go data; ParseJSON builds values
// straight from JSON. Globals are never modified by a program: reading a
// container from them yields a copy, reading a scalar copies nothing. An
// embedder that shares globals between many runs freezes them (Freeze):
// a run's copy of a frozen dict then shares its values until the program
// changes the copy or takes a container out of it, and copies only that
// part; what the program sees, and the memory counted, are the same.
//
// An embedder that runs untrusted code under budgets of its own runs it
// with a Host (RunHost): the program's host functions are the Host's Call,
// and every few thousand instructions, and whenever the run has allocated
// another 64 KiB, the run stops at a checkpoint and calls the Host's Yield
// with its Usage. That is where an embedder measures time, enforces its
// step and memory budgets, stops a run whose work is no longer wanted, and
// lets other runs use the CPU; the Options limits apply at the same
// checkpoints.
//
// Memory is what a run allocates, not what it holds at a given moment: every
// string, array, tuple, dict and closure it creates counts, estimated from
// its length, including the results of natives (less what they share with
// their arguments) and values read from the globals (which are copies).
// Garbage therefore counts too; in exchange no way of holding memory escapes
// the count (a container nested in another and grown in place, an array
// grown by index), and natives that build large strings or arrays reserve
// them first, so that a limit stops the allocation before it happens.
//
// Errors: a *ThrownError is a Hog error thrown and not caught (its string
// form is PostHog's, e.g. Error('boom')); a *LimitError reports an exceeded
// limit and matches ErrTimeout, ErrMemoryLimit, ErrStepLimit, ErrCallDepth,
// ErrTooManyArgs, ErrAsyncStepLimit or ErrSizeLimit with errors.Is; any
// other failure (bad operands, arity, invalid JSON, malformed bytecode) is a
// *RuntimeError. No input makes the VM panic or run unbounded.
//
// Deliberate differences from npm @posthog/hogvm 1.0.71, following PostHog's
// newer snapshots: try blocks end with their function (catchAfterReturn);
// length, upper, lower, reverse, trim*, replace*, splitByString, keys and
// values accept null; an async function called through a variable resumes
// at the right place; bytecode standard-library functions (arrayMap, …) can
// be called through a variable. Regular expressions use Go's RE2.
//
// One deliberate difference from every PostHog VM: a closed upvalue is
// never reused for a later capture of the same stack slot, so closures made
// in a loop keep their own iteration's variables (docs/hog.md).
//
// Not supported: the `import` call and multi-chunk bytecode, printing HogQL
// AST values as sql(...) (they print as dicts), PostHog's Python-only run().
package vm
