package dataplane_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
	"github.com/hogwire/hogwire/testport"
)

// startHealthStack starts a dev stack whose health manager works on a
// scale of seconds: about 10 errors empty the bucket, a quarantine lasts
// 2s, probation about 2.5s, and the third quarantine within a minute
// disables for good.
func startHealthStack(t *testing.T) *stack {
	t.Helper()
	st, cc := devstacktest.Start(t, func(c *devstack.Config) {
		c.EventLog.AckWait, c.ConsumeBatch = 5*time.Second, 50
		c.Health = controlplane.HealthConfig{
			BucketSize: 1000, ErrorCost: 100, RefillPerSecond: 20, ResumeAt: 0.75,
			QuarantineFor: 2 * time.Second, MaxQuarantines: 3, QuarantineWindow: time.Minute,
			SlowThreshold: 500 * time.Millisecond, Tick: 50 * time.Millisecond,
		}
	})
	return &stack{Stack: st, admin: cc}
}

// waitReported waits until the node has finished every one of a
// destination's invocations and the control plane's metrics count as many
// successes and failures as the node.
func (st *stack) waitReported(t *testing.T, dest string, invocations int) {
	t.Helper()
	outcomes := []string{"succeeded", "failed", "disabled_temporarily", "disabled_permanently"}
	waitFor(t, func() bool {
		n := 0.0
		for _, m := range outcomes {
			n += st.Node.Stat(dest, m)
		}
		return n >= float64(invocations)
	})
	metrics := hogwirev1.NewMetricsServiceClient(st.admin)
	waitFor(t, func() bool {
		resp, err := metrics.QueryMetrics(context.Background(), &hogwirev1.QueryMetricsRequest{Parent: dest, Metrics: outcomes[:2]})
		if err != nil {
			return false
		}
		for _, s := range resp.Series {
			total := 0.0
			for _, p := range s.Points {
				total += p.Value
			}
			if total != st.Node.Stat(dest, s.Metric) {
				return false
			}
		}
		return len(resp.Series) == 2
	})
}

// hook creates a webhook destination for one event name, optionally naming
// a notification destination.
func (st *stack) hook(t *testing.T, project, url, event string) *hogwirev1.Destination {
	t.Helper()
	return st.fromTemplate(t, project, "webhook", url, map[string]any{
		"event": "{event.event}", "user": "{event.distinct_id}", "destination": "{event.properties.destination}",
		"state": "{event.properties.state}", "previous": "{event.properties.previous_state}", "reason": "{event.properties.reason}",
	}, &hogwirev1.Destination{
		DisplayName: event + " hook",
		Filters:     &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: event}}},
	})
}

func (st *stack) health(t *testing.T, name string) *hogwirev1.DestinationHealth {
	t.Helper()
	resp, err := hogwirev1.NewDestinationServiceClient(st.admin).GetDestination(context.Background(), &hogwirev1.GetDestinationRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Destination.Health
}

// waitHealth polls GetDestination until the destination is in state.
func (st *stack) waitHealth(t *testing.T, name string, state hogwirev1.HealthState, within time.Duration) *hogwirev1.DestinationHealth {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		h := st.health(t, name)
		if h.GetState() == state {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v (%q), want %v", name, h.GetState(), h.GetReason(), state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orders publishes n "order" events.
func (st *stack) orders(t *testing.T, token string, n int, tag string) {
	t.Helper()
	events := make([]*hogwirev1.Event, n)
	for i := range events {
		events[i] = ev("order", fmt.Sprintf("%s-%d", tag, i))
	}
	st.publish(t, token, events...)
}

// waitBody waits until the sink has received a body for which ok holds.
func waitBody(t *testing.T, s *sink, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.mu.Lock()
		for _, b := range s.bodies {
			if ok(b) {
				s.mu.Unlock()
				return b
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("the sink never received %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCount waits until the sink has received exactly want requests.
func waitCount(t *testing.T, s *sink, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for s.count() < want {
		if time.Now().After(deadline) {
			t.Fatalf("sink got %d requests, want %d", s.count(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.count(); n != want {
		seen := map[any]int{}
		s.mu.Lock()
		for _, b := range s.bodies {
			seen[b["user"]]++
		}
		s.mu.Unlock()
		for u, k := range seen {
			if k > 1 {
				t.Logf("%v delivered %d times", u, k)
			}
		}
		t.Fatalf("sink got %d requests, want exactly %d", n, want)
	}
}

// A sink answering 500 drives its destination into quarantine (and the
// notification destination hears of it); once the sink recovers the
// destination comes back on probation and then healthy; the third
// quarantine within the window disables it until it is re-enabled. A
// healthy destination on the same node delivers every event throughout.
func TestHealthQuarantineRecoveryAndDisable(t *testing.T) {
	st := startHealthStack(t)
	p := st.project(t, "shop")
	var failing atomic.Bool
	bad := newSink(t, func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	good, notified, everything := newSink(t, nil), newSink(t, nil), newSink(t, nil)
	// Every health change is announced in the project, to the destinations
	// that name the event; one that takes every event does not get it.
	st.hook(t, "shop", notified.URL, "$destination_state_changed")
	d := st.hook(t, "shop", bad.URL, "order")
	st.hook(t, "shop", good.URL, "order")
	st.webhook(t, "shop", everything.URL, nil)
	st.waitConfig(t, 4)
	sent := 0

	quarantineRound := func(round int, want hogwirev1.HealthState) *hogwirev1.DestinationHealth {
		t.Helper()
		failing.Store(true)
		st.orders(t, p.CaptureToken, 20, fmt.Sprintf("round%d", round))
		sent += 20
		h := st.waitHealth(t, d.Name, want, 20*time.Second)
		failing.Store(false)
		if h.GetStateTime() == nil || int(h.GetQuarantineCount()) != round || !strings.Contains(h.GetReason(), "errors") {
			t.Errorf("round %d: health %v", round, h)
		}
		word := strings.ToLower(strings.TrimPrefix(want.String(), "HEALTH_STATE_"))
		waitBody(t, notified, "$destination_state_changed to "+word, func(b map[string]any) bool {
			return b["event"] == "$destination_state_changed" && b["destination"] == d.Name && b["state"] == word &&
				b["user"] == d.Name && b["reason"] == h.GetReason()
		})
		return h
	}

	h := quarantineRound(1, hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY)
	if !strings.HasPrefix(h.GetReason(), "quarantined for 2s: ") || h.GetRetryTime() == nil ||
		h.GetRetryTime().AsTime().Sub(h.GetStateTime().AsTime()) != 2*time.Second {
		t.Errorf("quarantine: %v", h)
	}
	// While quarantined the node keeps the destination's events waiting in
	// the parked stream, once the config stream has brought it the
	// quarantine, and delivers them when the quarantine ends.
	waitFor(t, func() bool {
		return st.Node.Syncer().Current().Destinations[d.Name].GetHealth().GetState() == hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY
	})
	st.orders(t, p.CaptureToken, 5, "skipped")
	sent += 5
	waitStat(t, st, d.Name, "quarantine_waits", 5)

	st.waitHealth(t, d.Name, hogwirev1.HealthState_HEALTH_STATE_DEGRADED, 10*time.Second)
	waitBody(t, notified, "$destination_state_changed to degraded", func(b map[string]any) bool {
		return b["destination"] == d.Name && b["state"] == "degraded" && b["previous"] == "disabled_temporarily"
	})
	for i := range 5 {
		user := fmt.Sprintf("skipped-%d", i)
		waitBody(t, bad, "an event sent while quarantined", func(b map[string]any) bool { return b["user"] == user })
	}
	st.waitHealth(t, d.Name, hogwirev1.HealthState_HEALTH_STATE_HEALTHY, 15*time.Second)

	quarantineRound(2, hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY)
	st.waitHealth(t, d.Name, hogwirev1.HealthState_HEALTH_STATE_DEGRADED, 10*time.Second)
	h = quarantineRound(3, hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY)
	if !strings.Contains(h.GetReason(), "after 3 quarantines within 1m0s") || h.GetRetryTime() != nil {
		t.Errorf("disabled: %v", h)
	}
	// Disabled by the health manager, not by a user: its events wait in
	// its backlog too, to be delivered once a user brings it back.
	waits := st.Node.Stat(d.Name, "quarantine_waits")
	st.orders(t, p.CaptureToken, 5, "disabled")
	sent += 5
	waitStat(t, st, d.Name, "quarantine_waits", waits+5)

	// The healthy destination delivered every event, none twice; so did
	// the one taking every event, which got no health notice.
	waitCount(t, good, sent)
	waitCount(t, everything, sent)
	everything.mu.Lock()
	for _, b := range everything.bodies {
		if b["event"] != "order" {
			t.Errorf("the destination without filters got %v", b)
		}
	}
	everything.mu.Unlock()

	// Re-enabling resets the state, and the manager does not bring the old
	// state back: the destination delivers again and stays healthy. The
	// last failing round's reports must have reached the control plane
	// first, or they would count against the fresh state.
	// (The failing rounds' events wait in the backlog; what ran is
	// reported.)
	st.waitReported(t, d.Name, 0)
	if _, err := hogwirev1.NewDestinationServiceClient(st.admin).EnableDestination(context.Background(),
		&hogwirev1.EnableDestinationRequest{Name: d.Name}); err != nil {
		t.Fatal(err)
	}
	if h := st.health(t, d.Name); h.GetState() != hogwirev1.HealthState_HEALTH_STATE_HEALTHY {
		t.Fatalf("after re-enabling: %v", h)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st.Node.Syncer().Current().Destinations[d.Name].GetHealth().GetState() == hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY {
		if time.Now().After(deadline) {
			t.Fatal("the node never saw the re-enable")
		}
		time.Sleep(10 * time.Millisecond)
	}
	succeeded := st.Node.Stat(d.Name, "succeeded")
	st.orders(t, p.CaptureToken, 5, "reenabled")
	waitStat(t, st, d.Name, "succeeded", succeeded+5)
	waitBody(t, bad, "the events sent after re-enabling", func(b map[string]any) bool { return b["user"] == "reenabled-4" })
	// They come back at the next tick of the backlog (--retry-base, 5s).
	deadline = time.Now().Add(45 * time.Second)
	for i := 0; i < 5; {
		bad.mu.Lock()
		found := slices.ContainsFunc(bad.bodies, func(b map[string]any) bool { return b["user"] == fmt.Sprintf("disabled-%d", i) })
		bad.mu.Unlock()
		if found {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("disabled-%d, kept while the health manager disabled the destination, was not delivered after it was re-enabled", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a few manager ticks
	if h := st.health(t, d.Name); h.GetState() != hogwirev1.HealthState_HEALTH_STATE_HEALTHY {
		t.Fatalf("after re-enabling and delivering: %v", h)
	}
}

// A sink slower than the threshold, or one nobody listens on, gets its
// destination quarantined; a sink answering 400 never does, however many
// invocations fail.
func TestHealthSlowAndDeadQuarantinedClientErrorsNot(t *testing.T) {
	st := startHealthStack(t)
	p := st.project(t, "shop")
	rejecting := newSink(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	slow := newSink(t, func(http.ResponseWriter, *http.Request) { time.Sleep(1200 * time.Millisecond) })
	good := newSink(t, nil)
	deadURL := "http://" + testport.Addr(t) + "/"
	r := st.hook(t, "shop", rejecting.URL, "rejected")
	s := st.hook(t, "shop", slow.URL, "slow")
	dead := st.hook(t, "shop", deadURL, "dead")
	st.hook(t, "shop", good.URL, "order")
	st.waitConfig(t, 4)

	var events []*hogwirev1.Event
	for i := range 30 {
		events = append(events, ev("rejected", fmt.Sprintf("r%d", i)), ev("order", fmt.Sprintf("o%d", i)))
	}
	st.publish(t, p.CaptureToken, events...)
	waitStat(t, st, r.Name, "failed_client_error", 30)
	if n := st.Node.Stat(r.Name, "failed"); n != 30 {
		t.Errorf("failed = %v, want 30: PostHog's count includes 4xx failures", n)
	}
	if n := st.Node.Stat(r.Name, "health_errors"); n != 0 {
		t.Errorf("health_errors = %v, want 0 for HTTP 400", n)
	}

	events = events[:0]
	for i := range 20 {
		events = append(events, ev("slow", fmt.Sprintf("s%d", i)), ev("dead", fmt.Sprintf("d%d", i)), ev("order", fmt.Sprintf("o2-%d", i)))
	}
	st.publish(t, p.CaptureToken, events...)
	h := st.waitHealth(t, s.Name, hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY, 15*time.Second)
	if !strings.Contains(h.GetReason(), "slower than 500ms") {
		t.Errorf("reason %q should name slowness", h.GetReason())
	}
	h = st.waitHealth(t, dead.Name, hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY, 60*time.Second)
	if !strings.Contains(h.GetReason(), "connection errors") {
		t.Errorf("reason %q should name connection errors", h.GetReason())
	}
	// The 400s were reported before the slow invocations, so the manager
	// has seen them by now.
	if h := st.health(t, r.Name); h.GetState() != hogwirev1.HealthState_HEALTH_STATE_HEALTHY {
		t.Errorf("a destination failing with HTTP 400 is %v (%s), want healthy", h.GetState(), h.GetReason())
	}
	waitCount(t, good, 50)
}
