package dataplane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
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
	"github.com/hogwire/hogwire/fetch"
)

// fastRetries shortens the durable retry schedule so the tests stay short.
var fastRetries = dataplane.RetrySchedule{Base: 200 * time.Millisecond, Max: time.Second}

func startRetryStack(t *testing.T) *stack {
	t.Helper()
	st, cc := devstacktest.Start(t, func(c *devstack.Config) { c.Retry = fastRetries })
	return &stack{Stack: st, admin: cc}
}

// deliveries counts, per user, the requests a sink answered with success.
type deliveries struct {
	mu   sync.Mutex
	seen map[string]int
}

// newCountingSink starts a sink that answers with h, which says whether
// it answered with success, and counts those deliveries.
func newCountingSink(t *testing.T, h func(w http.ResponseWriter) bool) (*httptest.Server, *deliveries) {
	d := &deliveries{seen: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ User string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		if !h(w) {
			return
		}
		d.mu.Lock()
		d.seen[body.User]++
		d.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, d
}

// outage is a sink's switch: while down, it answers status and counts the
// requests it refused.
type outage struct {
	down    atomic.Bool
	refused atomic.Int64
}

// newDownSink starts a counting sink that is down (answering status) until
// the test brings it up with o.down.Store(false).
func newDownSink(t *testing.T, status int) (*httptest.Server, *deliveries, *outage) {
	o := &outage{}
	o.down.Store(true)
	s, got := newCountingSink(t, func(w http.ResponseWriter) bool {
		if o.down.Load() {
			o.refused.Add(1)
			w.WriteHeader(status)
			return false
		}
		return true
	})
	return s, got, o
}

func (d *deliveries) users() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.seen)
}

func publishUsers(t *testing.T, st *stack, token string, total int) {
	t.Helper()
	var batch []*hogwirev1.Event
	for i := range total {
		batch = append(batch, ev("e", fmt.Sprint("u", i)))
	}
	st.publish(t, token, batch...)
}

// waitDelivered waits until every one of total users reached the sink.
func waitDelivered(t *testing.T, st *stack, s *deliveries, dest string, total int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(s.users()) < total {
		if time.Now().After(deadline) {
			var all []string
			for _, m := range []string{"parked", "retried", "failed", "succeeded", "paused_waits", "breaker_opened",
				"quarantine_waits", "disabled_permanently", "disabled_temporarily", "backlog_overflowed", "backlog_expired"} {
				all = append(all, fmt.Sprintf("%s=%v", m, st.Node.Stat(dest, m)))
			}
			seen := s.users()
			var missing []string
			for i := range total {
				if seen[fmt.Sprint("u", i)] == 0 {
					missing = append(missing, fmt.Sprint("u", i))
				}
			}
			all = append(all, fmt.Sprintf("missing=%v", missing))
			t.Fatalf("%d of %d events delivered; health %v; %s", len(s.users()), total,
				st.Node.Syncer().Current().Destinations[dest].GetHealth().GetState(), strings.Join(all, " "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A sink that answers 429 with Retry-After for a while, then 200: every
// event is delivered, none fails, and no request reaches the sink while
// a Retry-After it gave is running (but for requests already on their way
// when it was given).
func TestRetryAfterPausesTheDestination(t *testing.T) {
	st := startRetryStack(t)
	p := st.project(t, "shop")
	const retryAfter = 2 * time.Second
	var mu sync.Mutex
	var limited []time.Time // when each 429 was answered
	var arrivals []time.Time
	var start time.Time
	s, got := newCountingSink(t, func(w http.ResponseWriter) bool {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		arrivals = append(arrivals, now)
		if start.IsZero() {
			start = now
		}
		// Rate-limited for the first 3 seconds after the first request.
		if now.Sub(start) < 3*time.Second {
			limited = append(limited, now)
			w.Header().Set("Retry-After", fmt.Sprint(int(retryAfter.Seconds())))
			w.WriteHeader(http.StatusTooManyRequests)
			return false
		}
		return true
	})
	d := st.webhook(t, "shop", s.URL, nil)
	st.waitConfig(t, 1)
	const total = 40
	publishUsers(t, st, p.CaptureToken, total)
	waitDelivered(t, st, got, d.Name, total)

	if f := st.Node.Stat(d.Name, "failed"); f != 0 {
		t.Errorf("failed = %v, want 0", f)
	}
	mu.Lock()
	defer mu.Unlock()
	// Requests in flight when a 429 was answered may arrive just after
	// it; past this slack, none may arrive before its Retry-After ends.
	const slack = 500 * time.Millisecond
	early := 0
	for _, l := range limited {
		for _, a := range arrivals {
			if a.After(l.Add(slack)) && a.Before(l.Add(retryAfter-50*time.Millisecond)) {
				early++
			}
		}
	}
	if early > 0 {
		t.Errorf("%d requests arrived while a Retry-After of %v ran (%d requests, %d answered 429)", early, retryAfter, len(arrivals), len(limited))
		var at []int64
		for _, a := range arrivals {
			at = append(at, a.Sub(start).Milliseconds())
		}
		t.Logf("arrivals (ms after the first): %v", at)
	}
	// Which way events waited depends on timing: an invocation that started
	// before the first 429 came back waits inside its fetch's retries, a
	// later one parks or waits for the pause before it starts.
	t.Logf("%d requests for %d events, %d answered 429; %v waited for the pause before starting, %v parked",
		len(arrivals), total, len(limited), st.Node.Stat(d.Name, "paused_waits"), st.Node.Stat(d.Name, "parked"))
}

// A sink down (503) for a while, then up: every event is delivered, and
// the ones that did not fail again are not sent again.
func TestSinkDownThenUpDeliversEverything(t *testing.T) {
	st := startRetryStack(t)
	p := st.project(t, "shop")
	s, got, sink := newDownSink(t, http.StatusServiceUnavailable)
	d := st.webhook(t, "shop", s.URL, nil)
	st.waitConfig(t, 1)
	const total = 30
	publishUsers(t, st, p.CaptureToken, total)
	// Every event was parked at least once before the sink comes back.
	waitStat(t, st, d.Name, "parked", total)
	sink.down.Store(false)
	waitDelivered(t, st, got, d.Name, total)
	if f := st.Node.Stat(d.Name, "failed"); f != 0 {
		t.Errorf("failed = %v, want 0", f)
	}
	for u, c := range got.users() {
		if c != 1 {
			t.Errorf("%s delivered %d times", u, c)
		}
	}
}

// The fetches of an invocation that succeeded before the one that failed
// are not repeated when it is retried: it resumes at the failing fetch.
func TestRetryResumesAtTheFailingFetch(t *testing.T) {
	st := startRetryStack(t)
	p := st.project(t, "shop")
	var first, second atomic.Int32
	var down atomic.Bool
	down.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("/first", func(w http.ResponseWriter, _ *http.Request) { first.Add(1) })
	mux.HandleFunc("/second", func(w http.ResponseWriter, _ *http.Request) {
		second.Add(1)
		if down.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	s := newSink(t, mux.ServeHTTP)
	d := st.hogDestination(t, "shop", fmt.Sprintf(`fetch('%s/first', {'method': 'POST'})
		let r := fetch('%s/second', {'method': 'POST'})
		if (r.status >= 400) { throw Error(f'second failed: {r.status}') }`, s.URL, s.URL))
	st.waitConfig(t, 1)
	st.publish(t, p.CaptureToken, ev("e", "u1"))
	waitStat(t, st, d.Name, "parked", 2)
	down.Store(false)
	waitStat(t, st, d.Name, "succeeded", 1)
	if first.Load() != 1 {
		t.Errorf("the first fetch ran %d times, want 1", first.Load())
	}
	if st.Node.Stat(d.Name, "retried") < 2 {
		t.Errorf("retried = %v, want at least 2", st.Node.Stat(d.Name, "retried"))
	}
}

// A node that stops while invocations are parked loses none of them:
// they are in JetStream, and another node delivers them.
func TestParkedSurviveANodeStopping(t *testing.T) {
	st := startRetryStack(t)
	p := st.project(t, "shop")
	s, got, sink := newDownSink(t, http.StatusInternalServerError)
	d := st.webhook(t, "shop", s.URL, nil)
	st.waitConfig(t, 1)

	node2 := st.startNode(t, 0, func(c *dataplane.Config) {
		c.FetchPolicy = fetch.Policy{MaxRetries: -1}
		c.Retry = fastRetries
	})

	const total = 60
	publishUsers(t, st, p.CaptureToken, total)
	waitFor(t, func() bool { return node2.Stat(d.Name, "parked") >= 5 })
	// Stopped without a goodbye while it holds parked invocations.
	node2.kill()
	t.Logf("node 2: parked %v succeeded %v paused %v breaker %v", node2.Stat(d.Name, "parked"), node2.Stat(d.Name, "succeeded"),
		node2.Stat(d.Name, "paused_waits"), node2.Stat(d.Name, "breaker_opened"))
	sink.down.Store(false)
	waitDelivered(t, st, got, d.Name, total)
}

// hogDestination creates a destination running the given Hog code.
func (st *stack) hogDestination(t *testing.T, project, hog string) *hogwirev1.Destination {
	t.Helper()
	resp, err := hogwirev1.NewDestinationServiceClient(st.admin).CreateDestination(context.Background(), &hogwirev1.CreateDestinationRequest{
		Parent:      "projects/" + project,
		Destination: &hogwirev1.Destination{DisplayName: "code", Enabled: true, Hog: hog},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Destination
}

// A Retry-After beyond --max-retry-after is clamped to it, and one that
// cannot be read pauses nothing; a paused destination does not hold up
// another.
func TestRetryAfterClampedAndGarbageIgnored(t *testing.T) {
	st, cc := devstacktest.Start(t, func(c *devstack.Config) {
		c.Retry = fastRetries
		c.Retry.MaxRetryAfter = time.Second
	})
	s := &stack{Stack: st, admin: cc}
	p := s.project(t, "shop")
	limited := func(value string) (*httptest.Server, *deliveries, *atomic.Int32) {
		var calls atomic.Int32
		srv, got := newCountingSink(t, func(w http.ResponseWriter) bool {
			if calls.Add(1) == 1 {
				w.Header().Set("Retry-After", value)
				w.WriteHeader(http.StatusTooManyRequests)
				return false
			}
			return true
		})
		return srv, got, &calls
	}
	long, longGot, _ := limited("86400")
	garbage, garbageGot, _ := limited("soon")
	dl := s.webhook(t, "shop", long.URL, nil)
	dg := s.webhook(t, "shop", garbage.URL, nil)
	s.waitConfig(t, 2)
	publishUsers(t, s, p.CaptureToken, 1)
	waitDelivered(t, s, garbageGot, dg.Name, 1)
	waitDelivered(t, s, longGot, dl.Name, 1)
	if w := s.Node.Stat(dg.Name, "paused_waits") + s.Node.Stat(dg.Name, "parked"); w != 0 {
		t.Errorf("the unreadable Retry-After made the event wait %v times; fetch's own retry should deliver it", w)
	}
	if s.Node.Stat(dl.Name, "parked") != 1 {
		t.Errorf("parked = %v, want 1 for the day-long Retry-After, clamped to a second", s.Node.Stat(dl.Name, "parked"))
	}
}

// A destination's own schedule (limits.retry_*) wins over the node's: one
// that gives up after a second fails its event after durable retries.
func TestRetryGivesUpPerDestination(t *testing.T) {
	st := startRetryStack(t)
	p := st.project(t, "shop")
	var calls atomic.Int32
	s, _ := newCountingSink(t, func(w http.ResponseWriter) bool {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
		return false
	})
	d := st.fromTemplate(t, "shop", "webhook", s.URL, map[string]any{"user": "{event.distinct_id}"}, &hogwirev1.Destination{
		DisplayName: "sink",
		Limits: &hogwirev1.ExecutionLimits{RetryBase: durationpb.New(50 * time.Millisecond), RetryMax: durationpb.New(100 * time.Millisecond),
			RetryGiveUp: durationpb.New(2 * time.Second)},
	})
	st.waitConfig(t, 1)
	st.publish(t, p.CaptureToken, ev("e", "u1"))
	waitStat(t, st, d.Name, "failed", 1)
	// fetch's own retries take about as long as the give-up: how many
	// durable retries fit depends on the machine; the node's default
	// (24h) would not have given up at all.
	if st.Node.Stat(d.Name, "parked") < 1 || st.Node.Stat(d.Name, "retried") < 1 {
		t.Errorf("parked %v, retried %v; want durable retries before giving up", st.Node.Stat(d.Name, "parked"), st.Node.Stat(d.Name, "retried"))
	}
	if st.Node.Stat(d.Name, "succeeded") != 0 {
		t.Error("an event that never got through counted as succeeded")
	}
}
