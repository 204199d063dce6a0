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
	"github.com/hogwire/hogwire/fetch"
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
	Skipped                        // stopped by the Scheduler (Result.SkipReason)
	Parked                         // suspended at a fetch to retry later (Result.Parked; Options.Park)
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
	case Skipped:
		return "skipped"
	case Parked:
		return "parked"
	}
	return "unknown"
}

func (s Status) String() string { return s.Metric() }

// ErrorKind classifies a failure, for metrics, health and records.
type ErrorKind string

// The kinds of failures.
const (
	KindHogError        ErrorKind = "hog_error"        // thrown by the code, or a runtime error
	KindTimeout         ErrorKind = "timeout"          // the VM time limit
	KindMemory          ErrorKind = "memory"           // the memory limit, or the node's memory budget
	KindSteps           ErrorKind = "steps"            // the step limit
	KindLimit           ErrorKind = "limit"            // another VM limit (call depth, sizes, …)
	KindFetchTimeout    ErrorKind = "fetch_timeout"    // a fetch timed out after its retries
	KindFetchConnection ErrorKind = "fetch_connection" // a fetch could not connect after its retries
	KindEgressRefused   ErrorKind = "egress_refused"   // the egress guard refused a fetch's address
	KindFetchInvalid    ErrorKind = "fetch_invalid"    // a request that could never be sent
	KindFetchFailed     ErrorKind = "fetch_failed"     // a fetch failed otherwise
	KindFetchLimit      ErrorKind = "fetch_limit"      // more fetches than limits.max_fetches
	KindInputs          ErrorKind = "inputs"           // an input's template failed
	KindFilter          ErrorKind = "filter"           // the filters failed
)

// maxLogMessage is PostHog's cap on one log message, in characters.
const maxLogMessage = 10000

// Options configure one invocation.
type Options struct {
	// SkipFilters runs the destination whatever its filters say (the data
	// plane has run them, with Match, before queueing the invocation).
	SkipFilters bool
	// Fetcher performs fetch(). Nil makes every fetch() fail the invocation.
	Fetcher Fetcher
	// FetchPolicy is fetch's retry policy (zero: fetch's defaults); the
	// destination's limits.fetch_timeout replaces its Timeout.
	FetchPolicy fetch.Policy
	// Scheduler shares the node with other invocations (nil: none).
	Scheduler Scheduler
	// Observer receives everything the invocation does (nil: nothing).
	Observer Observer
	// Redact applies Result.Redact before the Result is returned, and
	// redacts log entries before the Observer sees them.
	Redact bool
	// FetchStatusOnly keeps of each fetch only its method, URL, response
	// status and error, for callers that report nothing else: headers and
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
	// Park suspends the invocation, instead of giving Hog the failure, at
	// a fetch whose retries ended in a failure worth retrying later (a
	// 5xx, 408 or 429, a timeout, a connection error) or that the Fetcher
	// deferred (DeferError): it ends Parked, with Result.Parked to resume.
	Park bool
	// Resume runs a parked invocation from its fetch on, instead of the
	// filters, inputs and program from the start.
	Resume *Suspended
	// Mapping names the mapping to run, for a destination with mappings
	// (see MatchMappings): its filters apply beside the destination's
	// (unless SkipFilters) and its inputs over the destination's. It must
	// name an enabled mapping; it is ignored without mappings.
	Mapping string
	// GeoIP answers a transformation's geoipLookup() (nil: it returns
	// null).
	GeoIP GeoIP
}

// clock is Now, or time.Now when it is unset.
func (o Options) clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// LogEntry is one line logged about the invocation.
type LogEntry struct {
	Time    time.Time
	Level   hogwirev1.LogLevel
	Message string
}

// FetchRecord is one fetch() call: the request, and the response or the error.
type FetchRecord struct {
	Request  *fetch.Request
	Response *fetch.Response // nil when Err is set
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
	// Error is set for every status but Succeeded, Filtered, Masked and
	// Skipped, e.g. "Error('boom')" for a thrown error; ErrorKind
	// classifies it.
	Error     string
	ErrorKind ErrorKind
	// SkipReason is the Scheduler's reason, for Skipped.
	SkipReason string
	// Parked is the suspended invocation, for Parked.
	Parked *Suspended
	// Items has one entry per event of a batch invocation (InvokeBatch).
	Items []BatchItem
	// Value is the program's return value (null when it returns nothing).
	Value    vm.Value
	Logs     []LogEntry
	Fetches  []FetchRecord
	Captures []Capture
	// Start is when the invocation began. Duration is its wall time,
	// from Start to its end, waits included. VMTime is the part spent running Hog (filters,
	// inputs and program) and FetchTime the part spent in fetches: the
	// invocation's own cost, without the time it waited for the CPU.
	Start     time.Time
	Duration  time.Duration
	VMTime    time.Duration
	FetchTime time.Duration
	// Ops and Allocated are the instructions executed and the estimated
	// bytes allocated, over filters, inputs and program.
	Ops       int64
	Allocated int64

	secrets  []string
	redacted bool
	// statusOnly is set when the fetch records are status-only copies
	// of the invocation's own (Options.FetchStatusOnly).
	statusOnly bool
	// dest caches the redactor of its secrets.
	dest *Destination
	// alloc is the allocation the Result is part of (see Release).
	alloc *invocationAlloc
}

// Release lets later invocations reuse the memory of r and of what it
// holds (its first fetch's record and request, the invocation's globals
// and inputs): the caller must not use r, or anything it got from it,
// afterwards, and must release it once at most. A Result never released
// is garbage-collected as usual; a busy data plane that releases each one
// spares a 2 KiB allocation per delivery, which with the garbage
// collection it caused was about a twelfth of a delivery's CPU in
// bench/pipeline. A parked Result is not reused: what it suspended may
// still point into it.
func (r *Result) Release() {
	a := r.alloc
	if a == nil || r.Status == Parked {
		return
	}
	d := a.inv.d
	observe := a.observe
	*a = invocationAlloc{observe: observe}
	d.allocs.Put(a)
}

// OwnTime is the time the invocation itself took: VM time and fetches.
func (r *Result) OwnTime() time.Duration { return r.VMTime + r.FetchTime }

// Invoke runs the destination on one event: filters, inputs, then the
// program with its fetches. It never returns nil, and every failure is in
// the Result (Status, Error and an error-level log entry). The Result it
// returns is the one given to the Observer's Done.
func (d *Destination) Invoke(ctx context.Context, g *Globals, opts Options) *Result {
	return d.invoke(ctx, g, nil, opts)
}

// invoke runs an invocation on g, or on batch (g is its first event).
func (d *Destination) invoke(ctx context.Context, g *Globals, batch []*Globals, opts Options) *Result {
	a, _ := d.allocs.Get().(*invocationAlloc)
	if a == nil {
		a = new(invocationAlloc)
	}
	inv := &a.inv
	opts.Now = opts.clock()
	if opts.MaxLogs <= 0 {
		opts.MaxLogs = DefaultMaxLogs
	}
	// Field by field (a from the pool, or new, is zero): a struct literal
	// assigned through a pointer is built aside and copied in whole, with
	// write barriers.
	inv.ctx, inv.d, inv.g, inv.batch, inv.opts, inv.start, inv.alloc = ctx, d, g, batch, opts, time.Now(), a
	res := &a.res
	res.dest, res.secrets, res.Fetches, res.statusOnly, res.alloc = d, d.secrets, a.fetches[:0:1], opts.FetchStatusOnly, a
	inv.res = res
	inv.ins = d.inputs
	if d.HasMappings() && batch == nil {
		inv.m = d.mapping(opts.Mapping)
		if inv.m != nil {
			inv.ins, inv.res.secrets = inv.m.inputs, inv.m.secrets
		}
	}
	switch {
	case batch != nil:
		inv.runBatch()
	case d.HasMappings() && inv.m == nil:
		inv.fail(Failed, KindInputs, fmt.Sprintf("%v: %q (the destination's are %q)", ErrNoMapping, opts.Mapping, d.MappingNames()), "Error executing function on event "+g.uuid+": ")
	default:
		inv.run()
	}
	res.Start, res.Duration = inv.start, time.Since(inv.start)
	if opts.Redact {
		res.Redact()
	}
	if inv.opts.Scheduler != nil {
		inv.opts.Scheduler.End()
	}
	if inv.opts.Observer != nil {
		inv.opts.Observer.Done(res)
	}
	return res
}

// invocationAlloc is what every invocation allocates, in one piece: the
// invocation, its Result, its globals and inputs, and room for the first
// fetch's request, its record, their trimmed copies (FetchStatusOnly) and
// the response given to Hog, as most invocations make one fetch.
// The Result keeps the rest alive until the caller drops it, which costs
// less than the allocations it saves.
type invocationAlloc struct {
	inv        invocation
	res        Result
	fetches    [1]FetchRecord
	req        fetch.Request // the first fetch's request; reqUsed once it is
	reqUsed    bool
	statusReq  fetch.Request
	statusResp fetch.Response
	// statusUsed is set once the copies above hold a fetch's.
	statusUsed bool
	// Room for the globals and inputs of an invocation on one event.
	globals vm.DictBuf6
	inputs  vm.DictBuf
	// Room for the first fetch's response given to Hog; respUsed once
	// it is.
	resp     vm.DictBuf2
	respUsed bool
	// Room for the first dict an input renders (a webhook's body, say);
	// dictUsed once it is.
	dict     vm.DictBuf
	dictUsed bool
	// observe passes the attempts of the fetch in flight (inv.fetching)
	// to inv.attempt. It is made once per allocation and kept when the
	// allocation is reused: a closure made per fetch escaped to the
	// Fetcher, an allocation per delivery.
	observe func(fetch.Attempt)
}

// invocation is the state of one Invoke, and the VM's Host while Hog
// runs: it applies the destination's budgets of VM time, steps and memory
// at every checkpoint, where it also takes its turns on the Scheduler.
type invocation struct {
	ctx context.Context
	d   *Destination
	g   *Globals
	// batch is set for a batch invocation (see InvokeBatch).
	batch []*Globals
	res   *Result
	// opts has Now and MaxLogs set.
	opts   Options
	prints int
	// m is the mapping run (nil: none), and ins the inputs: the
	// mapping's, or the destination's.
	m   *mapping
	ins []input
	// inputVals are the rendered inputs, in ins' order, as the host
	// keeps them for fetch options that name an input (bearer_token_input,
	// aws_sigv4, standard_webhooks), whatever the program does to inputs.
	inputVals []vm.Value

	start time.Time
	state State
	// turn is when the current turn on the CPU began (zero: none).
	turn time.Time
	// done* are the steps and bytes of the VM runs that finished; a run in
	// progress reports its own at checkpoints.
	doneSteps, doneAlloc int64
	// fetchBase counts the fetches made before a parked invocation resumed.
	fetchBase int
	// fetching is the request of the fetch in flight (or of the last one),
	// for alloc.observe.
	fetching *fetch.Request
	// alloc is the allocation the invocation is part of.
	alloc *invocationAlloc
}

func (inv *invocation) run() {
	res, g := inv.res, inv.g
	if !inv.opts.SkipFilters {
		// Most events are filtered out, so this path reads the clock
		// twice only: its VM time is its duration.
		match, err := inv.d.Match(g)
		if err == nil && match && inv.m != nil {
			match, err = inv.d.matchMapping(inv.m, g)
		}
		if inv.d.filter != nil || inv.m != nil {
			res.VMTime = time.Since(inv.start)
		}
		if err != nil {
			inv.fail(FilterFailed, KindFilter, err.Error(), "Error filtering event "+g.uuid+": ")
			return
		}
		if !match {
			res.Status = Filtered
			inv.to(StateSkipped)
			return
		}
	}
	if err := inv.acquire(); err != nil {
		inv.stopped(err)
		return
	}
	if inv.opts.Resume != nil {
		inv.resume(inv.opts.Resume)
		return
	}
	if inv.opts.Mask != nil && inv.d.masking != nil {
		if masked := inv.mask(inv.g); masked {
			res.Status = Masked
			inv.end(StateSkipped)
			return
		}
		if inv.state != StateRunning {
			return // stopped while waiting for the masking store
		}
	}
	inv.program()
}

// to moves to state s, telling the observer.
func (inv *invocation) to(s State) {
	if inv.opts.Observer != nil && s != inv.state {
		inv.opts.Observer.Transition(inv.state, s)
	}
	inv.state = s
}

// acquire starts a turn on the CPU.
func (inv *invocation) acquire() error {
	if inv.opts.Scheduler != nil {
		if err := inv.opts.Scheduler.Acquire(inv.ctx); err != nil {
			return err
		}
	}
	inv.turn = time.Now()
	inv.to(StateRunning)
	return nil
}

// release ends the turn; wait reports that the invocation goes on to wait
// (and so may be stopped here), rather than end.
func (inv *invocation) release(wait bool) error {
	if inv.turn.IsZero() {
		return nil
	}
	inv.res.VMTime += time.Since(inv.turn)
	inv.turn = time.Time{}
	if inv.opts.Scheduler == nil {
		if wait {
			inv.to(StateWaiting)
		}
		return nil
	}
	err := inv.opts.Scheduler.Release()
	if wait && err == nil {
		inv.to(StateWaiting)
	}
	return err
}

// end releases the CPU and moves to the final state s.
func (inv *invocation) end(s State) {
	_ = inv.release(false)
	inv.to(s)
}

// mask evaluates the masking hash and asks Options.Mask about it, off the
// CPU. It reports whether the event is masked.
func (inv *invocation) mask(g *Globals) bool {
	hash, ok, err := inv.d.MaskingHash(inv.ctx, g)
	if err == nil && ok {
		if err = inv.release(true); err != nil {
			inv.stopped(err)
			return false
		}
		var masked bool
		masked, err = inv.opts.Mask(inv.ctx, hash)
		if aerr := inv.acquire(); aerr != nil {
			inv.stopped(aerr)
			return false
		}
		if masked {
			return true
		}
	}
	if err != nil {
		inv.log(hogwirev1.LogLevel_LOG_LEVEL_WARN, "Masking failed, running the event anyway: "+err.Error())
	}
	return false
}

// stopped ends the invocation after an error from the Scheduler: Skipped
// for a Stop, else Failed.
func (inv *invocation) stopped(err error) {
	var stop *Stop
	if errors.As(err, &stop) || (inv.ctx.Err() != nil && errors.As(context.Cause(inv.ctx), &stop)) {
		inv.res.Status, inv.res.SkipReason = Skipped, stop.Reason
		inv.end(StateSkipped)
		return
	}
	inv.fail(Failed, kindOf(err), describe(err), "Error executing function on event "+inv.g.uuid+": ")
}

// fail ends the invocation with status s and logs msg after prefix.
func (inv *invocation) fail(s Status, kind ErrorKind, msg, prefix string) {
	inv.res.Status, inv.res.ErrorKind, inv.res.Error = s, kind, msg
	inv.log(hogwirev1.LogLevel_LOG_LEVEL_ERROR, prefix+msg)
	inv.end(StateFailed)
}

// program renders the inputs and runs the program with its fetches.
func (inv *invocation) program() {
	d := inv.d
	globals := d.globalsIn(&inv.alloc.globals, inv.g, 1)
	gv := vm.DictValue(globals)
	inputs, ok := inv.inputs(globals)
	if !ok {
		return
	}
	// Programs read copies of the globals, never the dict itself: its
	// values stay as rendered.
	inv.inputVals = inputs.Values()
	out, err := d.machine.RunHost(inv.ctx, inv, d.program, gv)
	inv.loop(out, err)
}

// inputs renders the inputs with globals, into which it sets them; on
// failure it ends the invocation and reports false.
func (inv *invocation) inputs(globals *vm.Dict) (*vm.Dict, bool) {
	d, res := inv.d, inv.res
	var inputs *vm.Dict
	if inv.batch == nil {
		// One event, one set of inputs.
		inputs = inv.alloc.inputs.Dict(len(inv.ins))
	} else {
		inputs = vm.NewDict(len(inv.ins))
	}
	globals.AppendString("inputs", vm.DictValue(inputs))
	gv := vm.DictValue(globals)
	for _, in := range inv.ins {
		v, err := d.render(inv, in.value, gv)
		if err != nil {
			if isStop(err) {
				inv.stopped(err)
				return nil, false
			}
			inv.fail(InputsFailed, KindInputs, "Could not execute bytecode for input field: "+in.key+": "+err.Error(), "Error building inputs: ")
			return nil, false
		}
		inputs.AppendString(in.key, v)
		if in.rendersSensitive {
			res.secrets = in.appendSensitive(slices.Clip(res.secrets), v)
		}
	}
	// Nothing changes the inputs from here on: frozen, a program reads
	// them (inputs.body holding the whole event, say) without copying.
	vm.Freeze(vm.DictValue(inputs))
	return inputs, true
}

// loop performs the program's fetches and resumes it with their results
// until it ends or parks.
func (inv *invocation) loop(out vm.Result, err error) {
	d, res := inv.d, inv.res
	for err == nil && out.Async != nil {
		if out.Async.Name != "fetch" {
			err = fmt.Errorf("the program paused in async function %s, which destinations cannot call", out.Async.Name)
			break
		}
		var v vm.Value
		if v, err = inv.fetch(out.Async.Args); err != nil {
			var pe *parkError
			if errors.As(err, &pe) {
				state, merr := out.Async.State.MarshalJSON()
				if merr != nil {
					err = fmt.Errorf("parking the invocation: %w", merr)
					break
				}
				pe.p.State = state
			}
			break
		}
		out, err = d.machine.ResumeHost(inv.ctx, inv, out.Async.State, v)
	}
	inv.doneSteps += out.Ops
	inv.doneAlloc += out.Allocated
	res.Ops, res.Allocated = inv.doneSteps, inv.doneAlloc
	if err != nil {
		var pe *parkError
		if errors.As(err, &pe) {
			inv.park(pe.p)
			return
		}
		inv.stopped(err)
		return
	}
	res.Value = out.Value
	res.Status = Succeeded
	inv.end(StateSucceeded)
	if inv.opts.NoDebugLogs {
		return
	}
	// Built in one buffer: fmt and three strings cost more than the rest
	// of the invocation's own work.
	var buf [160]byte
	b := append(buf[:0], "Function completed in "...)
	b = appendTwoDigits(b, float64(time.Since(inv.start).Microseconds())/1000)
	b = append(b, "ms. Sync: "...)
	b = appendTwoDigits(b, float64(res.VMTime.Microseconds())/1000)
	b = append(b, "ms. Mem: "...)
	b = appendTwoDigits(b, float64(res.Allocated)/1024)
	b = append(b, "kb. Ops: "...)
	b = strconv.AppendInt(b, res.Ops, 10)
	b = append(b, ". Event: '"...)
	b = append(b, inv.g.eventURL...)
	b = append(b, '\'')
	inv.log(hogwirev1.LogLevel_LOG_LEVEL_DEBUG, string(b))
}

// runExpr runs an input template (or another expression) in the
// invocation's turn, under its budgets.
func (inv *invocation) runExpr(p *vm.Program, globals vm.Value) (vm.Value, error) {
	out, err := inv.d.exprMachine.RunHost(inv.ctx, inv, p, globals)
	inv.doneSteps += out.Ops
	inv.doneAlloc += out.Allocated
	if err != nil {
		return vm.Null, err
	}
	if !out.Finished {
		return vm.Null, errors.New("the template did not finish")
	}
	return out.Value, nil
}

// Call implements vm.Host: the synchronous host functions.
func (inv *invocation) Call(name string, args []vm.Value) (vm.Value, error) {
	switch name {
	case "print":
		return vm.Null, inv.print(args)
	case "postHogCapture":
		return vm.Null, inv.capture(args)
	case geoipLookup:
		return inv.geoip(args)
	case verifyWebhookSignature:
		return inv.verifySignature(args)
	}
	return vm.Null, fmt.Errorf("%s is not a host function", name)
}

// Yield implements vm.Host: the destination's budgets, then the
// Scheduler's turn.
func (inv *invocation) Yield(u vm.Usage) error {
	d := inv.d
	steps, alloc := inv.doneSteps+u.Steps, inv.doneAlloc+u.Allocated
	if vmTime := inv.res.VMTime + time.Since(inv.turn); vmTime > d.timeout {
		return &vm.LimitError{Limit: vm.ErrTimeout, Msg: "Execution timed out after " + strconv.FormatFloat(d.timeout.Seconds(), 'f', -1, 64) + " seconds."}
	}
	if d.maxSteps > 0 && steps > d.maxSteps {
		return &vm.LimitError{Limit: vm.ErrStepLimit, Msg: fmt.Sprintf("Exceeded maximum number of steps: %d", d.maxSteps)}
	}
	if alloc > d.maxMemory {
		return vm.MemoryLimitError(d.maxMemory, alloc)
	}
	if inv.opts.Scheduler == nil {
		return nil
	}
	// A turn passed to another destination is time not spent running:
	// it does not count as VM time.
	inv.res.VMTime += time.Since(inv.turn)
	err := inv.opts.Scheduler.Yield(inv.ctx, alloc)
	inv.turn = time.Now()
	return err
}

// fetch performs fetch(url, options) off the CPU.
func (inv *invocation) fetch(args []vm.Value) (vm.Value, error) {
	d := inv.d
	if inv.fetchBase+len(inv.res.Fetches) >= d.maxFetches {
		return vm.Null, &kindError{KindFetchLimit, fmt.Errorf("too many fetches (limits.max_fetches): Exceeded maximum number of async steps: %d", d.maxFetches)}
	}
	req, auth, err := d.newFetchRequest(inv.fetchRequest(), args)
	if err == nil {
		err = inv.authorize(req, auth, inv.fetchBase+len(inv.res.Fetches))
	}
	if err != nil {
		return vm.Null, &kindError{KindFetchInvalid, err}
	}
	return inv.do(req)
}

// fetchRequest returns where a fetch's request is built: the
// invocation's allocation for its first fetch.
func (inv *invocation) fetchRequest() *fetch.Request {
	if a := inv.alloc; !a.reqUsed {
		a.reqUsed = true
		return &a.req
	}
	return new(fetch.Request)
}

// do performs a fetch request off the CPU. With Options.Park, a failure
// worth retrying later is a *parkError.
func (inv *invocation) do(req *fetch.Request) (vm.Value, error) {
	d, res := inv.d, inv.res
	rec := FetchRecord{Request: req}
	if inv.opts.Fetcher == nil {
		rec.Err = errors.New("no fetcher is configured")
		if inv.opts.FetchStatusOnly {
			rec.Request, _ = inv.statusOnly(req, nil)
		}
		res.Fetches = append(res.Fetches, rec)
		return vm.Null, &kindError{KindFetchFailed, fmt.Errorf("fetch to %s failed: %w", req.URL, rec.Err)}
	}
	if err := inv.release(true); err != nil {
		return vm.Null, err
	}
	policy := inv.opts.FetchPolicy
	policy.Timeout = d.fetchTimeout
	a := inv.alloc
	if a.observe == nil {
		a.observe = func(at fetch.Attempt) { a.inv.attempt(a.inv.fetching, at) }
	}
	inv.fetching = req
	start := time.Now()
	resp, err := inv.opts.Fetcher.Do(inv.ctx, *req, policy, a.observe)
	rec.Duration = time.Since(start)
	res.FetchTime += rec.Duration
	if err == nil && resp == nil {
		err = errors.New("the fetcher returned no response")
	}
	rec.Err, rec.Response = err, resp
	if inv.opts.FetchStatusOnly {
		// The method and URL stay, for records; Redact hides secrets in
		// the URL.
		rec.Request, rec.Response = inv.statusOnly(req, resp)
	}
	res.Fetches = append(res.Fetches, rec)
	if aerr := inv.acquire(); aerr != nil {
		return vm.Null, aerr
	}
	if inv.opts.Park {
		if p := parkable(req, resp, err); p != nil {
			p.Fetches = inv.fetchBase + len(res.Fetches) - 1
			return vm.Null, &parkError{p}
		}
	}
	if err != nil {
		return vm.Null, &FetchError{URL: req.URL, Timeout: attemptTimeout(req, d.fetchTimeout), Err: err}
	}
	return responseValue(inv.responseBuf(), resp), nil
}

// renderDict returns where an input renders a dict of n entries: the
// invocation's allocation for the first one of an invocation on one event
// (a batch's inputs are one set per event, kept together).
func (inv *invocation) renderDict(n int) *vm.Dict {
	if a := inv.alloc; inv.batch == nil && !a.dictUsed {
		a.dictUsed = true
		return a.dict.Dict(n)
	}
	return vm.NewDict(n)
}

// responseBuf returns where the response dict of a fetch is made: the
// invocation's allocation for its first fetch.
func (inv *invocation) responseBuf() *vm.DictBuf2 {
	if a := inv.alloc; !a.respUsed {
		a.respUsed = true
		return &a.resp
	}
	return new(vm.DictBuf2)
}

// statusOnly returns what FetchStatusOnly keeps of a fetch: its method
// and URL, and its response's status and attempts (nil without one). The
// first fetch's are kept in the invocation's allocation.
func (inv *invocation) statusOnly(req *fetch.Request, resp *fetch.Response) (*fetch.Request, *fetch.Response) {
	var sreq *fetch.Request
	var sresp *fetch.Response
	if a := inv.alloc; !a.statusUsed {
		a.statusUsed = true
		sreq, sresp = &a.statusReq, &a.statusResp
	} else {
		sreq = new(fetch.Request)
	}
	*sreq = fetch.Request{Method: req.Method, URL: req.URL}
	if resp == nil {
		return sreq, nil
	}
	if sresp == nil {
		sresp = &fetch.Response{}
	}
	*sresp = fetch.Response{Status: resp.Status, Attempts: resp.Attempts}
	return sreq, sresp
}

// attempt reports one attempt of a fetch and logs the failures worth
// telling the destination's owner about.
func (inv *invocation) attempt(req *fetch.Request, a fetch.Attempt) {
	if inv.opts.Observer != nil {
		inv.opts.Observer.Attempt(req, a)
	}
	if msg := attemptLog(a); msg != "" {
		inv.log(hogwirev1.LogLevel_LOG_LEVEL_WARN, msg)
	}
}

// log records a log entry and reports it.
func (inv *invocation) log(level hogwirev1.LogLevel, msg string) {
	e := LogEntry{Time: inv.opts.Now(), Level: level, Message: truncate(msg)}
	inv.res.Logs = append(inv.res.Logs, e)
	if inv.opts.Observer == nil {
		return
	}
	if inv.opts.Redact {
		if rep := inv.d.redactor(inv.res.secrets); rep != nil {
			e.Message = rep.Replace(e.Message)
		}
	}
	inv.opts.Observer.Log(e)
}

// print logs its arguments at info level, as PostHog's executor does:
// strings as they are, other values JSON-encoded, joined with ", ".
func (inv *invocation) print(args []vm.Value) error {
	inv.prints++
	if inv.prints == inv.opts.MaxLogs {
		inv.log(hogwirev1.LogLevel_LOG_LEVEL_WARN, "Function exceeded maximum log entries. No more logs will be collected. Event: "+inv.g.uuid)
	}
	if inv.prints >= inv.opts.MaxLogs {
		return nil
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
			return fmt.Errorf("print: %w", err)
		}
		b.Write(enc)
	}
	inv.log(hogwirev1.LogLevel_LOG_LEVEL_INFO, b.String())
	return nil
}

// capture records an event to capture, with PostHog's checks and loop
// guard.
func (inv *invocation) capture(args []vm.Value) error {
	g := inv.g
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
	} else if g.distinctID != "" {
		distinctID = g.distinctID
	} else {
		distinctID = g.personID
	}
	if name.Kind() != vm.KindString {
		return errors.New("[HogFunction] - postHogCapture call missing 'event' property")
	}
	if distinctID == "" {
		return errors.New("[HogFunction] - postHogCapture call missing 'distinct_id' property")
	}
	if len(inv.res.Captures) > 0 {
		return errors.New("postHogCapture was called more than once. Only one call is allowed per function")
	}
	if g.execCount > 9 {
		inv.log(hogwirev1.LogLevel_LOG_LEVEL_WARN, "postHogCapture was called from an event that already executed this function 10 times previously. To prevent unbounded infinite loops, the event was not captured.")
		return nil
	}
	props := map[string]any{}
	if p, _ := ev.GetString("properties"); p.AsDict() != nil {
		if m, ok := p.ToGo().(map[string]any); ok {
			props = m
		}
	}
	props["$hog_function_execution_count"] = int64(g.execCount) + 1
	inv.res.Captures = append(inv.res.Captures, Capture{Event: name.AsString(), DistinctID: distinctID, Properties: props, Time: inv.opts.Now().UTC()})
	return nil
}

// Match runs the destination's filters against an event; only an exact
// true matches, as in PostHog. Filters that test only event names are
// decided without the VM. It runs on the caller's goroutine under the
// filters' own limits, and allocates nothing for a filter that only reads
// the event (the event's filter globals are built once, on first use).
func (d *Destination) Match(g *Globals) (bool, error) {
	return d.match(d.eventNames, d.allEvents, d.filter, g, nil)
}

// Matcher matches events against destinations' filters, as
// Destination.Match does, for one goroutine at a time, keeping the VM's
// run state from one filter to the next (see vm.Evaluator): a worker
// routing events through thousands of destinations saves taking the
// state from the pool and putting it back for every filter, and the
// filters after the first that read a property of the event read what it
// read (the filter globals are frozen). The zero Matcher is ready to
// use; it keeps the globals of the last events it matched alive, until
// it is dropped.
type Matcher struct {
	// ev runs the filters of destinations on the machine it was made
	// for: the first one Match met, which destinations prepared with one
	// FilterVM share.
	ev *vm.Evaluator
}

// Match is d.Match(g).
func (mt *Matcher) Match(d *Destination, g *Globals) (bool, error) {
	return d.match(d.eventNames, d.allEvents, d.filter, g, mt)
}

// eval runs a filter on mt's run state when it belongs to m, and on m's
// pool otherwise.
func (mt *Matcher) eval(m *vm.Machine, p *vm.Program, globals vm.Value) (vm.Value, bool, error) {
	if mt.ev == nil {
		mt.ev = m.Evaluator()
	}
	if mt.ev.Machine() != m {
		return m.Eval(context.Background(), p, globals)
	}
	return mt.ev.Eval(context.Background(), p, globals)
}

// errFilterUnfinished fails a filter that called an async function.
var errFilterUnfinished = errors.New("the filter did not finish")

// match runs one set of filters: the event names, then the program (nil:
// the names decide), on mt's run state unless mt is nil.
func (d *Destination) match(names []string, all bool, filter *vm.Program, g *Globals, mt *Matcher) (bool, error) {
	if !all && !slices.Contains(names, g.name) {
		return false, nil
	}
	if filter == nil {
		return true, nil
	}
	var v vm.Value
	var finished bool
	var err error
	if mt != nil {
		v, finished, err = mt.eval(d.filterMachine, filter, g.FilterValue())
	} else {
		v, finished, err = d.filterMachine.Eval(context.Background(), filter, g.FilterValue())
	}
	if err != nil {
		return false, err
	}
	if !finished {
		return false, errFilterUnfinished
	}
	return v.Kind() == vm.KindBool && v.AsBool(), nil
}

// kindError gives an error its kind.
type kindError struct {
	kind ErrorKind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

func isStop(err error) bool {
	var stop *Stop
	return errors.As(err, &stop)
}

// kindOf classifies a failure.
func kindOf(err error) ErrorKind {
	var ke *kindError
	var fe *FetchError
	var le *vm.LimitError
	switch {
	case errors.As(err, &ke):
		return ke.kind
	case errors.As(err, &fe):
		return fe.Kind()
	case errors.Is(err, vm.ErrTimeout):
		return KindTimeout
	case errors.Is(err, vm.ErrMemoryLimit):
		return KindMemory
	case errors.Is(err, vm.ErrStepLimit):
		return KindSteps
	case errors.As(err, &le):
		return KindLimit
	}
	return KindHogError
}

// describe is the invocation's error message for err.
func describe(err error) string {
	var re *vm.RuntimeError
	var fe *FetchError
	if (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && !errors.As(err, &re) && !errors.As(err, &fe) {
		return "Execution cancelled: " + err.Error()
	}
	return err.Error()
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

// appendTwoDigits appends v with two significant digits, like PostHog's
// timing log line (Number(v.toPrecision(2))).
func appendTwoDigits(dst []byte, v float64) []byte {
	var buf [32]byte
	f, _ := strconv.ParseFloat(string(strconv.AppendFloat(buf[:0], v, 'g', 2, 64)), 64)
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}
