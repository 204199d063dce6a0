// Package conformance holds a corpus of Hog destinations that exercise
// what PostHog's destination code relies on and hogwire must get right:
// Unicode whitespace, closures made in loops, input values whose key order
// must survive to the request body, Liquid and Hog input templates,
// templating turned off, PostHog's $$_extend_object, fetch responses and
// errors.
//
// Each case is testdata/NAME.hog (the program) and testdata/NAME.yaml (its
// inputs schema and values, the event, and the responses fetch gives). The
// test compiles the case as the control plane does (package kind and
// inputs.CompileAll), runs it with the data plane's executor, fetch
// answered by the canned responses, and compares a transcript (status,
// error, printed lines, every request with its exact body, the return
// value) with testdata/NAME.golden. Regenerate the golden files with
//
//	go test ./conformance -update
//
// and review the diff.
package conformance
