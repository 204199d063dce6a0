package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/telemetry"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/invocations"
	"github.com/hogwire/hogwire/metrics"
)

// invocation is one destination to run on one event: queued in the
// destination's lane, then run by the executor, for which it is both the
// Scheduler (the node's CPU turns and memory, and the destination's
// current state) and the Observer (metrics, logs and traces).
type invocation struct {
	n    *Node
	dest *destination
	g    *executor.Globals
	p    *pending
	link trace.SpanContext

	// route is the configuration the invocation runs with.
	route *route
	// mapping is the destination's mapping it runs ("": none).
	mapping string
	// data is the event's wire encoding, kept to park the invocation;
	// parked is set when it was parked before.
	data   []byte
	parked *parked
	// lost is set when it could not be parked: its message goes back to
	// the log.
	lost bool
	// members are the events of a batch invocation, each an invocation
	// holding its message (see batcher); nil for one event.
	members []*invocation

	// CPU (see cpu): wake receives the turn; granted, inTurn (it holds a
	// turn) and turnStart are the cpu's.
	wake      chan struct{}
	granted   bool
	inTurn    bool
	turnStart time.Time
	// admitted is set once the memory budget let the invocation start;
	// loan is what it borrowed of it.
	admitted bool
	loan     int64

	// cancel ends the invocation running, and runningAt is its index in
	// its destination's running.
	cancel    context.CancelCauseFunc
	runningAt int

	// Observer state.
	ctx  context.Context
	span trace.Span
	id   string // made for the first log entry
	// tally is what it counted, nil until it counts; res is its result
	// once Done has it.
	tally *tally
	res   *executor.Result
	// rerun is set when the invocation was stopped by an edit of its
	// destination before it did anything: it runs again with the new code.
	rerun bool
	// pin is the route of the kept revision a rerun runs it with (nil: the
	// destination's current route).
	pin *route
}

var invocationPool = sync.Pool{New: func() any { return &invocation{wake: make(chan struct{}, 1)} }}

// tally is what an invocation counts as it runs: its counters, and its
// fetch attempts for its record. It is kept apart from the invocation,
// which may wait in its lane's queue among thousands (a queued one should
// be small, and the pool rarely has one when queues are long), and taken
// from its own pool when the invocation first counts: only running
// invocations count, and they are few, so tallies are reused.
type tally struct {
	metrics  []telemetry.Metric
	buf      [8]telemetry.Metric
	attempts []attempt
	abuf     [4]attempt
	// fetches is room for the rows of the invocation's record, which
	// the record writer copies.
	fetches []invocations.Fetch
}

var tallyPool = sync.Pool{New: func() any { return new(tally) }}

// tallied returns inv's tally, taking one from the pool on first use.
func (inv *invocation) tallied() *tally {
	if inv.tally == nil {
		t := tallyPool.Get().(*tally)
		t.metrics, t.attempts = t.buf[:0], t.abuf[:0]
		inv.tally = t
	}
	return inv.tally
}

// metrics are the counters inv added (nil: none).
func (inv *invocation) metrics() []telemetry.Metric {
	if inv.tally == nil {
		return nil
	}
	return inv.tally.metrics
}

// attempts are the fetch attempts recorded for inv's record.
func (inv *invocation) attempts() []attempt {
	if inv.tally == nil {
		return nil
	}
	return inv.tally.attempts
}

// untally gives inv's tally back to the pool.
func (inv *invocation) untally() {
	if t := inv.tally; t != nil {
		fetches := t.fetches[:0]
		clear(t.fetches)
		*t = tally{fetches: fetches}
		tallyPool.Put(t)
		inv.tally = nil
	}
}

func (n *Node) newInvocation(dest *destination, g *executor.Globals, p *pending, link trace.SpanContext) *invocation {
	inv := invocationPool.Get().(*invocation)
	inv.n, inv.dest, inv.g, inv.p, inv.link = n, dest, g, p, link
	return inv
}

func (inv *invocation) free() {
	if inv.res != nil {
		// Nothing holds the result any more: records, logs and counts
		// took copies of what they keep, and a park stored its own.
		inv.res.Release()
	}
	inv.untally()
	wake := inv.wake
	*inv = invocation{wake: wake}
	invocationPool.Put(inv)
}

// run runs inv in its lane, as its destination now stands.
func (n *Node) run(inv *invocation) {
	ctx := n.runCtx
	for ctx.Err() == nil {
		r := inv.dest.cur.Load()
		switch {
		case r == nil:
			inv.skip(skipDeleted)
		case n.keeps(r.skip):
			inv.waitQuarantine()
		case r.skip != "":
			inv.skip(r.skip)
		default:
			if inv.pin != nil {
				// A rerun with the original revision runs it alone.
				r = inv.pin
			} else if n.rebatch(inv, r) {
				return
			}
			if until, reason := n.pauses.untilNow(inv.dest.name); !until.IsZero() && !n.cfg.Retry.Off {
				// Its destination asked for a pause: the event waits in
				// the parked stream, not on this node.
				n.tel.Count(inv.dest.name, "paused_waits", int64(inv.size()))
				if inv.firstBreakerWait() {
					n.tel.Count(inv.dest.name, "health_errors", 1)
				}
				inv.park(nil, until, reason)
				break
			}
			inv.invoke(ctx, r)
			if inv.rerun {
				inv.untally()
				inv.rerun, inv.admitted, inv.id, inv.res = false, false, "", nil
				continue
			}
		}
		break
	}
	inv.finish()
}

// finish lets go of inv's event: done with it, or, when the node is
// stopping, handed back to the log to run again elsewhere.
func (inv *invocation) finish() {
	if inv.members != nil {
		inv.finishBatch()
		return
	}
	n := inv.n
	if n.runCtx.Err() != nil || inv.lost {
		inv.p.abandon()
	} else {
		inv.p.done()
	}
	inv.dest.held.Add(-1)
	inv.dest.drain.done()
	n.work.Done()
	inv.free()
}

// skip is where work that must not run ends: its destination was
// disabled, quarantined or deleted, before or while it ran. It is counted
// under reason, and the event is let go.
//
// This is the one place to keep a quarantined destination's events for
// later instead (the backlog of durable delivery): every skip, whether
// decided when the event was routed or when a queued or running
// invocation found its destination's new state, comes through here with
// the event.
func (n *Node) skip(dest, reason string, g *executor.Globals) {
	n.tel.Count(dest, reason, 1)
	n.recordSkip(dest, reason, g)
	n.im.Outcome(context.Background(), dest, metrics.OutcomeSkipped, reason, 0)
}

// stop makes a destination that may no longer run let go of its work at
// once: what waits in its lane is skipped without waiting for a worker,
// and the invocations running are cancelled, so that even a fetch in
// flight (or its retries) ends now; they end skipped too.
func (n *Node) stop(d *destination, reason string) {
	stop := &executor.Stop{Reason: reason}
	d.runningMu.Lock()
	for _, inv := range d.running {
		inv.cancel(stop)
	}
	d.runningMu.Unlock()
	n.flushBatch(d, anyBatch)
	drained := d.lane.drain()
	if n.keeps(reason) && d.cur.Load() != nil {
		// Parking stores each event: off the configuration's goroutine.
		go func() {
			for _, inv := range drained {
				inv.waitQuarantine()
				inv.finish()
			}
		}()
		return
	}
	for _, inv := range drained {
		inv.skip(reason)
		inv.finish()
	}
}

// invoke runs the executor.
func (inv *invocation) invoke(ctx context.Context, r *route) {
	n := inv.n
	// Not a child of ctx (runCtx): every invocation would lock runCtx to
	// join and to leave its children, one lock all workers share. A node
	// stopping for good cancels the invocations in d.running instead
	// (see Node.cancelRunning), and one registered after that sees
	// runCtx ended below.
	base := n.detached
	if ctx != n.runCtx {
		base = context.WithoutCancel(ctx)
	}
	ctx, cancel := context.WithCancelCause(base)
	d := inv.dest
	inv.cancel = cancel
	d.runningMu.Lock()
	inv.runningAt = len(d.running)
	d.running = append(d.running, inv)
	d.runningMu.Unlock()
	if n.runCtx.Err() != nil {
		cancel(nil)
	}
	defer func() {
		d.runningMu.Lock()
		// The last one takes inv's place.
		last := d.running[len(d.running)-1]
		d.running[inv.runningAt], last.runningAt = last, inv.runningAt
		d.running[len(d.running)-1] = nil
		d.running = d.running[:len(d.running)-1]
		d.runningMu.Unlock()
		inv.cancel = nil
		cancel(nil)
	}()
	if _, stop := r.check(); stop != nil {
		// Stopped between the lane and here: the cancel above came too late.
		cancel(stop)
	}
	inv.route = r
	im := n.meters(d).im
	im.Inflight(1)
	defer im.Inflight(-1)
	if _, off := n.tracer.(noop.Tracer); off {
		// Without tracing, a span and its attributes are allocations
		// for nothing: no span is made or propagated either way.
		inv.ctx, inv.span = ctx, nil
	} else {
		inv.ctx, inv.span = n.tracer.Start(ctx, r.span,
			trace.WithLinks(trace.Link{SpanContext: inv.link}),
			trace.WithAttributes(attribute.String("hogwire.destination", inv.dest.name), attribute.String("hogwire.event_uuid", inv.g.UUID()),
				attribute.String("hogwire.person_id", inv.g.PersonID()), attribute.String("hogwire.mapping", inv.mapping)))
	}
	opts := executor.Options{SkipFilters: true, Fetcher: inv, FetchPolicy: n.cfg.FetchPolicy, Scheduler: inv, Observer: inv,
		Redact: true, FetchStatusOnly: true, NoDebugLogs: !n.cfg.ShipDebugLogs, Park: !n.cfg.Retry.Off, Mapping: inv.mapping}
	if inv.parked != nil {
		opts.Resume = inv.parked.Suspended
	}
	if r.d.GetMasking() != nil {
		opts.Mask = func(ctx context.Context, hash string) (bool, error) { return n.masks.mask(ctx, r.d, hash) }
	}
	if inv.members != nil {
		r.prep.InvokeBatch(inv.ctx, inv.globals(), opts)
		return
	}
	r.prep.Invoke(inv.ctx, inv.g, opts)
}

// Acquire implements executor.Scheduler: the memory budget admits a new
// invocation, then it checks its destination, then it runs, taking a turn
// on the CPU at its first checkpoint (see cpu).
func (inv *invocation) Acquire(ctx context.Context) error {
	n := inv.n
	if !inv.admitted {
		if err := n.memory.admit(ctx); err != nil {
			return err
		}
		inv.admitted = true
	}
	if err := inv.check(); err != nil {
		return err
	}
	n.cpu.begin(inv)
	return nil
}

// Yield implements executor.Scheduler.
func (inv *invocation) Yield(ctx context.Context, allocated int64) error {
	if err := inv.check(); err != nil {
		return err
	}
	if err := inv.n.memory.grow(inv, allocated); err != nil {
		return err
	}
	return inv.n.cpu.yield(ctx, inv)
}

// Release implements executor.Scheduler.
func (inv *invocation) Release() error {
	inv.n.cpu.release(inv)
	return inv.check()
}

// End implements executor.Scheduler.
func (inv *invocation) End() { inv.n.memory.giveBack(inv) }

// check stops the invocation when its destination changed since it began.
func (inv *invocation) check() error {
	r, stop := inv.route.check()
	if stop != nil {
		return stop
	}
	inv.route = r
	return nil
}

// count adds k to one of the destination's counters, recorded with the
// rest when the invocation ends.
func (inv *invocation) count(metric string, k int64) {
	t := inv.tallied()
	t.metrics = append(t.metrics, telemetry.Metric{Name: metric, N: k})
}

// Transition implements executor.Observer.
func (inv *invocation) Transition(_, _ executor.State) {}

// Log implements executor.Observer.
func (inv *invocation) Log(e executor.LogEntry) {
	inv.log(e.Time, e.Level, e.Message)
}

func (inv *invocation) log(t time.Time, level hogwirev1.LogLevel, msg string) {
	if inv.id == "" {
		// Most invocations log nothing: the id is made only when needed.
		inv.id = newInvocationID()
	}
	inv.n.tel.Log(&hogwirev1.LogEntry{Time: timestamppb.New(t), Level: level, Message: msg,
		Destination: inv.dest.name, InvocationId: inv.id, EventUuid: inv.g.UUID(), PersonId: inv.g.PersonID(), NodeId: inv.n.cfg.NodeID,
		Mapping: inv.mapping})
}

// Attempt implements executor.Observer: each attempt is counted by
// outcome and, when traced, recorded as a span under the invocation's.
func (inv *invocation) Attempt(req *fetch.Request, a fetch.Attempt) {
	inv.count("fetch_attempts", 1)
	if inv.n.records != nil {
		t := inv.tallied()
		t.attempts = append(t.attempts, attempt{n: a.N, status: a.Status, dur: a.Duration, err: attemptError(a.Err)})
	}
	if inv.span != nil && inv.span.IsRecording() {
		end := time.Now()
		_, span := inv.n.tracer.Start(inv.ctx, req.Method, trace.WithTimestamp(end.Add(-a.Duration)),
			trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(fetchAttributes(req, a)...))
		switch {
		case a.Err != nil:
			span.SetStatus(codes.Error, a.Err.Error())
		case a.Status >= 500:
			// A server error fails the attempt (a 4xx is the request's
			// fault, the span's outcome is the client's to judge).
			span.SetStatus(codes.Error, "")
		}
		span.End(trace.WithTimestamp(end))
	}
	if inv.n.im != nil {
		result := metrics.AttemptResult(a.Status, errors.Is(a.Err, fetch.ErrTimeout))
		if errors.Is(a.Err, fetch.ErrEgressDenied) {
			result = metrics.AttemptBlocked
		}
		inv.n.meters(inv.dest).im.Attempt(result)
	}
	switch {
	case errors.Is(a.Err, fetch.ErrEgressDenied):
		inv.count(string(executor.KindEgressRefused), 1)
	case errors.Is(a.Err, fetch.ErrTimeout):
		inv.count("fetch_timeouts", 1)
	case a.Err != nil:
		inv.count("fetch_errors", 1)
	case a.Status >= 500:
		inv.count("fetch_failed_5xx", 1)
	case a.Status >= 400:
		inv.count("fetch_failed_4xx", 1)
	}
}

// Done implements executor.Observer: the invocation's counts, its own
// time (VM time and fetches, not the waits for the CPU, which are other
// destinations' doing), its captures and its span.
func (inv *invocation) Done(res *executor.Result) {
	n := inv.n
	m := n.meters(inv.dest)
	inv.res = res
	defer func() {
		if inv.span != nil {
			inv.span.End()
			inv.span = nil
		}
	}()
	if res.Status == executor.Skipped {
		if res.SkipReason == skipEdited && len(res.Fetches) == 0 && len(res.Captures) == 0 {
			inv.rerun = true
			return
		}
		if res.SkipReason == skipEdited {
			// It had begun to deliver: what it did stands, the rest is lost.
			inv.log(time.Now(), hogwirev1.LogLevel_LOG_LEVEL_WARN, fmt.Sprintf(
				"Stopped: the destination was edited while this invocation ran, after %d fetch(es); the event was not run again", len(res.Fetches)))
			inv.count("failed", int64(inv.size()))
			m.im.Outcomes(context.Background(), metrics.OutcomeFailed, skipEdited, int64(inv.size()), 0)
			inv.record(statusFailed, skipEdited, res, time.Time{})
		}
		m.tel.Record(inv.metrics(), -1)
		if res.SkipReason != skipEdited {
			inv.skip(res.SkipReason)
		}
		return
	}
	if res.Status == executor.Parked {
		// A failing endpoint is failing all the same: health sees it. A
		// 429 or a pause is the vendor pacing us, not a failure.
		if p := res.Parked; p.Status != http.StatusTooManyRequests && (p.Deferred.IsZero() || inv.firstBreakerWait()) {
			if m := healthMetric(res); m != "" {
				inv.count(m, 1)
			}
		}
		if !inv.park(res.Parked, time.Time{}, res.Parked.Reason) && !inv.lost {
			inv.count("failed", int64(inv.size()))
			m.im.Outcomes(context.Background(), metrics.OutcomeFailed, failureReason(res), int64(inv.size()), res.OwnTime())
			inv.record(statusFailed, recordKind(res), res, time.Time{})
		}
		m.tel.Record(inv.metrics(), res.OwnTime())
		return
	}
	if res.Items != nil {
		inv.countItems(res)
	} else {
		inv.count(res.Status.Metric(), 1)
	}
	if m := healthMetric(res); m != "" {
		inv.count(m, 1)
	}
	dur := time.Duration(-1)
	if res.Status != executor.Filtered && res.Status != executor.Masked {
		dur = res.OwnTime()
		if us := res.VMTime.Microseconds(); us > 0 {
			inv.count("vm_time_us", us)
		}
	}
	if m.im != nil {
		switch res.Status {
		case executor.Succeeded:
			m.im.Outcome(context.Background(), metrics.OutcomeSucceeded, "", dur)
		case executor.Filtered, executor.Masked:
			m.im.Outcome(context.Background(), metrics.OutcomeFiltered, "", 0)
		default:
			m.im.Outcome(context.Background(), metrics.OutcomeFailed, failureReason(res), dur)
		}
	}
	// The invocation ended a moment ago: its end dates the counts, without
	// reading the clock again (zero when the Result has no Start).
	var end time.Time
	if !res.Start.IsZero() {
		end = res.Start.Add(res.Duration)
	}
	m.tel.RecordAt(end, inv.metrics(), dur)
	inv.recordDone(res)
	if len(res.Captures) > 0 {
		n.ingestCaptures(inv.ctx, inv.dest.name, res.Captures, func(level hogwirev1.LogLevel, format string, args ...any) {
			inv.log(time.Now(), level, fmt.Sprintf(format, args...))
		})
	}
	if inv.span == nil || !inv.span.IsRecording() {
		return
	}
	inv.span.SetAttributes(attribute.String("hogwire.status", res.Status.Metric()))
	if res.Status != executor.Succeeded && res.Status != executor.Filtered && res.Status != executor.Masked {
		inv.span.SetStatus(codes.Error, res.Error)
	}
}

// healthMetric classifies an invocation for the control plane's health
// manager: "health_errors" for a failure that says the destination is
// unwell (an error thrown by its code, filters or input templates, an HTTP
// 5xx after retries, a timeout, a connection error), "failed_client_error"
// for a failure caused by an HTTP 4xx response or a request the egress
// guard refused — the vendor answered, or the destination's configuration
// points where it may not, and neither counts against health — and ""
// otherwise. "failed" stays PostHog's count of every failure.
// fetchAttributes describe a fetch attempt as OpenTelemetry's HTTP client
// conventions ask: method, URL without its query or credentials (they may
// hold secrets), server, status, and error type.
func fetchAttributes(req *fetch.Request, a fetch.Attempt) []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, 8)
	kv = append(kv, semconv.HTTPRequestMethodKey.String(req.Method), attribute.Int("hogwire.fetch.attempt", a.N))
	if a.N > 1 {
		kv = append(kv, semconv.HTTPRequestResendCount(a.N-1))
	}
	if u, err := url.Parse(req.URL); err == nil {
		kv = append(kv, semconv.URLFull(safeURL(req.URL)), semconv.ServerAddress(u.Hostname()))
		port, _ := strconv.Atoi(u.Port())
		if port == 0 {
			port = map[string]int{"http": 80, "https": 443}[u.Scheme]
		}
		if port != 0 {
			kv = append(kv, semconv.ServerPort(port))
		}
	}
	switch {
	case errors.Is(a.Err, fetch.ErrTimeout):
		kv = append(kv, semconv.ErrorTypeKey.String("timeout"))
	case errors.Is(a.Err, fetch.ErrEgressDenied):
		kv = append(kv, semconv.ErrorTypeKey.String("egress_refused"))
	case a.Err != nil:
		kv = append(kv, semconv.ErrorTypeKey.String("connection_error"))
	case a.Status > 0:
		kv = append(kv, semconv.HTTPResponseStatusCode(a.Status))
		if a.Status >= 500 {
			kv = append(kv, semconv.ErrorTypeKey.String(strconv.Itoa(a.Status)))
		}
	}
	return kv
}

// failureReason is the reason label of a failed invocation's outcome.
func failureReason(res *executor.Result) string {
	if res.ErrorKind != "" {
		return string(res.ErrorKind)
	}
	return res.Status.Metric() // filtering_failed, inputs_failed
}

func healthMetric(res *executor.Result) string {
	var last *executor.FetchRecord
	if len(res.Fetches) > 0 {
		last = &res.Fetches[len(res.Fetches)-1]
	}
	switch res.Status {
	case executor.Succeeded, executor.Filtered, executor.Masked:
		// A program may ignore a 5xx it got after every retry; the
		// endpoint is failing all the same.
		if last != nil && last.Response != nil && last.Response.Status >= 500 {
			return "health_errors"
		}
		return ""
	}
	if res.ErrorKind == executor.KindEgressRefused {
		return "failed_client_error"
	}
	if last != nil && last.Response != nil && last.Response.Status >= 400 && last.Response.Status < 500 {
		return "failed_client_error"
	}
	return "health_errors"
}
