package controlplane

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
	"github.com/hogwire/hogwire/embednats/natstest"
)

const (
	healthy    = hogwirev1.HealthState_HEALTH_STATE_HEALTHY
	degraded   = hogwirev1.HealthState_HEALTH_STATE_DEGRADED
	quarantine = hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY
	disabled   = hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY
)

func testHealthConfig() *HealthConfig {
	c := HealthConfig{BucketSize: 1000, ErrorCost: 100, RefillPerSecond: 1, QuarantineFor: 2 * time.Second,
		MaxQuarantines: 3, QuarantineWindow: time.Minute, SlowThreshold: 250 * time.Millisecond}.withDefaults()
	return &c
}

// errs charges n health errors at now.
func errs(tr *healthTracker, now time.Time, n int64) {
	tr.charge(now, float64(n)*tr.cfg.ErrorCost, healthSignals{errors: n, fetch5xx: 4 * n})
}

func mustStep(t *testing.T, tr *healthTracker, now time.Time, want hogwirev1.HealthState) healthTransition {
	t.Helper()
	got, ok := tr.step(now)
	if !ok || got.to != want {
		t.Fatalf("at %s: transition %v (%v), want to %v (tokens %.0f)", now.Format(time.StampMilli), got.to, ok, want, tr.tokens)
	}
	return got
}

func noStep(t *testing.T, tr *healthTracker, now time.Time) {
	t.Helper()
	if got, ok := tr.step(now); ok {
		t.Fatalf("at %s: unexpected transition %v → %v (%s)", now.Format(time.StampMilli), got.from, got.to, got.reason)
	}
}

// The full cycle: errors degrade, an empty bucket quarantines, the end of
// the quarantine brings probation as degraded, the refill makes it healthy.
func TestHealthTrackerCycle(t *testing.T) {
	cfg := testHealthConfig()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tr := newHealthTracker(cfg, t0)
	noStep(t, tr, t0)

	errs(tr, t0, 1) // 900 left: above 80%
	noStep(t, tr, t0)
	errs(tr, t0, 1) // 800: at the threshold
	got := mustStep(t, tr, t0, degraded)
	if got.from != healthy || !strings.Contains(got.reason, "2 errors") || !strings.Contains(got.reason, "8 HTTP 5xx") {
		t.Errorf("transition %+v", got)
	}

	at := t0.Add(10 * time.Second) // refilled 10 → 810: healthy again
	mustStep(t, tr, at, healthy)

	errs(tr, at, 12)
	got = mustStep(t, tr, at, quarantine)
	if got.from != healthy || got.retry != at.Add(2*time.Second) || got.quarantines != 1 ||
		!strings.HasPrefix(got.reason, "quarantined for 2s: 12 errors") {
		t.Errorf("transition %+v", got)
	}
	errs(tr, at, 50) // in flight when it was quarantined: ignored
	noStep(t, tr, at.Add(1999*time.Millisecond))

	end := at.Add(2 * time.Second)
	got = mustStep(t, tr, end, degraded)
	if got.from != quarantine || tr.tokens != 0.6*1000 || !strings.Contains(got.reason, "probation") {
		t.Errorf("after the quarantine: %+v with %.0f tokens, want degraded at 600", got, tr.tokens)
	}
	noStep(t, tr, end.Add(199*time.Second))
	mustStep(t, tr, end.Add(201*time.Second), healthy)
}

// The MaxQuarantines-th quarantine within the window disables the
// destination for good; older quarantines are forgotten.
func TestHealthTrackerDisablesAfterRepeatedQuarantines(t *testing.T) {
	cfg := testHealthConfig()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tr := newHealthTracker(cfg, now)
	quarantineAt := func(want hogwirev1.HealthState, n int) {
		t.Helper()
		errs(tr, now, 20)
		if got := mustStep(t, tr, now, want); got.quarantines != n {
			t.Fatalf("quarantine count %d, want %d", got.quarantines, n)
		}
		now = now.Add(cfg.QuarantineFor)
		if want == quarantine {
			mustStep(t, tr, now, degraded)
		}
	}
	quarantineAt(quarantine, 1)
	now = now.Add(time.Minute) // the first falls out of the window
	quarantineAt(quarantine, 1)
	quarantineAt(quarantine, 2)
	errs(tr, now, 20)
	got := mustStep(t, tr, now, disabled)
	if got.quarantines != 3 || !got.retry.IsZero() || !strings.Contains(got.reason, "after 3 quarantines within 1m0s") {
		t.Errorf("transition %+v", got)
	}
	noStep(t, tr, now.Add(24*time.Hour))
}

// Only health errors and slowness cost: HTTP 4xx failures are free, and a
// slow invocation costs more the slower it is, at most an error.
func TestHealthSignalCost(t *testing.T) {
	cfg := testHealthConfig() // slow from 250ms
	bounds := []float64{100, 250, 500, 1000}
	m := &hogwirev1.DestinationMetrics{
		Counters: map[string]int64{"failed": 7, "failed_client_error": 5, "fetch_failed_4xx": 20, "health_errors": 2, "fetch_failed_5xx": 8},
		// 3 under 100ms, 4 in (100,250], 2 in (250,500], 1 in (500,1000], 1 above.
		Duration: &hogwirev1.Histogram{BoundsMs: bounds, Counts: []uint64{3, 4, 2, 1, 1}},
	}
	sig, cost := signalsOf(cfg, m)
	// 2 errors × 100; 2 × 100·250/500 = 100; 1 × 100 (capped) ×2.
	if want := 200.0 + 100 + 100 + 100; cost != want {
		t.Errorf("cost %v, want %v", cost, want)
	}
	if sig.errors != 2 || sig.slow != 4 || sig.fetch5xx != 8 {
		t.Errorf("signals %+v", sig)
	}
	clientErrors := &hogwirev1.DestinationMetrics{Counters: map[string]int64{"failed": 50, "failed_client_error": 50, "fetch_failed_4xx": 50},
		Duration: &hogwirev1.Histogram{BoundsMs: bounds, Counts: []uint64{50, 0, 0, 0, 0}}}
	if _, cost := signalsOf(cfg, clientErrors); cost != 0 {
		t.Errorf("HTTP 4xx cost %v, want 0", cost)
	}
}

// VM time costs only beyond the allowance per invocation: a busy healthy
// destination pays nothing, one that loops until its time limit pays for
// every second.
func TestHealthCPUCost(t *testing.T) {
	cfg := HealthConfig{}.withDefaults() // 100ms allowance, 500 per second beyond
	busy := &hogwirev1.DestinationMetrics{Counters: map[string]int64{"succeeded": 20000, "vm_time_us": 20000 * 50}}
	if _, cost := signalsOf(&cfg, busy); cost != 0 {
		t.Errorf("a busy healthy destination costs %v", cost)
	}
	// Two invocations that each ran 5 s of VM time and timed out.
	loop := &hogwirev1.DestinationMetrics{Counters: map[string]int64{"failed": 2, "health_errors": 2, "vm_time_us": 10_000_000}}
	sig, cost := signalsOf(&cfg, loop)
	if want := 2*cfg.ErrorCost + 9.8*cfg.CPUCost; cost != want || sig.cpu != 9800*time.Millisecond {
		t.Errorf("cost %v (cpu %v), want %v", cost, sig.cpu, want)
	}
	tr := newHealthTracker(&cfg, time.Unix(0, 0))
	tr.charge(time.Unix(0, 0), cost*2, sig)
	if got, ok := tr.step(time.Unix(0, 0)); !ok || got.to != hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY ||
		!strings.Contains(got.reason, "of VM time beyond 100ms per invocation") {
		t.Errorf("after 4 runaway invocations: %+v", got)
	}
}

// A new leader resumes each destination from its stored state.
func TestHealthTrackerResumesStoredState(t *testing.T) {
	cfg := testHealthConfig()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tr := trackerFrom(cfg, &hogwirev1.DestinationHealth{State: quarantine, StateTime: timestamppb.New(now.Add(-time.Second)),
		RetryTime: timestamppb.New(now.Add(time.Second)), QuarantineCount: 2}, now)
	noStep(t, tr, now)
	mustStep(t, tr, now.Add(time.Second), degraded)
	errs(tr, now.Add(time.Second), 10)
	if got := mustStep(t, tr, now.Add(time.Second), disabled); got.quarantines != 3 {
		t.Errorf("quarantines %d, want the 2 stored ones and this", got.quarantines)
	}

	tr = trackerFrom(cfg, &hogwirev1.DestinationHealth{State: degraded}, now)
	if tr.state != degraded || tr.tokens != 800 {
		t.Errorf("degraded resumes at %v with %.0f tokens", tr.state, tr.tokens)
	}
	mustStep(t, tr, now.Add(time.Second), healthy)
}

type plainSealer struct{}

func (plainSealer) Seal(p, _ []byte) (string, error)        { return string(p), nil }
func (plainSealer) Open(v string, _ []byte) ([]byte, error) { return []byte(v), nil }

// healthHarness is a control plane on real etcd and NATS with the health
// manager's windows shortened, and no data plane: the test reports
// metrics as a node would.
type healthHarness struct {
	s      *Server
	spans  *tracetest.SpanRecorder
	events jetstream.Stream
}

func newHealthHarness(t *testing.T) *healthHarness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	etcd := etcdtest.Client(t)
	nc := natstest.Connect(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	s, err := NewContext(ctx, Config{
		Etcd: etcd, Logger: quiet, Sealer: plainSealer{}, CompileFilters: func(*hogwirev1.Filters) ([]byte, error) { return nil, nil },
		Telemetry: TelemetryConfig{Conn: nc, Memory: true},
		Health: HealthConfig{BucketSize: 1000, ErrorCost: 100, RefillPerSecond: 1, QuarantineFor: 500 * time.Millisecond,
			Tick: 20 * time.Millisecond, TracerProvider: tp},
	})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	events, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"hogwire.events.>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	return &healthHarness{s: s, spans: spans, events: events}
}

func (h *healthHarness) putDestination(t *testing.T, id string, d *hogwirev1.Destination) {
	t.Helper()
	b, _ := proto.Marshal(d)
	if _, err := h.s.store.Etcd.Put(context.Background(), h.s.store.Keys.Destination("p", id), string(b)); err != nil {
		t.Fatal(err)
	}
}

// start runs the manager, as a new leader would, until the test ends or
// the returned stop is called; it returns once the manager follows metrics.
func (h *healthHarness) start(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.s.HealthJob(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := h.s.telemetry.js.Stream(ctx, metricsStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Consumers > 0 {
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatal("the health manager never started consuming metrics")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *healthHarness) report(t *testing.T, dest string, counters map[string]int64) {
	t.Helper()
	if err := h.s.telemetry.store(context.Background(), &hogwirev1.ReportRequest{NodeId: "n1", Metrics: []*hogwirev1.DestinationMetrics{{
		Destination: dest, Minute: timestamppb.Now(), Counters: counters,
	}}}); err != nil {
		t.Fatal(err)
	}
}

// stored returns the stored health of p/id and its revision (0: none).
func (h *healthHarness) stored(t *testing.T, id string) (*hogwirev1.DestinationHealth, int64) {
	t.Helper()
	resp, err := h.s.store.Etcd.Get(context.Background(), h.s.store.Keys.Health("p", id))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0
	}
	dh := &hogwirev1.DestinationHealth{}
	if err := proto.Unmarshal(resp.Kvs[0].Value, dh); err != nil {
		t.Fatal(err)
	}
	return dh, resp.Kvs[0].ModRevision
}

func (h *healthHarness) waitStored(t *testing.T, id string, state hogwirev1.HealthState) *hogwirev1.DestinationHealth {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		dh, _ := h.stored(t, id)
		if dh.GetState() == state {
			return dh
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, want %v", id, dh.GetState(), state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A quarantine is stored in etcd, logged on the destination, emitted as a
// span event and sent to the notification destination's project as an
// event; a user's reset is never overwritten; a new leader resumes a stored
// quarantine and ends it on time.
func TestHealthManager(t *testing.T) {
	h := newHealthHarness(t)
	h.putDestination(t, "d", &hogwirev1.Destination{DisplayName: "Orders"})
	h.putDestination(t, "n", &hogwirev1.Destination{DisplayName: "Slack"})
	stop := h.start(t)

	const name = "projects/p/destinations/d"
	h.report(t, name, map[string]int64{"failed": 40, "failed_client_error": 40}) // free
	h.report(t, name, map[string]int64{"health_errors": 11, "fetch_failed_5xx": 44})
	dh := h.waitStored(t, "d", quarantine)
	if !strings.HasPrefix(dh.Reason, "quarantined for 500ms: 11 errors (fetch attempts: 44 HTTP 5xx)") || dh.QuarantineCount != 1 ||
		dh.RetryTime.AsTime().Sub(dh.StateTime.AsTime()) != 500*time.Millisecond {
		t.Errorf("stored %v", dh)
	}

	// The transition is announced after it is stored: the notification
	// event is the announcement's last step, so wait for it first.
	ctx := context.Background()
	var msg *jetstream.RawStreamMsg
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if msg, err = h.events.GetLastMsgForSubject(ctx, "hogwire.events.p"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no notification event: %v", err)
		}
	}
	logs, err := h.s.telemetry.readLogs(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 1 || logs[0].Level != hogwirev1.LogLevel_LOG_LEVEL_ERROR || logs[0].Message != dh.Reason {
		t.Errorf("destination log %v, want one error entry with the reason", logs)
	}

	var found bool
	for _, sp := range h.spans.Ended() {
		for _, e := range sp.Events() {
			for _, a := range e.Attributes {
				if e.Name == "hogwire.destination.health_changed" && a.Key == "hogwire.health.state" && a.Value.AsString() == "disabled_temporarily" {
					found = true
				}
			}
		}
	}
	if !found {
		t.Error("no span event for the quarantine")
	}

	ev := &hogwirev1.Event{}
	if err := proto.Unmarshal(msg.Data, ev); err != nil {
		t.Fatal(err)
	}
	props := ev.Properties.AsMap()
	if ev.Event != "$destination_state_changed" || ev.DistinctId != name || ev.Uuid == "" || props["destination_name"] != "Orders" ||
		props["previous_state"] != "healthy" || props["state"] != "disabled_temporarily" || props["reason"] != dh.Reason || props["retry_time"] == "" {
		t.Errorf("notification %v", ev)
	}

	// The user edits the destination, which deletes its health: the
	// manager must not bring back the quarantine's end as "degraded".
	h.putDestination(t, "d", &hogwirev1.Destination{DisplayName: "Orders, fixed"})
	if _, err := h.s.store.Etcd.Delete(ctx, h.s.store.Keys.Health("p", "d")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond) // past the quarantine's end: many manager ticks
	if dh, _ := h.stored(t, "d"); dh != nil {
		t.Fatalf("after a user's reset the manager wrote %v", dh)
	}
	// And the bucket was reset: 3 errors only degrade.
	h.report(t, name, map[string]int64{"health_errors": 3})
	h.waitStored(t, "d", degraded)

	// A new leader resumes a stored quarantine and ends it on time.
	stop()
	now := time.Now()
	b, _ := proto.Marshal(&hogwirev1.DestinationHealth{State: quarantine, StateTime: timestamppb.New(now),
		RetryTime: timestamppb.New(now.Add(300 * time.Millisecond)), QuarantineCount: 1})
	if _, err := h.s.store.Etcd.Put(ctx, h.s.store.Keys.Health("p", "d"), string(b)); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	dh = h.waitStored(t, "d", degraded)
	if dh.StateTime.AsTime().Before(now.Add(300*time.Millisecond)) || !strings.Contains(dh.Reason, "probation") {
		t.Errorf("resumed quarantine ended as %v", dh)
	}
}

// A manager whose view is stale (another leader or a user wrote since it
// last read) does not overwrite the stored health: it re-reads it instead.
func TestHealthManagerStaleWriteLoses(t *testing.T) {
	h := newHealthHarness(t)
	h.putDestination(t, "d", &hogwirev1.Destination{DisplayName: "Orders"})
	ctx := context.Background()
	m := &healthManager{s: h.s, cfg: h.s.cfg.Health.withDefaults(), dests: map[string]*trackedDestination{}}
	m.tracer = m.cfg.TracerProvider.Tracer("test")
	td, err := m.track(ctx, "p", "d", time.Now())
	if err != nil || td == nil {
		t.Fatalf("track: %v, %v", td, err)
	}
	now := time.Now()
	b, _ := proto.Marshal(&hogwirev1.DestinationHealth{State: disabled, StateTime: timestamppb.New(now), Reason: "by the other leader"})
	if _, err := h.s.store.Etcd.Put(ctx, h.s.store.Keys.Health("p", "d"), string(b)); err != nil {
		t.Fatal(err)
	}
	errs(td.healthTracker, now, 3)
	if err := m.step(ctx, td, now); err != nil {
		t.Fatal(err)
	}
	if dh, _ := h.stored(t, "d"); dh.GetReason() != "by the other leader" {
		t.Fatalf("the stale manager overwrote the health: %v", dh)
	}
	if got := m.dests["p/d"]; got == nil || got.state != disabled {
		t.Fatalf("the manager did not adopt the stored state: %+v", got)
	}
}

// BenchmarkHealthSignal measures what the leader spends on one node's
// report for a destination that keeps failing.
func BenchmarkHealthSignal(b *testing.B) {
	cfg := HealthConfig{}.withDefaults()
	m := &hogwirev1.DestinationMetrics{
		Counters: map[string]int64{"succeeded": 40, "failed": 3, "health_errors": 1, "fetch_failed_5xx": 4},
		Duration: &hogwirev1.Histogram{BoundsMs: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000},
			Counts: []uint64{0, 0, 0, 10, 20, 10, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0}},
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := newHealthTracker(&cfg, now)
	for b.Loop() {
		now = now.Add(time.Millisecond)
		sig, cost := signalsOf(&cfg, m)
		tr.charge(now, cost, sig)
		tr.step(now)
	}
}
