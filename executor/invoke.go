package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// Status is how an invocation ended.
type Status int

// The statuses of an invocation.
const (
	Succeeded    Status = iota + 1 // the program finished
	Failed                         // the program threw, hit a limit, or a fetch got no response
	Filtered                       // the filters did not match: nothing ran
	FilterFailed                   // the filters raised an error
	InputsFailed                   // an input's template raised an error
	Masked                         // the masking hash was seen too often lately: nothing ran
)

// Metric returns PostHog's app-metric name for the status.
func (s Status) Metric() string {
	switch s {
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	case Filtered:
		return "filtered"
	case FilterFailed:
		return "filtering_failed"
	case InputsFailed:
		return "inputs_failed"
	case Masked:
		return "masked"
	}
	return "unknown"
}

func (s Status) String() string { return s.Metric() }

// maxLogMessage is PostHog's cap on one log message, in characters.
const maxLogMessage = 10000

// Options configure one invocation.
type Options struct {
	// SkipFilters runs the destination whatever its filters say.
	SkipFilters bool
	// Fetcher performs fetch(). Nil makes every fetch() fail the invocation.
	Fetcher Fetcher
	// Redact applies Result.Redact before Invoke returns.
	Redact bool
	// FetchStatusOnly keeps of each fetch only its response status and
	// error, for callers that report nothing else: requests and response
	// bodies are then neither kept nor redacted.
	FetchStatusOnly bool
	// Mask, when set and the destination has masking, is asked after the
	// filters matched whether the event's masking hash was seen too often
	// within the destination's TTL (and records this occurrence); true
	// skips the event as Masked. An error is logged and the event runs:
	// masking is a saving, not a guarantee.
	Mask func(ctx context.Context, hash string) (masked bool, err error)
	// MaxLogs caps print() per invocation (DefaultMaxLogs when zero).
	MaxLogs int
	// Now stamps log entries and captures; nil means time.Now.
	Now func() time.Time
	// NoDebugLogs leaves out debug-level entries (such as the "Function
	// completed in …" summary) for callers that would drop them anyway.
	NoDebugLogs bool
}

// LogEntry is one line logged about the invocation.
type LogEntry struct {
	Time    time.Time
	Level   hogwirev1.LogLevel
	Message string
}

// FetchRecord is one fetch() call: the request, and the response or the error.
type FetchRecord struct {
	Request  *FetchRequest
	Response *FetchResponse // nil when Err is set
	Err      error
	Duration time.Duration
}

// Capture is an event the program asked to capture with postHogCapture.
// The executor only records it; the data plane may ingest it.
type Capture struct {
	Event      string
	DistinctID string
	Properties map[string]any
	Time       time.Time
}

// Result is everything an invocation did.
type Result struct {
	Status Status
	// Error is set for every status but Succeeded and Filtered, e.g.
	// "Error('boom')" for a thrown error.
	Error string
	// Value is the program's return value (null when it returns nothing).
	Value    vm.Value
	Logs     []LogEntry
	Fetches  []FetchRecord
	Captures []Capture
	// Duration is the invocation's wall time, fetches included; VMTime the
	// part spent running Hog (filters, inputs and program).
	Duration time.Duration
	VMTime   time.Duration
	// Ops and MemoryBytes are the program's instruction count and peak
	// estimated memory.
	Ops         int64
	MemoryBytes int64

	secrets  []string
	redacted bool
	// dest caches the redactor of its secrets.
	dest *Destination
}

// invocation is the per-invocation state of a program run. It is the
// context the VM passes to host functions, and it keeps the VM's clock:
// Err reports a timeout once the run has spent its budget of VM time, not
// counting the time spent waiting for fetches.
type invocation struct {
	context.Context // the caller's
	d               *Destination
	g               *Globals
	res             *Result
	fetcher         Fetcher
	now             func() time.Time
	maxLogs         int
	prints          int
	statusOnly      bool // Options.FetchStatusOnly

	start  time.Time
	waited time.Duration // in fetches
	// failure is a fetch failure, reported as it is rather than in the VM's
	// wrapping of host function errors.
	failure error
}

// errVMTimeout ends a program that spent its VM time.
var errVMTimeout = errors.New("hog: VM time exceeded")

// Err implements context.Context. Only the goroutine running the program
// calls it.
func (inv *invocation) Err() error {
	if err := inv.Context.Err(); err != nil {
		return err
	}
	if time.Since(inv.start)-inv.waited > inv.d.timeout {
		return errVMTimeout
	}
	return nil
}

// Invoke runs the destination on one event: filters, inputs, then the
// program with its fetches. It never returns nil, and every failure is in
// the Result (Status, Error and an error-level log entry).
func (d *Destination) Invoke(ctx context.Context, g *Globals, opts Options) *Result {
	start := time.Now()
	res := &Result{dest: d}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if !opts.SkipFilters {
		// Most events are filtered out, so this path reads the clock twice
		// only: its VM time is its duration.
		match, err := d.match(ctx, g)
		if d.filter != nil {
			res.VMTime = time.Since(start)
		}
		res.Duration = time.Since(start)
		if err != nil {
			res.Status = FilterFailed
			res.Error = err.Error()
			res.log(now, hogwirev1.LogLevel_LOG_LEVEL_ERROR, "Error filtering event "+g.uuid+": "+res.Error)
			return res.finish(start, opts)
		}
		if !match {
			res.Status = Filtered
			return res
		}
	}
	if opts.Mask != nil && d.masking != nil {
		hash, ok, err := d.MaskingHash(ctx, g)
		if err == nil && ok {
			var masked bool
			if masked, err = opts.Mask(ctx, hash); masked {
				res.Status = Masked
				return res.finish(start, opts)
			}
		}
		if err != nil {
			res.log(now, hogwirev1.LogLevel_LOG_LEVEL_WARN, "Masking failed, running the event anyway: "+err.Error())
		}
	}
	d.invoke(ctx, res, g, now, opts)
	return res.finish(start, opts)
}

func (r *Result) finish(start time.Time, opts Options) *Result {
	r.Duration = time.Since(start)
	if opts.Redact {
		r.Redact()
	}
	return r
}

// invoke renders the inputs and runs the program.
func (d *Destination) invoke(ctx context.Context, res *Result, g *Globals, now func() time.Time, opts Options) {
	start := time.Now()

	globals := d.globals(g, 1)
	inputs := vm.NewDict(len(d.inputs))
	globals.SetString("inputs", vm.DictValue(inputs))
	res.secrets = d.secrets
	gv := vm.DictValue(globals)
	for _, in := range d.inputs {
		v, err := d.render(ctx, in.value, gv, &res.VMTime)
		if err != nil {
			res.Status = InputsFailed
			res.Error = "Could not execute bytecode for input field: " + in.key + ": " + err.Error()
			res.log(now, hogwirev1.LogLevel_LOG_LEVEL_ERROR, "Error building inputs: "+res.Error)
			return
		}
		inputs.SetString(in.key, v)
		res.secrets = in.appendSensitive(slices.Clip(res.secrets), v)
	}

	inv := &invocation{Context: ctx, d: d, g: g, res: res, fetcher: opts.Fetcher, now: now, maxLogs: opts.MaxLogs,
		statusOnly: opts.FetchStatusOnly}
	if inv.maxLogs <= 0 {
		inv.maxLogs = DefaultMaxLogs
	}
	err := inv.run(gv)
	if err != nil {
		res.Status = Failed
		res.Error = err.Error()
		res.log(now, hogwirev1.LogLevel_LOG_LEVEL_ERROR, "Error executing function on event "+g.uuid+": "+res.Error)
		return
	}
	res.Status = Succeeded
	if opts.NoDebugLogs {
		return
	}
	res.log(now, hogwirev1.LogLevel_LOG_LEVEL_DEBUG, fmt.Sprintf("Function completed in %sms. Sync: %sms. Mem: %skb. Ops: %d. Event: '%s'",
		twoDigits(float64(time.Since(start).Microseconds())/1000), twoDigits(float64(res.VMTime.Microseconds())/1000),
		twoDigits(float64(res.MemoryBytes)/1024), res.Ops, g.eventURL))
}

// match runs the filters; only an exact true matches, as in PostHog.
func (d *Destination) match(ctx context.Context, g *Globals) (bool, error) {
	if !d.allEvents && !slices.Contains(d.eventNames, g.name) {
		return false, nil
	}
	if d.filter == nil {
		return true, nil
	}
	out, err := d.exprMachine.Run(ctx, d.filter, g.FilterValue())
	if err != nil {
		return false, err
	}
	if !out.Finished {
		return false, errors.New("the filter did not finish")
	}
	return out.Value.Kind() == vm.KindBool && out.Value.AsBool(), nil
}

// run runs the program. fetch() is a host function that blocks while the
// Fetcher works: the VM's own pause and resume would do, but vm.Resume does
// not give the resumed run its globals back.
func (inv *invocation) run(globals vm.Value) error {
	inv.start = time.Now()
	out, err := inv.d.machine.Run(inv, inv.d.program, globals)
	inv.res.VMTime += time.Since(inv.start) - inv.waited
	inv.res.Ops, inv.res.MemoryBytes = out.Ops, out.MaxMemory
	switch {
	case inv.failure != nil:
		return inv.failure
	case errors.Is(err, errVMTimeout):
		return &vm.LimitError{Limit: vm.ErrTimeout, Msg: "Execution timed out after " + strconv.FormatFloat(inv.d.timeout.Seconds(), 'f', -1, 64) + " seconds."}
	case err != nil:
		return err
	case !out.Finished:
		return fmt.Errorf("the program paused in async function %s, which destinations cannot call", out.Async.Name)
	}
	inv.res.Value = out.Value
	return nil
}

// hostFetch performs fetch(url, options).
func hostFetch(ctx context.Context, args []vm.Value) (vm.Value, error) {
	inv, ok := ctx.(*invocation)
	if !ok {
		return vm.Null, errors.New("fetch is only available to destination code")
	}
	resp, err := inv.fetch(args)
	if err != nil {
		inv.failure = err
		return vm.Null, err
	}
	return resp, nil
}

func (inv *invocation) fetch(args []vm.Value) (vm.Value, error) {
	if len(inv.res.Fetches) >= inv.d.maxFetches {
		return vm.Null, fmt.Errorf("too many fetches (limits.max_fetches): Exceeded maximum number of async steps: %d", inv.d.maxFetches)
	}
	req, err := newFetchRequest(args, inv.d.fetchTimeout)
	if err != nil {
		return vm.Null, err
	}
	rec := FetchRecord{Request: req}
	if inv.fetcher == nil {
		rec.Err = errors.New("no fetcher is configured")
		inv.res.Fetches = append(inv.res.Fetches, rec)
		return vm.Null, fmt.Errorf("fetch to %s failed: %w", req.URL, rec.Err)
	}
	start := time.Now()
	resp, err := inv.fetcher.Fetch(inv.Context, req)
	rec.Duration = time.Since(start)
	inv.waited += rec.Duration
	if err == nil && resp == nil {
		err = errors.New("the fetcher returned no response")
	}
	if err != nil {
		rec.Err = err
		if inv.statusOnly {
			rec.Request = nil
		}
		inv.res.Fetches = append(inv.res.Fetches, rec)
		return vm.Null, errors.New(describeFetchError(inv.Context, req.URL, inv.d.fetchTimeout, err))
	}
	rec.Response = resp
	if inv.statusOnly {
		rec.Request, rec.Response = nil, &FetchResponse{Status: resp.Status, Attempts: resp.Attempts}
	}
	inv.res.Fetches = append(inv.res.Fetches, rec)
	return responseValue(resp), nil
}

func (r *Result) log(now func() time.Time, level hogwirev1.LogLevel, msg string) {
	r.Logs = append(r.Logs, LogEntry{Time: now(), Level: level, Message: truncate(msg)})
}

func invocationFrom(ctx context.Context) *invocation {
	inv, _ := ctx.(*invocation)
	return inv
}

// print logs its arguments at info level, as PostHog's executor does:
// strings as they are, other values JSON-encoded, joined with ", ".
func hostPrint(ctx context.Context, args []vm.Value) (vm.Value, error) {
	inv := invocationFrom(ctx)
	if inv == nil {
		return vm.Null, nil
	}
	inv.prints++
	if inv.prints == inv.maxLogs {
		inv.res.log(inv.now, hogwirev1.LogLevel_LOG_LEVEL_WARN,
			"Function exceeded maximum log entries. No more logs will be collected. Event: "+inv.g.uuid)
	}
	if inv.prints >= inv.maxLogs {
		return vm.Null, nil
	}
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		if a.Kind() == vm.KindString {
			b.WriteString(a.AsString())
			continue
		}
		enc, err := a.MarshalJSON() // as JSON.stringify: no HTML escaping
		if err != nil {
			return vm.Null, fmt.Errorf("print: %w", err)
		}
		b.Write(enc)
	}
	inv.res.log(inv.now, hogwirev1.LogLevel_LOG_LEVEL_INFO, b.String())
	return vm.Null, nil
}

// hostPostHogCapture records an event to capture, with PostHog's checks and
// loop guard.
func hostPostHogCapture(ctx context.Context, args []vm.Value) (vm.Value, error) {
	inv := invocationFrom(ctx)
	if inv == nil {
		return vm.Null, nil
	}
	var ev *vm.Dict
	if len(args) > 0 {
		ev = args[0].AsDict()
	}
	if ev == nil {
		ev = vm.NewDict(0)
	}
	name, _ := ev.GetString("event")
	distinctID := ""
	if v, _ := ev.GetString("distinct_id"); v.Truthy() {
		distinctID = vm.FormatOutput(v)
	} else if inv.g.distinctID != "" {
		distinctID = inv.g.distinctID
	} else {
		distinctID = inv.g.personID
	}
	if name.Kind() != vm.KindString {
		return vm.Null, errors.New("[HogFunction] - postHogCapture call missing 'event' property")
	}
	if distinctID == "" {
		return vm.Null, errors.New("[HogFunction] - postHogCapture call missing 'distinct_id' property")
	}
	if len(inv.res.Captures) > 0 {
		return vm.Null, errors.New("postHogCapture was called more than once. Only one call is allowed per function")
	}
	if inv.g.execCount > 9 {
		inv.res.log(inv.now, hogwirev1.LogLevel_LOG_LEVEL_WARN, "postHogCapture was called from an event that already executed this function 10 times previously. To prevent unbounded infinite loops, the event was not captured.")
		return vm.Null, nil
	}
	props := map[string]any{}
	if p, _ := ev.GetString("properties"); p.AsDict() != nil {
		if m, ok := p.ToGo().(map[string]any); ok {
			props = m
		}
	}
	props["$hog_function_execution_count"] = int64(inv.g.execCount) + 1
	inv.res.Captures = append(inv.res.Captures, Capture{Event: name.AsString(), DistinctID: distinctID, Properties: props, Time: inv.now().UTC()})
	return vm.Null, nil
}

// truncate caps a log message at PostHog's length, without splitting a
// character.
func truncate(s string) string {
	if utf8.RuneCountInString(s) <= maxLogMessage {
		return s
	}
	n := 0
	for i := range s {
		if n == maxLogMessage {
			return s[:i] + "... (truncated)"
		}
		n++
	}
	return s
}

// twoDigits formats v with two significant digits, like PostHog's timing
// log line (Number(v.toPrecision(2))).
func twoDigits(v float64) string {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 2, 64), 64)
	return strconv.FormatFloat(f, 'f', -1, 64)
}
