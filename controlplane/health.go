package controlplane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/resourcename"
)

// HealthConfig tunes the health manager, which follows PostHog's 2024
// HogWatcher: each destination has a token bucket that refills with time and
// is drained by errors and slowness, aggregated over every node.
//
//   - healthy while the bucket holds more than DegradedAt of its size;
//   - degraded at or below that (it still runs);
//   - disabled_temporarily (quarantined, skipped by nodes) when it is empty,
//     for QuarantineFor; then back as degraded with the bucket at least at
//     ResumeAt (probation), and healthy once it refills above DegradedAt;
//   - disabled_indefinitely on the MaxQuarantines-th quarantine within
//     QuarantineWindow, until a user edits or re-enables the destination.
//
// Costs: each health error (a thrown error not caused by an HTTP 4xx
// response, an HTTP 5xx after retries, a timeout, a connection error; see
// the node's "health_errors" counter) costs ErrorCost. An invocation that
// took SlowThreshold or longer costs ErrorCost × duration / (2 ×
// SlowThreshold), at most ErrorCost: half an error at the threshold, a full
// error at twice the threshold. Durations are the invocation's own time —
// its VM time and its own fetches, never the time it waited for the CPU
// behind other destinations — and come from the nodes' histogram, so an
// invocation counts as slow only when its whole bucket lies at or above
// SlowThreshold, and its duration is taken as the bucket's lower bound.
// CPU is what a runaway destination takes from all the others: VM time
// beyond CPUAllowance per invocation (averaged over each node's report)
// costs CPUCost per second, so that a destination whose code loops until
// its time limit is quarantined within seconds of its first timeouts, while
// one that uses a millisecond of VM time per event never pays. An HTTP 4xx,
// or a request the egress guard refused, never costs anything: the vendor
// rejected the data, or the configuration points where it may not; the
// destination itself is fine.
//
// Zero fields take PostHog's values.
type HealthConfig struct {
	// Off disables the health manager: destinations are never quarantined.
	Off bool
	// BucketSize in tokens (default 10,000).
	BucketSize float64
	// RefillPerSecond in tokens (default 10).
	RefillPerSecond float64
	// DegradedAt is the fraction of the bucket at or below which a
	// destination is degraded (default 0.8).
	DegradedAt float64
	// ResumeAt is the fraction of the bucket a destination holds at least
	// when its quarantine ends (default 0.6, what PostHog's bucket refills in
	// a 10-minute quarantine). Kept below DegradedAt.
	ResumeAt float64
	// ErrorCost in tokens (default 100).
	ErrorCost float64
	// SlowThreshold is the invocation duration from which slowness costs
	// (default 5s).
	SlowThreshold time.Duration
	// CPUAllowance is the VM time per invocation that costs nothing
	// (default 100ms), and CPUCost what each second beyond it costs
	// (default 500 tokens: five errors).
	CPUAllowance time.Duration
	CPUCost      float64
	// QuarantineFor is how long a quarantine lasts (default 10m).
	QuarantineFor time.Duration
	// MaxQuarantines within QuarantineWindow disable a destination
	// indefinitely (defaults 3 and 24h).
	MaxQuarantines   int
	QuarantineWindow time.Duration
	// Tick is how often refills and the end of quarantines are checked
	// (default 1s).
	Tick time.Duration
	// EventsSubject is the event log's subject prefix, where notification
	// events are published (default "hogwire.events", the event log's).
	EventsSubject string
	// TracerProvider receives a span with an event for every transition
	// (default: none).
	TracerProvider trace.TracerProvider
}

func (c HealthConfig) withDefaults() HealthConfig {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.BucketSize, 10000)
	def(&c.RefillPerSecond, 10)
	def(&c.DegradedAt, 0.8)
	def(&c.ResumeAt, 0.6)
	def(&c.ErrorCost, 100)
	def(&c.CPUCost, 500)
	if c.CPUAllowance <= 0 {
		c.CPUAllowance = 100 * time.Millisecond
	}
	c.ResumeAt = min(c.ResumeAt, c.DegradedAt)
	if c.SlowThreshold <= 0 {
		c.SlowThreshold = 5 * time.Second
	}
	if c.QuarantineFor <= 0 {
		c.QuarantineFor = 10 * time.Minute
	}
	if c.MaxQuarantines <= 0 {
		c.MaxQuarantines = 3
	}
	if c.QuarantineWindow <= 0 {
		c.QuarantineWindow = 24 * time.Hour
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.EventsSubject == "" {
		c.EventsSubject = "hogwire.events"
	}
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
	return c
}

// healthSignals are what drained a bucket, kept to explain a transition.
type healthSignals struct {
	errors, slow                int64
	fetch5xx, timeouts, connErr int64
	// cpu is the VM time beyond the allowance.
	cpu time.Duration
}

func (s *healthSignals) add(o healthSignals) {
	s.errors += o.errors
	s.slow += o.slow
	s.cpu += o.cpu
	s.fetch5xx += o.fetch5xx
	s.timeouts += o.timeouts
	s.connErr += o.connErr
}

// signalsOf reads one node's delta counters for one destination and
// returns what they cost.
func signalsOf(cfg *HealthConfig, m *hogwirev1.DestinationMetrics) (healthSignals, float64) {
	c := m.GetCounters()
	sig := healthSignals{errors: c["health_errors"], fetch5xx: c["fetch_failed_5xx"],
		timeouts: c["fetch_timeouts"], connErr: c["fetch_errors"]}
	cost := float64(sig.errors) * cfg.ErrorCost
	thr := float64(cfg.SlowThreshold.Milliseconds())
	h := m.GetDuration()
	for i, n := range h.GetCounts() {
		if n == 0 || i == 0 || i > len(h.BoundsMs) {
			continue
		}
		lower := h.BoundsMs[i-1]
		if lower < thr {
			continue
		}
		sig.slow += int64(n)
		cost += float64(n) * min(cfg.ErrorCost, cfg.ErrorCost*lower/(2*thr))
	}
	ran := c["succeeded"] + c["failed"] + c["inputs_failed"]
	if over := time.Duration(c["vm_time_us"])*time.Microsecond - time.Duration(ran)*cfg.CPUAllowance; over > 0 {
		sig.cpu = over
		cost += over.Seconds() * cfg.CPUCost
	}
	return sig, cost
}

// healthTracker is one destination's bucket and state. It is a pure state
// machine driven by the caller's clock.
type healthTracker struct {
	cfg         *HealthConfig
	state       hogwirev1.HealthState
	tokens      float64
	at          time.Time // when tokens was last refilled
	since       time.Time // when state was entered
	retry       time.Time // end of the quarantine
	quarantines []time.Time
	// sig accumulates since sigSince (the last transition) for the reason.
	sig      healthSignals
	sigSince time.Time
}

func newHealthTracker(cfg *HealthConfig, now time.Time) *healthTracker {
	return &healthTracker{cfg: cfg, state: hogwirev1.HealthState_HEALTH_STATE_HEALTHY, tokens: cfg.BucketSize,
		at: now, since: now, sigSince: now}
}

// trackerFrom resumes a tracker from a stored state, for a new leader or
// after someone else wrote the state. The bucket is not stored: it is set
// to the level the state implies, and past quarantines are taken to have
// happened when the state was entered.
func trackerFrom(cfg *HealthConfig, h *hogwirev1.DestinationHealth, now time.Time) *healthTracker {
	t := newHealthTracker(cfg, now)
	if h == nil {
		return t
	}
	t.state = h.State
	if h.StateTime != nil {
		t.since = h.StateTime.AsTime()
	}
	for range h.QuarantineCount {
		t.quarantines = append(t.quarantines, t.since)
	}
	switch h.State {
	case hogwirev1.HealthState_HEALTH_STATE_DEGRADED:
		t.tokens = cfg.DegradedAt * cfg.BucketSize
	case hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY, hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY:
		t.tokens = 0
		if h.RetryTime != nil {
			t.retry = h.RetryTime.AsTime()
		}
	default:
		t.state = hogwirev1.HealthState_HEALTH_STATE_HEALTHY
	}
	return t
}

func (t *healthTracker) disabled() bool {
	return t.state == hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY ||
		t.state == hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY
}

func (t *healthTracker) refill(now time.Time) {
	if el := now.Sub(t.at); el > 0 {
		t.tokens = min(t.cfg.BucketSize, t.tokens+el.Seconds()*t.cfg.RefillPerSecond)
		t.at = now
	}
}

// charge takes cost from the bucket. Signals arriving while the destination
// is disabled are from invocations already in flight and are ignored.
func (t *healthTracker) charge(now time.Time, cost float64, sig healthSignals) {
	if t.disabled() {
		return
	}
	t.refill(now)
	t.tokens = max(0, t.tokens-cost)
	t.sig.add(sig)
}

// healthTransition is one change of state.
type healthTransition struct {
	from, to    hogwirev1.HealthState
	at, retry   time.Time
	reason      string
	quarantines int
}

// step refills the bucket and moves to the state it implies at now,
// returning the transition, if any.
func (t *healthTracker) step(now time.Time) (healthTransition, bool) {
	from := t.state
	var reason string
	switch t.state {
	case hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY:
		return healthTransition{}, false
	case hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY:
		if now.Before(t.retry) {
			return healthTransition{}, false
		}
		t.refill(now)
		// Probation: it comes back degraded whatever the refill, so that
		// it must prove itself before it counts as healthy again.
		t.tokens = min(max(t.tokens, t.cfg.ResumeAt*t.cfg.BucketSize), t.cfg.DegradedAt*t.cfg.BucketSize)
		t.state = hogwirev1.HealthState_HEALTH_STATE_DEGRADED
		reason = fmt.Sprintf("quarantine of %s ended; on probation until its error budget refills above %.0f%%",
			t.cfg.QuarantineFor, t.cfg.DegradedAt*100)
	default:
		t.refill(now)
		switch {
		case t.tokens <= 0:
			t.quarantines = append(t.quarantines, now)
			kept := t.quarantines[:0]
			for _, q := range t.quarantines {
				if now.Sub(q) < t.cfg.QuarantineWindow {
					kept = append(kept, q)
				}
			}
			t.quarantines = kept
			if len(t.quarantines) >= t.cfg.MaxQuarantines {
				t.state = hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY
				reason = fmt.Sprintf("disabled until edited or re-enabled after %d quarantines within %s: %s",
					len(t.quarantines), t.cfg.QuarantineWindow, t.describe(now))
			} else {
				t.state = hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY
				t.retry = now.Add(t.cfg.QuarantineFor)
				reason = fmt.Sprintf("quarantined for %s: %s", t.cfg.QuarantineFor, t.describe(now))
			}
		case t.tokens <= t.cfg.DegradedAt*t.cfg.BucketSize:
			t.state = hogwirev1.HealthState_HEALTH_STATE_DEGRADED
			reason = "degraded: " + t.describe(now)
		default:
			t.state = hogwirev1.HealthState_HEALTH_STATE_HEALTHY
			reason = fmt.Sprintf("healthy: its error budget refilled above %.0f%%", t.cfg.DegradedAt*100)
		}
	}
	if t.state == from {
		return healthTransition{}, false
	}
	tr := healthTransition{from: from, to: t.state, at: now, reason: reason, quarantines: len(t.quarantines)}
	if t.state == hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY {
		tr.retry = t.retry
	}
	t.since = now
	t.sig, t.sigSince = healthSignals{}, now
	return tr, true
}

// describe says in words what drained the bucket since the last transition.
func (t *healthTracker) describe(now time.Time) string {
	var parts []string
	if t.sig.errors > 0 {
		var causes []string
		for _, c := range []struct {
			n    int64
			what string
		}{{t.sig.fetch5xx, "HTTP 5xx"}, {t.sig.timeouts, "timeouts"}, {t.sig.connErr, "connection errors"}} {
			if c.n > 0 {
				causes = append(causes, fmt.Sprintf("%d %s", c.n, c.what))
			}
		}
		s := fmt.Sprintf("%d errors", t.sig.errors)
		if len(causes) > 0 {
			s += " (fetch attempts: " + strings.Join(causes, ", ") + ")"
		}
		parts = append(parts, s)
	}
	if t.sig.slow > 0 {
		parts = append(parts, fmt.Sprintf("%d invocations slower than %s", t.sig.slow, t.cfg.SlowThreshold))
	}
	if t.sig.cpu > 0 {
		parts = append(parts, fmt.Sprintf("%s of VM time beyond %s per invocation", t.sig.cpu.Round(time.Millisecond), t.cfg.CPUAllowance))
	}
	if len(parts) == 0 {
		parts = append(parts, "errors and slowness")
	}
	return strings.Join(parts, " and ") + " in " + now.Sub(t.sigSince).Round(time.Second).String()
}

// trackedDestination is a tracker with what the manager last saw in etcd.
type trackedDestination struct {
	*healthTracker
	project, id string
	// healthRev is the health key's mod revision (0: absent) and destRev
	// the destination's: a write succeeds only if neither changed, so a
	// user's edit or re-enable always wins over the manager.
	healthRev, destRev int64
}

// healthManager decides destinations' health on the leader. It keeps its
// buckets in memory and reads signals from now on: after a change of
// leader the new leader resumes each destination from its stored state
// (healthy ones with a full bucket) and sees only new signals.
type healthManager struct {
	s      *Server
	cfg    HealthConfig
	tracer trace.Tracer
	dests  map[string]*trackedDestination // by "project/id"
}

// HealthJob runs the health manager; it is a LeaderJob.
func (s *Server) HealthJob(ctx context.Context) {
	cfg := s.cfg.Health.withDefaults()
	if cfg.Off {
		return
	}
	if s.telemetry == nil {
		s.log.Warn("health manager off: this control plane has no telemetry storage (no NATS configured)")
		return
	}
	m := &healthManager{s: s, cfg: cfg, tracer: cfg.TracerProvider.Tracer("github.com/hogwire/hogwire/controlplane")}
	for ctx.Err() == nil {
		if err := m.run(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("health manager", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (m *healthManager) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys := m.s.store.Keys
	resp, err := m.s.store.Etcd.Get(ctx, keys.AllHealth(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("reading health: %w", err)
	}
	now := m.s.now()
	m.dests = map[string]*trackedDestination{}
	for _, kv := range resp.Kvs {
		rel := strings.TrimPrefix(string(kv.Key), keys.AllHealth())
		project, id, ok := strings.Cut(rel, "/")
		if !ok {
			continue
		}
		if _, err := m.track(ctx, project, id, now); err != nil {
			return err
		}
	}
	watch := m.s.store.Etcd.Watch(clientv3.WithRequireLeader(ctx), keys.AllHealth(), clientv3.WithPrefix(),
		clientv3.WithRev(resp.Header.Revision+1))

	msgs := make(chan *hogwirev1.DestinationMetrics, 1024)
	cons, err := m.s.telemetry.js.OrderedConsumer(ctx, metricsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{metricsSubject + ".>"}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("metrics consumer: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		dm := &hogwirev1.DestinationMetrics{}
		if proto.Unmarshal(msg.Data(), dm) != nil {
			return
		}
		select {
		case msgs <- dm:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return fmt.Errorf("metrics consumer: %w", err)
	}
	defer cc.Stop()

	tick := time.NewTicker(m.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case wr, ok := <-watch:
			if !ok {
				return errors.New("health watch ended")
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("health watch: %w", err)
			}
			for _, ev := range wr.Events {
				if err := m.observe(ctx, ev); err != nil {
					return err
				}
			}
		case dm := <-msgs:
			if err := m.signal(ctx, dm); err != nil {
				return err
			}
		case <-tick.C:
			if err := m.tick(ctx); err != nil {
				return err
			}
		}
	}
}

// track (re)reads a destination and its health and tracks it from there;
// it returns nil when the destination does not exist.
func (m *healthManager) track(ctx context.Context, project, id string, now time.Time) (*trackedDestination, error) {
	keys := m.s.store.Keys
	resp, err := m.s.store.Etcd.Txn(ctx).Then(clientv3.OpGet(keys.Destination(project, id)), clientv3.OpGet(keys.Health(project, id))).Commit()
	if err != nil {
		return nil, fmt.Errorf("reading destination %s/%s: %w", project, id, err)
	}
	rel := project + "/" + id
	dest, health := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs
	if len(dest) == 0 {
		delete(m.dests, rel)
		return nil, nil
	}
	td := &trackedDestination{project: project, id: id, destRev: dest[0].ModRevision}
	var h *hogwirev1.DestinationHealth
	if len(health) > 0 {
		td.healthRev = health[0].ModRevision
		h = &hogwirev1.DestinationHealth{}
		if err := proto.Unmarshal(health[0].Value, h); err != nil {
			h = nil
		}
	}
	td.healthTracker = trackerFrom(&m.cfg, h, now)
	m.dests[rel] = td
	return td, nil
}

// observe follows writes to health keys that are not the manager's own: a
// deleted key is a user's edit or re-enable, which resets the bucket.
func (m *healthManager) observe(ctx context.Context, ev *clientv3.Event) error {
	rel := strings.TrimPrefix(string(ev.Kv.Key), m.s.store.Keys.AllHealth())
	td := m.dests[rel]
	if td != nil && ev.Type == clientv3.EventTypePut && ev.Kv.ModRevision == td.healthRev {
		return nil
	}
	project, id, ok := strings.Cut(rel, "/")
	if !ok {
		return nil
	}
	if ev.Type == clientv3.EventTypeDelete && td == nil {
		return nil
	}
	_, err := m.track(ctx, project, id, m.s.now())
	return err
}

// signal charges a destination for one node's report.
func (m *healthManager) signal(ctx context.Context, dm *hogwirev1.DestinationMetrics) error {
	sig, cost := signalsOf(&m.cfg, dm)
	if cost <= 0 {
		return nil
	}
	project, id, err := resourcename.ParseDestination(dm.Destination)
	if err != nil {
		return nil
	}
	now := m.s.now()
	td := m.dests[project+"/"+id]
	if td == nil {
		if td, err = m.track(ctx, project, id, now); err != nil || td == nil {
			return err
		}
	}
	td.charge(now, cost, sig)
	return m.step(ctx, td, now)
}

// tick moves destinations along with time (refills, ends of quarantines)
// and forgets those that are healthy with a full bucket.
func (m *healthManager) tick(ctx context.Context) error {
	now := m.s.now()
	for rel, td := range m.dests {
		if err := m.step(ctx, td, now); err != nil {
			return err
		}
		if m.dests[rel] == td && td.state == hogwirev1.HealthState_HEALTH_STATE_HEALTHY && td.tokens >= m.cfg.BucketSize {
			delete(m.dests, rel)
		}
	}
	return nil
}

// step applies the tracker's transition, if any.
func (m *healthManager) step(ctx context.Context, td *trackedDestination, now time.Time) error {
	tr, ok := td.step(now)
	if !ok {
		return nil
	}
	wrote, err := m.write(ctx, td, tr)
	if err != nil || !wrote {
		return err
	}
	m.announce(ctx, td, tr)
	return nil
}

// write stores a transition unless the destination or its health changed
// since the manager last read them; then it re-reads them instead.
func (m *healthManager) write(ctx context.Context, td *trackedDestination, tr healthTransition) (bool, error) {
	h := &hogwirev1.DestinationHealth{State: tr.to, StateTime: timestamppb.New(tr.at), Reason: tr.reason,
		QuarantineCount: int32(tr.quarantines)}
	if !tr.retry.IsZero() {
		h.RetryTime = timestamppb.New(tr.retry)
	}
	val, err := proto.Marshal(h)
	if err != nil {
		return false, err
	}
	hk, dk := m.s.store.Keys.Health(td.project, td.id), m.s.store.Keys.Destination(td.project, td.id)
	resp, err := m.s.store.Etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(hk), "=", td.healthRev), clientv3.Compare(clientv3.ModRevision(dk), "=", td.destRev)).
		Then(clientv3.OpPut(hk, string(val))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("writing health of %s/%s: %w", td.project, td.id, err)
	}
	if !resp.Succeeded {
		_, err := m.track(ctx, td.project, td.id, m.s.now())
		return false, err
	}
	td.healthRev = resp.Header.Revision
	return true, nil
}

// announce tells about a stored transition: the server log, the
// destination's log, a span event and, for a quarantine or disable, the
// notification destination.
func (m *healthManager) announce(ctx context.Context, td *trackedDestination, tr healthTransition) {
	name := resourcename.Destination(td.project, td.id)
	from, to := healthStateWord(tr.from), healthStateWord(tr.to)
	m.s.log.Info("destination health changed", "destination", name, "from", from, "to", to, "reason", tr.reason)

	level := hogwirev1.LogLevel_LOG_LEVEL_INFO
	switch tr.to {
	case hogwirev1.HealthState_HEALTH_STATE_DEGRADED:
		level = hogwirev1.LogLevel_LOG_LEVEL_WARN
	case hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY, hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY:
		level = hogwirev1.LogLevel_LOG_LEVEL_ERROR
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.s.telemetry.store(sctx, &hogwirev1.ReportRequest{NodeId: m.s.replicaID, Logs: []*hogwirev1.LogEntry{{
		Time: timestamppb.New(tr.at), Level: level, Message: tr.reason, Destination: name, NodeId: m.s.replicaID,
	}}}); err != nil {
		m.s.log.Warn("logging a health transition on its destination", "destination", name, "err", err)
	}

	_, span := m.tracer.Start(sctx, "destination health transition", trace.WithAttributes(attribute.String("hogwire.destination", name)))
	span.AddEvent("hogwire.destination.health_changed", trace.WithTimestamp(tr.at), trace.WithAttributes(
		attribute.String("hogwire.destination", name),
		attribute.String("hogwire.health.previous_state", from),
		attribute.String("hogwire.health.state", to),
		attribute.String("hogwire.health.reason", tr.reason),
		attribute.Int("hogwire.health.quarantine_count", tr.quarantines),
	))
	span.End()

	if err := m.notify(sctx, td, tr); err != nil {
		m.s.log.Warn("notifying of a health transition", "destination", name, "err", err)
	}
}

// notify publishes a $destination_state_changed event into the event log
// of the destination's project, where the destinations whose filters name
// that event pick it up (a Slack destination telling the team, say); the
// data plane gives it to no destination that matches every event.
func (m *healthManager) notify(ctx context.Context, td *trackedDestination, tr healthTransition) error {
	resp, err := m.s.store.Etcd.Get(ctx, m.s.store.Keys.Destination(td.project, td.id))
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	d := &hogwirev1.Destination{}
	if err := proto.Unmarshal(resp.Kvs[0].Value, d); err != nil {
		return err
	}
	project := td.project
	name := resourcename.Destination(td.project, td.id)
	retry := ""
	if !tr.retry.IsZero() {
		retry = tr.retry.UTC().Format(time.RFC3339)
	}
	props, err := structpb.NewStruct(map[string]any{
		"destination": name, "destination_name": d.DisplayName,
		"previous_state": healthStateWord(tr.from), "state": healthStateWord(tr.to),
		"reason": tr.reason, "retry_time": retry,
	})
	if err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	ev := &hogwirev1.Event{Uuid: id.String(), Event: executor.HealthEvent, DistinctId: name,
		Properties: props, Timestamp: timestamppb.New(tr.at), Project: project}
	b, err := proto.Marshal(ev)
	if err != nil {
		return err
	}
	if _, err := m.s.telemetry.js.Publish(ctx, m.cfg.EventsSubject+"."+project, b, jetstream.WithMsgID(ev.Uuid)); err != nil {
		return fmt.Errorf("publishing $destination_state_changed: %w", err)
	}
	return nil
}

// healthStateWord is the state as PostHog-style words ("disabled_temporarily").
func healthStateWord(s hogwirev1.HealthState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "HEALTH_STATE_"))
}
