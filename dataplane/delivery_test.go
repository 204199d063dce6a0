package dataplane_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
	"github.com/hogwire/hogwire/rpcclient"
)

// publish sends events over gRPC ingest and fails the test unless all are
// stored.
func (st *stack) publish(t *testing.T, token string, events ...*hogwirev1.Event) {
	t.Helper()
	cc, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := hogwirev1.NewEventServiceClient(cc).Publish(context.Background(), &hogwirev1.PublishRequest{Token: token, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if int(resp.Accepted) != len(events) {
		t.Fatalf("accepted %d of %d: %v", resp.Accepted, len(events), resp.Rejected)
	}
}

func ev(name, user string) *hogwirev1.Event {
	return &hogwirev1.Event{Event: name, DistinctId: user}
}

// waitStat waits for a destination's counter to reach want. The deadline is
// generous because CI runs every package's tests at once under -race; on
// failure it prints every counter, to tell a slow run from a wrong one.
func waitStat(t *testing.T, st *stack, dest, metric string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for st.Node.Stat(dest, metric) < want {
		if time.Now().After(deadline) {
			var all []string
			for _, m := range []string{"succeeded", "failed", "filtered", "filtering_failed", "inputs_failed", "disabled",
				"disabled_temporarily", "fetch_attempts", "fetch_failed_4xx", "fetch_failed_5xx", "fetch_timeouts", "fetch_errors", "health_errors"} {
				all = append(all, fmt.Sprintf("%s=%v", m, st.Node.Stat(dest, m)))
			}
			t.Fatalf("%s %s = %v, want %v; counters: %s", dest, metric, st.Node.Stat(dest, metric), want, strings.Join(all, " "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRetriesThenSuccess(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	var calls atomic.Int32
	s := newSink(t, func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	d := st.webhook(t, "shop", s.URL, nil)
	st.waitConfig(t, 1)
	st.publish(t, p.CaptureToken, ev("signed_up", "u1"))
	waitStat(t, st, d.Name, "succeeded", 1)
	if n := calls.Load(); n != 3 {
		t.Errorf("sink got %d attempts, want 3 (503, 503, 200)", n)
	}
	if a := st.Node.Stat(d.Name, "fetch_attempts"); a != 3 {
		t.Errorf("fetch_attempts = %v, want 3", a)
	}
	if f := st.Node.Stat(d.Name, "fetch_failed_5xx"); f != 2 {
		t.Errorf("fetch_failed_5xx = %v, want 2", f)
	}
	if f := st.Node.Stat(d.Name, "failed"); f != 0 {
		t.Errorf("failed = %v, want 0", f)
	}
}

func TestClientErrorIsNotRetried(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	var calls atomic.Int32
	s := newSink(t, func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	})
	d := st.webhook(t, "shop", s.URL, nil)
	st.waitConfig(t, 1)
	st.publish(t, p.CaptureToken, ev("signed_up", "u1"))
	waitStat(t, st, d.Name, "failed", 1) // the webhook template throws on 4xx
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("sink got %d attempts for a 400, want 1", n)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	var mu sync.Mutex
	var times []time.Time
	s := newSink(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		first := len(times) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	d := st.webhook(t, "shop", s.URL, nil)
	st.waitConfig(t, 1)
	st.publish(t, p.CaptureToken, ev("signed_up", "u1"))
	waitStat(t, st, d.Name, "succeeded", 1)
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("%d attempts, want 2", len(times))
	}
	// Retry-After: 1 asks for at least a second; the backoff alone would
	// retry within 250ms.
	if gap := times[1].Sub(times[0]); gap < 900*time.Millisecond {
		t.Errorf("retried after %v, want about 1s as Retry-After asked", gap)
	}
}

// A destination whose sink hangs does not hold up another destination:
// while the hanging sink keeps every request it got open, the other
// destination delivers event after event. (Counted, not timed: each
// delivery has to happen before any hanging request ends, which only its
// fetch timeout of a minute would end.)
func TestHangingSinkDoesNotSlowOthers(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	release := make(chan struct{})
	defer close(release)
	var hangCalls, hangEnded atomic.Int32
	hang := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		hangCalls.Add(1)
		defer hangEnded.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	fast := newSink(t, nil)
	st.webhook(t, "shop", fast.URL, &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "e"}}})
	// Four requests at once fill the hanging destination's lane: the
	// rest of its events wait in it, and must not wait in the other's.
	st.limitedWebhook(t, "shop", hang.URL, &hogwirev1.ExecutionLimits{MaxConcurrency: 4, FetchTimeout: durationpb.New(time.Minute)})
	st.waitConfig(t, 2)

	const n = 20
	delivered := 0
	for i := range n {
		st.publish(t, p.CaptureToken, ev("e", fmt.Sprint("u", i)))
		select {
		case <-fast.got:
		case <-time.After(30 * time.Second):
			t.Fatalf("the fast sink got %d of %d events", delivered, i+1)
		}
		if hangEnded.Load() > 0 {
			t.Fatalf("a hanging request ended after %d deliveries", delivered)
		}
		delivered++
	}
	if hangCalls.Load() == 0 {
		t.Fatal("the hanging destination was never called: the test proves nothing")
	}
	t.Logf("%d events delivered while the hanging sink held %d requests open", delivered, hangCalls.Load())
}

// Two nodes share the event log; one is killed mid-run. Every event is
// still delivered at least once.
func TestNodeKilledMidRun(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	var mu sync.Mutex
	seen := map[string]int{}
	s := newSink(t, func(_ http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond) // keep events in flight on both nodes
	})
	d := st.webhook(t, "shop", s.URL, nil)
	st.waitConfig(t, 1)

	node2 := st.startNode(t, 0, nil)

	const total = 400
	for i := 0; i < total; i += 50 {
		var batch []*hogwirev1.Event
		for j := i; j < i+50; j++ {
			batch = append(batch, ev("e", fmt.Sprint("u", j)))
		}
		st.publish(t, p.CaptureToken, batch...)
	}
	// Kill node 2 once it has delivered some, without a goodbye.
	waitFor(t, func() bool { return node2.Stat(d.Name, "succeeded") >= 20 })
	node2.kill()

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		s.mu.Lock()
		for k := range seen {
			delete(seen, k)
		}
		for _, b := range s.bodies {
			u, _ := b["user"].(string)
			seen[u]++
		}
		n := len(seen)
		s.mu.Unlock()
		mu.Unlock()
		if n == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered after a node died", n, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("all %d events delivered; %d duplicates (events node-2 delivered but had not acknowledged)", total, dups)
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	// As long as waitStat's: a machine loaded by other tests can slow a
	// stack several times over; only a failing test waits this long.
	deadline := time.Now().Add(60 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A node that loses the control plane keeps its last configuration and
// keeps delivering.
func TestNodeKeepsConfigWithoutControlPlane(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	s := newSink(t, nil)
	d := st.webhook(t, "shop", s.URL, nil)
	st.waitConfig(t, 1)

	node2 := st.startNode(t, 5*time.Second, func(c *dataplane.Config) { c.ConsumeBatch = 5 })
	node2.cp.Close() // the control plane is gone for node 2
	rev := node2.Syncer().Current().Revision
	for i := 0; node2.Stat(d.Name, "succeeded") < 5; i++ {
		if i > 2000 {
			t.Fatal("node 2 stopped delivering without the control plane")
		}
		st.publish(t, p.CaptureToken, ev("e", fmt.Sprint("u", i)))
	}
	if cur := node2.Syncer().Current(); cur.Revision != rev || len(cur.Destinations) != 1 {
		t.Errorf("node 2's configuration changed without a control plane: %+v", cur)
	}
}

// Masking lets one event per hash through within the TTL, whichever node
// runs it, and counts the others as masked.
func TestMasking(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	s := newSink(t, nil)
	d := st.fromTemplate(t, "shop", "webhook", s.URL, map[string]any{"user": "{event.distinct_id}"}, &hogwirev1.Destination{
		DisplayName: "once per user",
		Masking:     &hogwirev1.Masking{Hash: "event.distinct_id", Ttl: durationpb.New(time.Minute), Threshold: 2},
	})
	st.waitConfig(t, 1)
	for range 4 {
		st.publish(t, p.CaptureToken, ev("e", "ada"))
	}
	st.publish(t, p.CaptureToken, ev("e", "grace"))
	waitStat(t, st, d.Name, "succeeded", 3)
	waitStat(t, st, d.Name, "masked", 2)
	time.Sleep(200 * time.Millisecond)
	if n := s.count(); n != 3 {
		t.Errorf("sink got %d requests, want 3 (2 for ada, the threshold, and 1 for grace)", n)
	}
}

// An event captured with postHogCapture is stored in the project's event
// log and runs through the destinations that match it, counted with an
// execution count that stops capture loops.
func TestPostHogCaptureIsIngested(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	s := newSink(t, nil)
	resp, err := hogwirev1.NewDestinationServiceClient(st.admin).CreateDestination(context.Background(), &hogwirev1.CreateDestinationRequest{
		Parent: "projects/shop",
		Destination: &hogwirev1.Destination{
			DisplayName: "deriver", Enabled: true,
			Hog:     `postHogCapture({'event': 'derived', 'distinct_id': event.distinct_id, 'properties': {'from': event.event}})`,
			Filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "signed_up"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	deriver := resp.Destination
	st.fromTemplate(t, "shop", "webhook", s.URL, map[string]any{
		"event": "{event.event}", "user": "{event.distinct_id}", "from": "{event.properties.from}",
		"count": "{event.properties.$hog_function_execution_count}",
	}, &hogwirev1.Destination{
		DisplayName: "sink",
		Filters:     &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "derived"}}},
	})
	st.waitConfig(t, 2)
	st.publish(t, p.CaptureToken, ev("signed_up", "u1"))
	select {
	case <-s.got:
	case <-time.After(60 * time.Second):
		t.Fatal("the captured event never reached the sink")
	}
	s.mu.Lock()
	got := s.bodies[0]
	s.mu.Unlock()
	if got["event"] != "derived" || got["user"] != "u1" || got["from"] != "signed_up" || got["count"] != float64(1) {
		t.Errorf("sink got %v", got)
	}
	waitStat(t, st, deriver.Name, "captured", 1)
}

// A node holds at most MaxInflightEvents events, and one destination at
// most half of them: with a destination that stops answering, the rest
// wait in the log, not in the node's memory, and are delivered exactly
// once when it answers again.
func TestInflightEventsAreBounded(t *testing.T) {
	st, cc := devstacktest.Start(t, func(c *devstack.Config) { c.MaxInflightEvents = 5 })
	s := &stack{Stack: st, admin: cc}
	p := s.project(t, "shop")
	release := make(chan struct{})
	var calls atomic.Int32
	sk := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	d := s.webhook(t, "shop", sk.URL, nil)
	s.waitConfig(t, 1)
	for i := range 20 {
		s.publish(t, p.CaptureToken, ev("e", fmt.Sprint("u", i)))
	}
	waitFor(t, func() bool { return calls.Load() == 2 })
	// The lane would allow 32 at once: only the bound stops the third.
	time.Sleep(500 * time.Millisecond)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d requests in flight at once, want 2", n)
	}
	close(release)
	waitStat(t, s, d.Name, "succeeded", 20)
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n != 20 {
		t.Errorf("sink got %d requests for 20 events", n)
	}
}
