// Package executor runs one destination on one event, as PostHog's CDP runs
// a HogFunction: the filters, then the inputs, then the program with its
// fetch() calls. The data plane and the test interface share it.
//
// Prepare decodes and links a destination's bytecode once; the result is
// immutable and shared by every invocation. NewEvent builds an event's Hog
// globals once; they are shared by every destination the event reaches.
// Invoke runs one destination on one event and reports everything it did in
// a Result:
//
//	dest, err := executor.Prepare(d)                  // d: *hogwirev1.Destination from the config stream
//	if err != nil { … }
//	g := executor.NewEvent(ev, project, executor.Source{URL: "https://hogwire.example.com"})
//	res := dest.Invoke(ctx, g, executor.Options{Fetcher: fetcher})
//	switch res.Status {
//	case executor.Filtered:                          // nothing ran
//	case executor.Succeeded:                         // res.Value, res.Fetches, res.Logs
//	default:                                         // res.Error; res.Status.Metric() names the metric
//	}
//	shipLogs(res.Redact().Logs)                      // secrets replaced by <redacted>
//
// # Behaviour, following PostHog
//
// Filters run against the filter globals (see package filters) and match
// only when they return exactly true; an event whose name no event filter
// names is filtered without running the VM. A filter error is FilterFailed
// (metric filtering_failed), with the error logged as "Error filtering event
// <uuid>: <error>".
//
// Inputs are rendered in schema order; each input sees the globals and the
// inputs rendered before it as inputs. A compiled template string ("Hi
// {person.name}") runs its bytecode; a string that is one placeholder keeps
// its value's type; dictionaries and lists are rendered element by element,
// and a "$$_extend_object" key is rendered first and spread into its object.
// Inputs without bytecode keep their value. An error is InputsFailed (metric
// inputs_failed), logged as "Error building inputs: Could not execute
// bytecode for input field: <key>: <error>".
//
// The program runs with the globals event, person, groups, project, source
// and inputs under the destination's limits: limits.timeout of VM time (5 s
// by default; time waiting for fetches does not count), limits.max_steps,
// limits.max_memory_bytes, and limits.max_fetches fetch() calls (5 by
// default, PostHog's MAX_ASYNC_STEPS). print() logs at info level (strings
// as they are, other values as JSON, joined with ", "); the 25th call logs
// PostHog's "Function exceeded maximum log entries" warning instead and later
// calls are dropped. postHogCapture() is recorded in Result.Captures (once
// per invocation, with PostHog's $hog_function_execution_count loop guard).
// A thrown error, a limit or a failed fetch is Failed, logged as "Error
// executing function on event <uuid>: <error>".
//
// fetch(url, {method, headers, body}) is normalised as PostHog does (see
// FetchRequest) and performed by Options.Fetcher while the program waits;
// Hog receives {status, body}, the body parsed when it is JSON. Any HTTP status is returned to the
// code. A fetch that gets no response at all (a timeout, a connection
// failure, a refusal by the egress guard) fails the invocation with an error
// that names the kind and phase, e.g. "fetch to https://… timed out while
// waiting for the response after 10s". This is a deliberate difference from
// PostHog, which resumes the code with a made-up status 500: users then read
// a timeout as a server error.
//
// Secret inputs' values, configured and rendered, and credentials in
// inputs named like them (see Result.Redact), are replaced by "<redacted>"
// in the error, logs and fetches by Result.Redact (or Options.Redact).
// PostHog writes "***REDACTED***" instead.
package executor

// HealthEvent is the event the control plane emits into a destination's
// project when the destination's health state changes. It reaches only the
// destinations whose filters name it.
const HealthEvent = "$destination_state_changed"
