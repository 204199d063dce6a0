package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/dataplane/telemetry"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

// RetrySchedule is when an invocation whose fetch failed in a way worth
// retrying (a 5xx, 408 or 429 after fetch's own retries, a timeout, a
// connection error) is tried again. Such an invocation is parked: its VM
// state at that fetch is stored in the event log's parked stream, and the
// stream hands it to a node again when its time comes, so that it
// survives the loss of any node, and the fetches that succeeded before are
// not repeated.
//
// The wait before durable retry n is uniform in [Base, min(Max,
// Base·2^(n-1))] ("full jitter" above a floor), and never shorter than the
// response's Retry-After (clamped to MaxRetryAfter) or the destination's
// pause. An invocation still failing GiveUp after it was first parked
// fails for good.
type RetrySchedule struct {
	Base          time.Duration // default 5s
	Max           time.Duration // default 1h
	GiveUp        time.Duration // default 24h; at most eventlog.MaxParkedAge less a day
	MaxRetryAfter time.Duration // default 1h
	// Off fails invocations as before, without parking them.
	Off bool
}

// The defaults of a RetrySchedule.
const (
	DefaultRetryBase          = 5 * time.Second
	DefaultRetryMax           = time.Hour
	DefaultRetryGiveUp        = 24 * time.Hour
	DefaultRetryMaxRetryAfter = time.Hour
)

func (s RetrySchedule) withDefaults() RetrySchedule {
	if s.Base <= 0 {
		s.Base = DefaultRetryBase
	}
	if s.Max <= 0 {
		s.Max = DefaultRetryMax
	}
	s.Max = max(s.Max, s.Base)
	if s.GiveUp <= 0 {
		s.GiveUp = DefaultRetryGiveUp
	}
	s.GiveUp = min(s.GiveUp, eventlog.MaxParkedAge-24*time.Hour)
	if s.MaxRetryAfter <= 0 {
		s.MaxRetryAfter = DefaultRetryMaxRetryAfter
	}
	return s
}

// forDestination is the schedule of a destination: its limits' retry
// fields, where set, over the node's.
func (s RetrySchedule) forDestination(l *hogwirev1.ExecutionLimits) RetrySchedule {
	if d := l.GetRetryBase().AsDuration(); d > 0 {
		s.Base = d
	}
	if d := l.GetRetryMax().AsDuration(); d > 0 {
		s.Max = d
	}
	if d := l.GetRetryGiveUp().AsDuration(); d > 0 {
		s.GiveUp = d
	}
	return s.withDefaults()
}

// wait is the wait before durable retry n (1-based).
func (s RetrySchedule) wait(n int) time.Duration {
	ceil := fetch.Ceiling(s.Base, s.Max, n)
	return s.Base + rand.N(ceil-s.Base+1)
}

// parked is what the parked stream holds for one invocation.
type parked struct {
	// ID names the invocation over all its retries.
	ID          string `json:"id"`
	Destination string `json:"destination"`
	// Event is the event's wire encoding, as the event log holds it.
	Event []byte `json:"event,omitempty"`
	// Events are the events of a batch invocation, in its order.
	Events [][]byte `json:"events,omitempty"`
	// Suspended is the invocation at its failing fetch; nil runs it from
	// the start (it never ran: its destination was paused).
	Suspended *executor.Suspended `json:"suspended,omitempty"`
	// Mapping is the destination's mapping the invocation runs.
	Mapping string `json:"mapping,omitempty"`
	// Retries counts the durable retries made so far; Parks the times it
	// was parked, retries and waits for a pause alike, which names each
	// parked message for deduplication: the same message handled twice
	// (redelivered) parks the same next one, once.
	Retries int `json:"retries"`
	Parks   int `json:"parks"`
	// First is when it was first parked; Due when it may run again.
	First  time.Time `json:"first"`
	Due    time.Time `json:"due"`
	Reason string    `json:"reason"`
	// Rerun and RerunOf link a rerun's invocation (see handleRerun).
	Rerun   string `json:"rerun,omitempty"`
	RerunOf string `json:"rerun_of,omitempty"`
	// Revision is the destination's revision it ran with; Pinned says a
	// rerun runs it with that revision (see pinnedRoute), not the current.
	Revision int64 `json:"revision,omitempty"`
	Pinned   bool  `json:"pinned,omitempty"`
}

// park stores inv to run again later: at its failing fetch when s is
// set, else from the start (its destination is paused until at least
// until). It reports false when the invocation was not parked: it failed
// for good (GiveUp passed) or could not be stored (then its message is
// handed back to the log: at least once).
func (inv *invocation) park(s *executor.Suspended, until time.Time, why string) bool {
	n, now := inv.n, time.Now()
	rec := parked{Destination: inv.dest.name, Event: inv.data, Suspended: s, First: now, Reason: why, Mapping: inv.mapping}
	if l := inv.rerunLink(); l.rerun != "" {
		rec.Rerun, rec.RerunOf = l.rerun, l.of
	}
	rec.Revision, rec.Pinned = inv.revision(), inv.pin != nil
	if inv.members != nil {
		rec.Event, rec.Events = nil, inv.eventData()
	}
	if prev := inv.parked; prev != nil {
		rec.ID, rec.First, rec.Retries, rec.Parks = prev.ID, prev.First, prev.Retries, prev.Parks
		if s == nil {
			// Paused again before it ran: it keeps its place at the fetch.
			rec.Suspended = prev.Suspended
		}
	} else {
		rec.ID = newInvocationID() + newInvocationID()
		if !inv.admitBacklog(len(inv.data)) {
			return false
		}
	}
	sched := n.cfg.Retry
	if r := inv.dest.cur.Load(); r != nil {
		sched = sched.forDestination(r.d.GetLimits())
	}
	due := now
	cause := ""
	if s != nil {
		if now.Sub(rec.First) >= sched.GiveUp {
			inv.log(now, hogwirev1.LogLevel_LOG_LEVEL_ERROR, fmt.Sprintf(
				"Gave up after %d durable retries over %s: the last fetch failed with %s", rec.Retries, now.Sub(rec.First).Round(time.Second), why))
			n.log.Warn("giving up an invocation", "destination", inv.dest.name, "event", inv.g.UUID(), "retries", rec.Retries, "reason", why)
			return false
		}
		rec.Retries++
		due = now.Add(sched.wait(rec.Retries))
		cause = fmt.Sprintf("retry %d after %s", rec.Retries, why)
		if s.RetryAfter > 0 {
			if ra := now.Add(min(s.RetryAfter, sched.MaxRetryAfter)); ra.After(due) {
				due, cause = ra, fmt.Sprintf("Retry-After from HTTP %d", s.Status)
			}
		}
		if s.Deferred.After(due) {
			due, cause = s.Deferred, s.Reason
		}
	}
	if p, reason := n.pauses.until(inv.dest.name, now); p.After(due) && why != quarantineCause {
		// (A quarantine's backlog waits for its ticks, not for a pause
		// that a re-enable may clear.)
		due, cause = p, reason
	}
	if until.After(due) {
		due, cause = until, why
	}
	if due.After(now) && s == nil && why != quarantineCause {
		// The events that waited for the end of a pause are spread over
		// Retry.Base after it, so that they do not all hit the endpoint
		// in the same instant.
		due = due.Add(rand.N(sched.Base))
	}
	rec.Due = due
	rec.Parks++
	body, err := json.Marshal(&rec)
	if err == nil {
		ctx, cancel := context.WithTimeout(n.runCtx, 10*time.Second)
		err = n.events.Park(ctx, projectOf(inv.dest.name), inv.dest.name, body, nil, fmt.Sprintf("%s-%d", rec.ID, rec.Parks))
		cancel()
	}
	if err != nil {
		if inv.parked == nil {
			n.leaveBacklog(inv.dest.name)
		}
		n.log.Warn("parking an invocation failed; its events will be redelivered", "destination", inv.dest.name, "event", inv.g.UUID(), "err", err)
		inv.lost = true
		return false
	}
	n.tel.Count(inv.dest.name, "parked", int64(inv.size()))
	inv.record(statusParked, parkKind(s, why), inv.res, due)
	if inv.parked == nil {
		n.backlogOf(inv.dest.name).noteSize(len(body))
	}
	msg := fmt.Sprintf("Parked until %s by %s", due.UTC().Format("15:04:05.000"), cause)
	if s == nil {
		msg = fmt.Sprintf("Waiting until %s: %s", due.UTC().Format("15:04:05.000"), cause)
	}
	inv.log(now, hogwirev1.LogLevel_LOG_LEVEL_INFO, msg)
	n.log.Debug("parked an invocation", "destination", inv.dest.name, "event", inv.g.UUID(), "due", due, "cause", cause)
	return true
}

// handleParked runs a parked invocation whose time has come, and hands
// back one whose time has not, for as long as it must still wait.
func (n *Node) handleParked(m *eventlog.Message) { n.runParked(m, false) }

// runParked is handleParked; inOrder is set once reorder put m in order.
func (n *Node) runParked(m *eventlog.Message, inOrder bool) {
	n.handleMu.RLock()
	defer n.handleMu.RUnlock()
	if n.stopped {
		_ = m.Nak(0)
		return
	}
	var rec parked
	if err := json.Unmarshal(m.Data[0], &rec); err != nil {
		n.log.Error("dropping an unreadable parked invocation", "seq", m.Seq, "err", err)
		_ = m.Ack()
		return
	}
	now := time.Now()
	rt := n.routes.Load()
	pr, r := rt.projects[m.Project], rt.prepared[rec.Destination]
	if pr != nil && r != nil && n.expired(r, &rec, now) {
		_ = m.Ack()
		return
	}
	if r != nil && n.keeps(r.skip) {
		// Quarantined: everything it holds waits for the next tick,
		// whatever its own time or a pause, so that it all comes back
		// together, in order, soon after the quarantine ends.
		_ = m.Nak(time.Until(quarantineTick(now, n.cfg.Retry.Base)))
		return
	}
	due := rec.Due
	if p, _ := n.pauses.until(rec.Destination, now); p.After(due) {
		due = p
	}
	if wait := due.Sub(now); wait > 0 {
		_ = m.Nak(wait)
		return
	}
	switch {
	case pr == nil || r == nil:
		n.skip(rec.Destination, skipDeleted, nil)
		_ = m.Ack()
		return
	case r.skip != "":
		n.skip(r.dest.name, r.skip, nil)
		_ = m.Ack()
		return
	case n.full(r.dest):
		_ = m.Nak(n.cfg.BusyRetry)
		return
	case rec.Reason == quarantineCause && !inOrder:
		// The backlog of a quarantine comes back in the order it was
		// parked: see reorder.
		n.reorder(r.dest, m, func(m *eventlog.Message) { n.runParked(m, true) })
		return
	case rec.Pinned:
		pinned, err := n.pinnedRoute(r, rec.Revision)
		if err != nil {
			// Its revision cannot be had now: the control plane is away,
			// or pruned it. It waits, as long as any parked invocation.
			n.log.Warn("cannot get a destination's revision for a parked rerun; retrying", "destination", r.dest.name, "revision", rec.Revision, "err", err)
			_ = m.Nak(n.cfg.Retry.Base)
			return
		}
		r = pinned
	}
	events := rec.Events
	if events == nil {
		events = [][]byte{rec.Event}
	}
	gs := make([]*executor.Globals, len(events))
	for i, data := range events {
		ev, err := executor.ParseEvent(data)
		if err == nil {
			n.storedPerson(m.Project, ev)
			gs[i], err = executor.NewEventFromWire(ev, pr.globals)
		}
		if err != nil {
			n.log.Error("dropping an unreadable parked event", "seq", m.Seq, "destination", rec.Destination, "err", err)
			_ = m.Ack()
			return
		}
	}
	p := &pending{msg: m, n: n, events: int64(len(events))}
	if !n.track(p) {
		_ = m.Nak(n.cfg.BusyRetry)
		return
	}
	p.left.Store(1)
	if rec.Suspended != nil {
		n.tel.Record(rec.Destination, []telemetry.Metric{{Name: "retried", N: int64(len(events))}, {Name: retriedMetric(rec.Retries), N: int64(len(events))}}, -1)
	}
	if rec.Events != nil {
		n.queueBatch(r, gs, p, events, &rec)
	} else {
		n.queue(r, gs[0], p, trace.SpanContext{}, rec.Event, &rec, rec.Mapping)
	}
	p.done()
}

// eventUUID reads an event's id from its wire encoding, for logs.
func eventUUID(data []byte) string {
	var e hogwirev1.Event
	if err := proto.Unmarshal(data, &e); err != nil {
		return "(unreadable)"
	}
	return e.GetUuid()
}

// retriedMetric counts durable retries by attempt: retried_1 … retried_9,
// then retried_10+.
func retriedMetric(n int) string {
	if n >= 10 {
		return "retried_10+"
	}
	return fmt.Sprintf("retried_%d", n)
}

// Do implements executor.Fetcher for the invocation: no request goes to a
// paused destination (the invocation parks until the pause ends), requests
// wait for their place under the destination's concurrency and rate
// limits (see flow), and a 429 or 503 with Retry-After, or a run of
// failures (the circuit breaker), pauses it on every node.
func (inv *invocation) Do(ctx context.Context, req fetch.Request, p fetch.Policy, observe func(fetch.Attempt)) (*fetch.Response, error) {
	n := inv.n
	if until, reason := n.pauses.untilNow(inv.dest.name); !until.IsZero() {
		return nil, &executor.DeferError{Until: until, Reason: reason}
	}
	r := inv.route
	release, err := inv.acquire(ctx, r)
	if err != nil {
		return nil, err
	}
	defer release()
	rate := r.d.GetLimits().GetMaxRate()
	var last fetch.Attempt
	stopped := false
	// Retries inside the call wait for pauses set meanwhile (by this
	// invocation's own 429 or another's), so no retry lands inside one
	// even where durable retries are off and the call is not cut short.
	p.NotBefore = func() time.Time {
		until, _ := n.pauses.untilNow(inv.dest.name)
		return until
	}
	p.BeforeRetry = func(a fetch.Attempt) bool {
		if now := time.Now(); !n.cfg.Retry.Off && (n.pauses.paused(inv.dest.name, now) || n.pauses.paused(inv.dest.name, now.Add(a.RetryIn))) {
			// Paused (by this response's Retry-After, another's, or the
			// breaker): fetch's retry would not see a pause that grows
			// while it sleeps. The attempt's outcome stands and the
			// invocation parks until the pause ends, however long it
			// becomes.
			stopped = true
			return false
		}
		if rate > 0 {
			// fetch waits RetryIn before the retry; its slot in the rate
			// limit may be later. A context that ends here ends fetch's
			// wait too.
			_ = inv.waitRate(ctx, rate, a.RetryIn)
		}
		return true
	}
	resp, err := n.fetcher.Do(ctx, req, p, func(a fetch.Attempt) {
		last = a
		if (a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable) && a.RetryAfter > 0 {
			until := time.Now().Add(min(a.RetryAfter, n.cfg.Retry.MaxRetryAfter))
			reason := fmt.Sprintf("Retry-After from HTTP %d", a.Status)
			if n.pauses.set(inv.ctx, pause{Destination: inv.dest.name, Until: until, Reason: reason}) {
				msg := fmt.Sprintf("Destination paused until %s by %s", until.UTC().Format("15:04:05.000"), reason)
				inv.log(time.Now(), hogwirev1.LogLevel_LOG_LEVEL_WARN, msg)
				n.log.Info("destination paused", "destination", inv.dest.name, "until", until, "reason", reason)
			}
		}
		if t := inv.dest.flow.observe(a, n.cfg.BreakerFailures); t.open {
			inv.openBreaker(inv.ctx, t)
		}
		observe(a)
	})
	if stopped {
		if last.Err != nil {
			return nil, last.Err
		}
		h := http.Header{}
		if last.RetryAfter > 0 {
			h.Set("Retry-After", fmt.Sprint(int(last.RetryAfter.Round(time.Second).Seconds())))
		}
		return &fetch.Response{Status: last.Status, Header: h, Attempts: last.N}, nil
	}
	return resp, err
}

// keeps reports whether work skipped for reason waits in the parked stream
// rather than being dropped: a quarantine or a disable by the health
// manager is a pause, not a loss; only a user's disable or delete drops
// the backlog. (A deleted destination has no route: callers tell it apart.)
func (n *Node) keeps(reason string) bool {
	return (reason == skipQuarantined || reason == skipDisabledByHealth) && !n.cfg.Retry.Off
}

// waitQuarantine parks the invocation while its destination is
// quarantined; the parked stream offers it again at every quarantineTick
// until the quarantine ends.
func (inv *invocation) waitQuarantine() {
	inv.n.tel.Count(inv.dest.name, "quarantine_waits", 1)
	inv.park(nil, quarantineTick(time.Now(), inv.n.cfg.Retry.Base), quarantineCause)
}

const quarantineCause = "the destination is quarantined"

// quarantineTick is the next multiple of every after now (at least every
// later), the same instant on every node: a quarantined destination's
// parked invocations all fall due at once, and JetStream hands back
// messages that fall due together in the order they were stored, so the
// backlog comes back in the order it was parked.
func quarantineTick(now time.Time, every time.Duration) time.Time {
	return now.Add(every).Truncate(every).Add(every)
}
