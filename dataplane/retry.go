package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
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
	// Retries counts the durable retries made so far.
	Retries int `json:"retries"`
	// First is when it was first parked; Due when it may run again.
	First  time.Time `json:"first"`
	Due    time.Time `json:"due"`
	Reason string    `json:"reason"`
}

// park stores inv to run again later: at its failing fetch when s is
// set, else from the start (its destination is paused until at least
// until). It reports false when the invocation was not parked: it failed
// for good (GiveUp passed) or could not be stored (then its message is
// handed back to the log: at least once).
func (inv *invocation) park(s *executor.Suspended, until time.Time, why string) bool {
	n, now := inv.n, time.Now()
	rec := parked{Destination: inv.dest.name, Event: inv.data, Suspended: s, First: now, Reason: why}
	if inv.members != nil {
		rec.Event, rec.Events = nil, inv.eventData()
	}
	if prev := inv.parked; prev != nil {
		rec.ID, rec.First, rec.Retries = prev.ID, prev.First, prev.Retries
		if s == nil {
			// Paused again before it ran: it keeps its place at the fetch.
			rec.Suspended = prev.Suspended
		}
	} else {
		rec.ID = newInvocationID() + newInvocationID()
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
	if p, reason := n.pauses.until(inv.dest.name, now); p.After(due) {
		due, cause = p, reason
	}
	if until.After(due) {
		due = until
	}
	if due.After(now) && s == nil {
		// The events that waited for the end of a pause are spread over
		// Retry.Base after it, so that they do not all hit the endpoint
		// in the same instant.
		due = due.Add(rand.N(sched.Base))
	}
	rec.Due = due
	body, err := json.Marshal(&rec)
	if err == nil {
		ctx, cancel := context.WithTimeout(n.runCtx, 10*time.Second)
		err = n.events.Park(ctx, projectOf(inv.dest.name), inv.dest.name, body, nil, fmt.Sprintf("%s-%d", rec.ID, rec.Retries))
		cancel()
	}
	if err != nil {
		n.log.Warn("parking an invocation failed; its events will be redelivered", "destination", inv.dest.name, "event", inv.g.UUID(), "err", err)
		inv.lost = true
		return false
	}
	n.tel.Count(inv.dest.name, "parked", int64(inv.size()))
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
func (n *Node) handleParked(m *eventlog.Message) {
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
	due := rec.Due
	if p, _ := n.pauses.until(rec.Destination, now); p.After(due) {
		due = p
	}
	if wait := due.Sub(now); wait > 0 {
		_ = m.Nak(wait)
		return
	}
	rt := n.routes.Load()
	pr, r := rt.projects[m.Project], rt.prepared[rec.Destination]
	switch {
	case pr == nil || r == nil:
		n.skip(rec.Destination, skipDeleted, nil)
		_ = m.Ack()
		return
	case r.skip == skipQuarantined:
		// Quarantined by the health manager: what is parked waits for it
		// to come back rather than being dropped.
		_ = m.Nak(n.cfg.Retry.wait(1))
		return
	case r.skip != "":
		n.skip(r.dest.name, r.skip, nil)
		_ = m.Ack()
		return
	case r.dest.held.Load() >= int64(n.cfg.MaxQueuedPerDestination):
		_ = m.Nak(n.cfg.BusyRetry)
		return
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
		n.tel.Count(rec.Destination, "retried", int64(len(events)))
	}
	if rec.Events != nil {
		n.queueBatch(r, gs, p, events, &rec)
	} else {
		n.queue(r, gs[0], p, trace.SpanContext{}, rec.Event, &rec)
	}
	p.done()
}

// Do implements executor.Fetcher for the invocation: no request goes to a
// paused destination (the invocation parks until the pause ends), and a
// 429 or 503 with Retry-After pauses it on every node.
func (inv *invocation) Do(ctx context.Context, req fetch.Request, p fetch.Policy, observe func(fetch.Attempt)) (*fetch.Response, error) {
	n := inv.n
	if until, reason := n.pauses.until(inv.dest.name, time.Now()); !until.IsZero() {
		return nil, &executor.DeferError{Until: until, Reason: reason}
	}
	// Retries inside the call wait for pauses set meanwhile (by this
	// invocation's own 429 or another's), so no retry lands inside one.
	p.NotBefore = func() time.Time {
		until, _ := n.pauses.until(inv.dest.name, time.Now())
		return until
	}
	return n.fetcher.Do(ctx, req, p, func(a fetch.Attempt) {
		if (a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable) && a.RetryAfter > 0 {
			until := time.Now().Add(min(a.RetryAfter, n.cfg.Retry.MaxRetryAfter))
			reason := fmt.Sprintf("Retry-After from HTTP %d", a.Status)
			if n.pauses.set(inv.ctx, inv.dest.name, until, reason) {
				msg := fmt.Sprintf("Destination paused until %s by %s", until.UTC().Format("15:04:05.000"), reason)
				inv.log(time.Now(), hogwirev1.LogLevel_LOG_LEVEL_WARN, msg)
				n.log.Info("destination paused", "destination", inv.dest.name, "until", until, "reason", reason)
			}
		}
		observe(a)
	})
}

// backlogGauges are the parked stream's depth and the pauses, per
// destination, as observable gauges: each collection reports what
// observeBacklog found last, so ended pauses and emptied backlogs
// disappear instead of staying at their last value.
type backlogGauges struct {
	mu          sync.Mutex
	parked      map[string]int64
	pausedUntil map[string]float64
}

func newBacklogGauges(mp metric.MeterProvider) (*backlogGauges, error) {
	g := &backlogGauges{}
	if mp == nil {
		return g, nil
	}
	m := mp.Meter("github.com/hogwire/hogwire/dataplane")
	parked, err := m.Int64ObservableGauge("hogwire.destination.parked", metric.WithUnit("{invocation}"),
		metric.WithDescription("Per destination, invocations parked in the event log awaiting a retry or the end of a pause (all nodes)."))
	if err != nil {
		return nil, err
	}
	paused, err := m.Float64ObservableGauge("hogwire.destination.paused_until", metric.WithUnit("s"),
		metric.WithDescription("Per destination, the Unix time its Retry-After pause ends (absent when not paused)."))
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		for d, n := range g.parked {
			o.ObserveInt64(parked, n, metric.WithAttributes(attribute.String("destination", d)))
		}
		for d, t := range g.pausedUntil {
			o.ObserveFloat64(paused, t, metric.WithAttributes(attribute.String("destination", d)))
		}
		return nil
	}, parked, paused)
	return g, err
}

// observeBacklog forgets ended pauses and updates the gauges.
func (n *Node) observeBacklog() {
	now := time.Now()
	n.pauses.sweep(now)
	names := map[string]string{}
	for name := range n.routes.Load().prepared {
		names[eventlog.DestinationKey(name)] = name
	}
	paused := map[string]float64{}
	for _, ps := range n.pauses.all() {
		paused[ps.Destination] = float64(ps.Until.UnixMilli()) / 1000
	}
	n.gauges.mu.Lock()
	n.gauges.pausedUntil = paused
	n.gauges.mu.Unlock()
	ctx, cancel := context.WithTimeout(n.runCtx, 5*time.Second)
	depth, err := n.events.ParkedDepth(ctx)
	cancel()
	if err != nil {
		n.log.Debug("counting parked invocations", "err", err)
		return
	}
	parked := map[string]int64{}
	for key, c := range depth {
		if name, ok := names[key]; ok {
			parked[name] = int64(c)
		}
	}
	n.gauges.mu.Lock()
	n.gauges.parked = parked
	n.gauges.mu.Unlock()
}

// keeps reports whether work skipped for reason waits in the parked stream
// rather than being dropped: a quarantine by the health manager is a
// pause, not a loss.
func (n *Node) keeps(reason string) bool { return reason == skipQuarantined && !n.cfg.Retry.Off }

// waitQuarantine parks the invocation while its destination is
// quarantined; the parked stream offers it again every Retry.Base or so
// until the quarantine ends.
func (inv *invocation) waitQuarantine() {
	inv.n.tel.Count(inv.dest.name, "quarantine_waits", 1)
	inv.park(nil, time.Now().Add(inv.n.cfg.Retry.wait(2)), "the destination is quarantined")
}
