package dataplane

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/deliverystate"
)

// BacklogLimits bound a destination's backlog: the invocations parked in
// the event log awaiting a retry, the end of a pause or of a quarantine.
// A destination's limits (max_backlog, max_backlog_bytes,
// max_backlog_age) override them.
type BacklogLimits struct {
	MaxEvents int64         // default 1,000,000
	MaxBytes  int64         // default 1 GiB
	MaxAge    time.Duration // default 24h; at most 7 days
}

// The defaults of BacklogLimits.
const (
	DefaultMaxBacklog      = 1_000_000
	DefaultMaxBacklogBytes = 1 << 30
	DefaultMaxBacklogAge   = 24 * time.Hour
)

func (b BacklogLimits) withDefaults() BacklogLimits {
	if b.MaxEvents <= 0 {
		b.MaxEvents = DefaultMaxBacklog
	}
	if b.MaxBytes <= 0 {
		b.MaxBytes = DefaultMaxBacklogBytes
	}
	if b.MaxAge <= 0 {
		b.MaxAge = DefaultMaxBacklogAge
	}
	b.MaxAge = min(b.MaxAge, eventlog.MaxParkedAge-24*time.Hour)
	return b
}

func (b BacklogLimits) forDestination(l *hogwirev1.ExecutionLimits) BacklogLimits {
	if v := l.GetMaxBacklog(); v > 0 {
		b.MaxEvents = v
	}
	if v := l.GetMaxBacklogBytes(); v > 0 {
		b.MaxBytes = v
	}
	if v := l.GetMaxBacklogAge().AsDuration(); v > 0 {
		b.MaxAge = v
	}
	return b.withDefaults()
}

// backlog is what a node knows of a destination's backlog: the count the
// parked stream gave at the last observation (every observeEvery) plus
// what this node parked since, and the mean size of what it parked, for
// the bytes (JetStream counts messages per subject, not bytes). The caps
// are therefore soft: every node may park what it parks in one
// observation period past them.
type backlog struct {
	counted atomic.Int64
	added   atomic.Int64
	// meanSize is a moving average of the parked bodies' sizes.
	meanSize atomic.Int64

	mu      sync.Mutex
	dropped []string // ids of events dropped since the last report
	why     string
}

const observeEvery = 2 * time.Second

func (b *backlog) noteSize(size int) {
	m := b.meanSize.Load()
	if m == 0 {
		m = int64(size)
	}
	b.meanSize.Store((m*15 + int64(size)) / 16)
}

// backlogOf returns the node's view of a destination's backlog.
func (n *Node) backlogOf(dest string) *backlog {
	if b, ok := n.backlogs.Load(dest); ok {
		return b.(*backlog)
	}
	b, _ := n.backlogs.LoadOrStore(dest, &backlog{})
	return b.(*backlog)
}

// admitBacklog takes a place in its destination's backlog for a new
// invocation of about size bytes; one that does not fit is dropped,
// counted backlog_overflowed and logged with its event's id. A place taken
// and not used is given back with leaveBacklog.
func (inv *invocation) admitBacklog(size int) bool {
	n := inv.n
	lim := n.cfg.Backlog
	if r := inv.dest.cur.Load(); r != nil {
		lim = lim.forDestination(r.d.GetLimits())
	}
	b := n.backlogOf(inv.dest.name)
	ev := b.counted.Load() + b.added.Add(1)
	bytes := ev * max(b.meanSize.Load(), int64(size))
	if ev <= lim.MaxEvents && bytes <= lim.MaxBytes {
		return true
	}
	b.added.Add(-1)
	n.tel.Count(inv.dest.name, "backlog_overflowed", 1)
	b.drop(inv.g.UUID(), fmt.Sprintf("the backlog is full (%d events, about %d bytes; the limits are %d events and %d bytes)",
		ev-1, bytes, lim.MaxEvents, lim.MaxBytes))
	return false
}

func (n *Node) leaveBacklog(dest string) { n.backlogOf(dest).added.Add(-1) }

func (b *backlog) drop(id, why string) {
	b.mu.Lock()
	b.dropped = append(b.dropped, id)
	b.why = why
	b.mu.Unlock()
}

// reportDrops logs the events dropped from backlogs since the last call,
// with their ids: one entry per destination and observation, not one per
// event, for a full backlog may drop thousands a second.
func (n *Node) reportDrops() {
	n.backlogs.Range(func(k, v any) bool {
		dest, b := k.(string), v.(*backlog)
		b.mu.Lock()
		ids, why := b.dropped, b.why
		b.dropped = nil
		b.mu.Unlock()
		if len(ids) == 0 {
			return true
		}
		const shown = 100
		list := strings.Join(ids[:min(len(ids), shown)], ", ")
		if len(ids) > shown {
			list += fmt.Sprintf(" and %d more (in the node's log)", len(ids)-shown)
		}
		n.tel.Log(&hogwirev1.LogEntry{Time: timestamppb.Now(), Level: hogwirev1.LogLevel_LOG_LEVEL_WARN,
			Message:     fmt.Sprintf("Dropped %d events: %s: %s", len(ids), why, list),
			Destination: dest, InvocationId: newInvocationID(), NodeId: n.cfg.NodeID})
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), 1000)]
			ids = ids[len(chunk):]
			n.log.Warn("dropped events from a destination's backlog", "destination", dest, "reason", why, "events", chunk)
		}
		return true
	})
}

// expired reports whether a parked invocation is older than its
// destination's max_backlog_age; such an invocation is dropped, counted
// backlog_expired and logged with its event's id.
func (n *Node) expired(r *route, rec *parked, now time.Time) bool {
	lim := n.cfg.Backlog.forDestination(r.d.GetLimits())
	if now.Sub(rec.First) <= lim.MaxAge {
		return false
	}
	n.tel.Count(r.dest.name, "backlog_expired", 1)
	n.backlogOf(r.dest.name).drop(eventUUID(rec.Event), fmt.Sprintf("waited longer than the backlog's age limit of %s", lim.MaxAge))
	return true
}

// purgeBacklog drops the backlog of a destination a user disabled or
// deleted, and says how many events it held. Every node sees the change;
// the one that claims it in the backlog bucket (by the configuration's
// revision) does the work.
func (n *Node) purgeBacklog(dest, reason string, revision int64) {
	if n.events == nil || n.backlogKV == nil {
		return
	}
	ctx, cancel := context.WithTimeout(n.runCtx, 10*time.Second)
	defer cancel()
	claim := fmt.Sprintf("purge.%s.%d", deliverystate.Key(dest), revision)
	if _, err := n.backlogKV.Create(ctx, claim, []byte(n.cfg.NodeID)); err != nil {
		return // another node does it (or NATS is away: the parked stream drops them as they come)
	}
	purged, err := n.events.PurgeParked(ctx, projectOf(dest), dest)
	if err != nil {
		n.log.Warn("dropping a disabled destination's backlog", "destination", dest, "err", err)
		return
	}
	_ = n.backlogKV.Delete(ctx, deliverystate.Key(dest))
	n.backlogOf(dest).counted.Store(0)
	if purged == 0 {
		return
	}
	what := "disabled"
	if reason == skipDeleted {
		what = "deleted"
	}
	n.tel.Count(dest, "backlog_dropped", int64(purged))
	n.tel.Log(&hogwirev1.LogEntry{Time: timestamppb.Now(), Level: hogwirev1.LogLevel_LOG_LEVEL_WARN,
		Message:     fmt.Sprintf("The destination was %s: dropped the %d events of its backlog", what, purged),
		Destination: dest, InvocationId: newInvocationID(), NodeId: n.cfg.NodeID})
	n.log.Info("dropped a destination's backlog", "destination", dest, "reason", what, "events", purged)
}

// backlogGauges are the delivery gauges per destination, as observable
// gauges: each collection reports what observeBacklog found last (and each
// flow's current limit), so ended pauses and emptied backlogs disappear
// instead of staying at their last value.
type backlogGauges struct {
	mu          sync.Mutex
	parked      map[string]int64
	age         map[string]float64
	pausedUntil map[string]float64
	concurrency map[string]*atomic.Int64
}

func newBacklogGauges(mp metric.MeterProvider) (*backlogGauges, error) {
	g := &backlogGauges{concurrency: map[string]*atomic.Int64{}}
	if mp == nil {
		return g, nil
	}
	m := mp.Meter("github.com/hogwire/hogwire/dataplane")
	parked, err := m.Int64ObservableGauge("hogwire.destination.parked", metric.WithUnit("{invocation}"),
		metric.WithDescription("Per destination, invocations parked in the event log awaiting a retry or the end of a pause (the backlog; all nodes)."))
	if err != nil {
		return nil, err
	}
	age, err := m.Float64ObservableGauge("hogwire.destination.backlog_age", metric.WithUnit("s"),
		metric.WithDescription("Per destination, how long ago the oldest parked invocation was first parked."))
	if err != nil {
		return nil, err
	}
	paused, err := m.Float64ObservableGauge("hogwire.destination.paused_until", metric.WithUnit("s"),
		metric.WithDescription("Per destination, the Unix time its pause (Retry-After or circuit breaker) ends (absent when not paused)."))
	if err != nil {
		return nil, err
	}
	conc, err := m.Int64ObservableGauge("hogwire.destination.concurrency", metric.WithUnit("{request}"),
		metric.WithDescription("Per destination, the adaptive limit of requests in flight at once on this node."))
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		for d, n := range g.parked {
			o.ObserveInt64(parked, n, metric.WithAttributes(attribute.String("destination", d)))
		}
		for d, a := range g.age {
			o.ObserveFloat64(age, a, metric.WithAttributes(attribute.String("destination", d)))
		}
		for d, t := range g.pausedUntil {
			o.ObserveFloat64(paused, t, metric.WithAttributes(attribute.String("destination", d)))
		}
		for d, c := range g.concurrency {
			o.ObserveInt64(conc, c.Load(), metric.WithAttributes(attribute.String("destination", d)))
		}
		return nil
	}, parked, age, paused, conc)
	return g, err
}

// concurrencyOf is where a destination's flow keeps its current limit for
// the gauge.
func (g *backlogGauges) concurrencyOf(dest string) *atomic.Int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.concurrency[dest]
	if !ok {
		c = new(atomic.Int64)
		g.concurrency[dest] = c
	}
	return c
}

// observeBacklog forgets ended pauses, counts the backlogs, updates the
// gauges, publishes the backlogs for the control plane and logs the
// events dropped from them.
func (n *Node) observeBacklog() {
	n.reportDrops()
	now := time.Now()
	n.pauses.sweep(now)
	routes := n.routes.Load().prepared
	names := map[string]string{}
	for name := range routes {
		names[eventlog.DestinationKey(name)] = name
	}
	paused := map[string]float64{}
	for _, ps := range n.pauses.all() {
		if ps.Until.After(now) {
			paused[ps.Destination] = float64(ps.Until.UnixMilli()) / 1000
		}
	}
	n.gauges.mu.Lock()
	n.gauges.pausedUntil = paused
	n.gauges.mu.Unlock()
	ctx, cancel := context.WithTimeout(n.runCtx, 5*time.Second)
	defer cancel()
	depth, err := n.events.ParkedDepth(ctx)
	if err != nil {
		n.log.Debug("counting parked invocations", "err", err)
		return
	}
	parkedGauge, ageGauge := map[string]int64{}, map[string]float64{}
	defer func() {
		n.gauges.mu.Lock()
		n.gauges.parked, n.gauges.age = parkedGauge, ageGauge
		n.gauges.mu.Unlock()
	}()
	seen := map[string]bool{}
	for key, c := range depth {
		name, ok := names[key]
		if !ok {
			continue
		}
		seen[name] = true
		b := n.backlogOf(name)
		b.counted.Store(int64(c))
		b.added.Store(0)
		parkedGauge[name] = int64(c)
		var oldest time.Time
		if body, err := n.events.OldestParked(ctx, projectOf(name), name); err == nil && body != nil {
			var rec parked
			if json.Unmarshal(body, &rec) == nil {
				oldest = rec.First
				ageGauge[name] = now.Sub(oldest).Seconds()
			}
		}
		n.publishBacklog(ctx, deliverystate.Backlog{Destination: name, Events: int64(c), Bytes: int64(c) * b.meanSize.Load(),
			Oldest: oldest, Observed: now})
	}
	n.backlogs.Range(func(k, v any) bool {
		name, b := k.(string), v.(*backlog)
		if !seen[name] && b.counted.Swap(0) != 0 {
			// Drained: say so once.
			n.publishBacklog(ctx, deliverystate.Backlog{Destination: name, Observed: now})
		}
		b.added.Store(0)
		if _, ok := routes[name]; !ok && !seen[name] {
			n.backlogs.Delete(name)
		}
		return true
	})
}

func (n *Node) publishBacklog(ctx context.Context, b deliverystate.Backlog) {
	if n.backlogKV == nil {
		return
	}
	body, err := json.Marshal(b)
	if err != nil {
		return
	}
	if _, err := n.backlogKV.Put(ctx, deliverystate.Key(b.Destination), body); err != nil {
		n.log.Debug("publishing a backlog", "destination", b.Destination, "err", err)
	}
}

// reorderWait is how long the parked messages of a quarantine's backlog
// are held to be put back in the order they were stored.
const reorderWait = 100 * time.Millisecond

// reorderBuf holds one destination's backlog messages as they come back.
type reorderBuf struct {
	mu    sync.Mutex
	msgs  []*eventlog.Message
	armed bool
}

// reorder runs handle on m and the destination's other backlog messages
// that come back within reorderWait of it, in the order they were stored.
// JetStream hands back the messages that fall due together (see
// quarantineTick) in that order, but the messages' deadlines differ by
// the time each took to reach the server, so a pass may miss a few that
// come a moment later: held a moment, they are put back in order here.
func (n *Node) reorder(d *destination, m *eventlog.Message, handle func(*eventlog.Message)) {
	b := &d.reorder
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	arm := !b.armed
	b.armed = true
	b.mu.Unlock()
	if !arm {
		return
	}
	n.chores.Add(1)
	time.AfterFunc(reorderWait, func() {
		defer n.chores.Done()
		b.mu.Lock()
		msgs := b.msgs
		b.msgs, b.armed = nil, false
		b.mu.Unlock()
		slices.SortFunc(msgs, func(a, b *eventlog.Message) int { return cmp.Compare(a.Seq, b.Seq) })
		for _, m := range msgs {
			handle(m)
		}
	})
}
