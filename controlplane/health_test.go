package controlplane

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
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
