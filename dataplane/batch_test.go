package dataplane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane"
	"github.com/hogwire/hogwire/fetch"
)

// batchSink records the users of each batch it accepts.
type batchSink struct {
	*httptest.Server
	mu      sync.Mutex
	batches [][]string
}

// newBatchSink starts a sink for the webhook-batch template; ok says
// whether to accept a request (it answers 503 otherwise).
func newBatchSink(t *testing.T, ok func() bool) *batchSink {
	s := &batchSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Batch []struct{ User string }
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if ok != nil && !ok() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		users := make([]string, len(body.Batch))
		for i, e := range body.Batch {
			users[i] = e.User
		}
		s.mu.Lock()
		s.batches = append(s.batches, users)
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

// seen returns the accepted batches and how many times each user came.
func (s *batchSink) seen() ([][]string, map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	users := map[string]int{}
	for _, b := range s.batches {
		for _, u := range b {
			users[u]++
		}
	}
	return append([][]string(nil), s.batches...), users
}

func (s *batchSink) waitUsers(t *testing.T, want int) ([][]string, map[string]int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		batches, users := s.seen()
		if len(users) >= want {
			return batches, users
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered in %d batches", len(users), want, len(batches))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// onceEach fails for a user delivered more than once.
func onceEach(t *testing.T, users map[string]int) {
	t.Helper()
	for u, c := range users {
		if c != 1 {
			t.Errorf("user %s delivered %d times", u, c)
		}
	}
}

// batchWebhook creates a destination from the webhook-batch template
// whose events are {user}.
func (st *stack) batchWebhook(t *testing.T, project, url string, b *hogwirev1.BatchDelivery, filters *hogwirev1.Filters) *hogwirev1.Destination {
	t.Helper()
	return st.fromTemplate(t, project, "webhook-batch", url, map[string]any{"user": "{event.distinct_id}"},
		&hogwirev1.Destination{DisplayName: "batch sink", Filters: filters, Batch: b})
}

func publishNamed(t *testing.T, st *stack, token, name, prefix string, total, perMessage int) {
	t.Helper()
	for i := 0; i < total; i += perMessage {
		var evs []*hogwirev1.Event
		for j := i; j < min(i+perMessage, total); j++ {
			evs = append(evs, ev(name, fmt.Sprint(prefix, j)))
		}
		st.publish(t, token, evs...)
	}
}

// 1,000 matching events reach a batch webhook in at most 10 requests of
// at most 100 events, each event exactly once; events its filter rejects
// never reach it and count as filtered; each event counts as succeeded.
func TestBatchWebhookThousandEvents(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	s := newBatchSink(t, nil)
	// A long max_wait: batches leave full, whatever the pace of publishing.
	d := st.batchWebhook(t, "shop", s.URL, &hogwirev1.BatchDelivery{MaxEvents: 100, MaxWait: durationpb.New(30 * time.Second)},
		&hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "order"}}})
	st.waitConfig(t, 1)
	if d.GetBatch().GetMaxBytes() != 1<<20 {
		t.Errorf("batch %v: want max_bytes from the template", d.GetBatch())
	}

	const total = 1000
	for i := 0; i < total; i += 100 {
		publishNamed(t, st, p.CaptureToken, "order", fmt.Sprint("u", i, "-"), 100, 50)
		publishNamed(t, st, p.CaptureToken, "pageview", fmt.Sprint("x", i, "-"), 20, 20)
	}
	batches, users := s.waitUsers(t, total)
	waitStat(t, st, d.Name, "succeeded", total)
	if len(batches) > 10 {
		t.Errorf("%d requests, want at most 10", len(batches))
	}
	for i, b := range batches {
		if len(b) > 100 {
			t.Errorf("request %d holds %d events, want at most 100", i, len(b))
		}
	}
	onceEach(t, users)
	for u := range users {
		if u[0] != 'u' {
			t.Errorf("user %s was filtered out but delivered", u)
		}
	}
	waitStat(t, st, d.Name, "filtered", 200)
	if f := st.Node.Stat(d.Name, "failed"); f != 0 {
		t.Errorf("failed = %v", f)
	}
}

// A batch whose request fails (503, after fetch's own retries) is parked
// whole and delivered whole once the endpoint is back: one request holds
// every event, and each counts once as parked, retried and succeeded.
func TestBatchRetriedWhole(t *testing.T) {
	st := startRetryStack(t)
	p := st.project(t, "shop")
	var up atomic.Bool
	s := newBatchSink(t, up.Load)
	const total = 40
	d := st.batchWebhook(t, "shop", s.URL, &hogwirev1.BatchDelivery{MaxEvents: total, MaxWait: durationpb.New(30 * time.Second)}, nil)
	st.waitConfig(t, 1)
	publishNamed(t, st, p.CaptureToken, "order", "u", total, total)
	waitStat(t, st, d.Name, "parked", total)
	up.Store(true)
	batches, users := s.waitUsers(t, total)
	waitStat(t, st, d.Name, "succeeded", total)
	if len(batches) != 1 || len(batches[0]) != total {
		t.Errorf("batches %v: want the whole batch in one request", batches)
	}
	onceEach(t, users)
	if r := st.Node.Stat(d.Name, "retried"); r < total || int(r)%total != 0 {
		t.Errorf("retried = %v, want a multiple of %d", r, total)
	}
}

// A partial batch leaves max_wait after its first event.
func TestBatchMaxWaitFlushesPartialBatch(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	s := newBatchSink(t, nil)
	d := st.batchWebhook(t, "shop", s.URL, &hogwirev1.BatchDelivery{MaxEvents: 100, MaxWait: durationpb.New(200 * time.Millisecond)}, nil)
	st.waitConfig(t, 1)
	publishNamed(t, st, p.CaptureToken, "order", "u", 7, 7)
	batches, _ := s.waitUsers(t, 7)
	waitStat(t, st, d.Name, "succeeded", 7)
	if len(batches) != 1 || len(batches[0]) != 7 {
		t.Errorf("batches %v: want one of 7 events", batches)
	}
}

// A node that stops delivers the partial batches it holds (within its
// grace period) rather than leaving them to their max_wait.
func TestBatchFlushedWhenNodeStops(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	s := newBatchSink(t, nil)
	// Batches that would wait a minute: only the stop sends them.
	d := st.batchWebhook(t, "shop", s.URL, &hogwirev1.BatchDelivery{MaxEvents: 1000, MaxWait: durationpb.New(60 * time.Second)}, nil)
	// A destination that matches nothing: its filtered count on node-2
	// tells that node-2 routed events.
	probe := st.webhook(t, "shop", s.URL, &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "never"}}})
	st.waitConfig(t, 2)

	node2 := st.startNode(t, 20*time.Second, func(c *dataplane.Config) {
		c.EventLog.AckWait = 10 * time.Second
		c.ConsumeBatch = 5
		c.FetchPolicy = fetch.Policy{MaxRetries: -1}
	})

	for i := 0; i < 40; i++ {
		publishNamed(t, st, p.CaptureToken, "order", fmt.Sprint("u", i, "-"), 5, 5)
	}
	waitFor(t, func() bool { return node2.Stat(probe.Name, "filtered") > 0 })
	if err := node2.shutdown(); err != nil {
		t.Fatal(err)
	}
	delivered := node2.Stat(d.Name, "succeeded")
	_, users := s.seen()
	if delivered == 0 || int(delivered) != len(users) {
		t.Fatalf("node-2 delivered %v events when it stopped; the sink has %d", delivered, len(users))
	}
	onceEach(t, users)
}

// An edit of a destination sends its partial batch at once, as the
// destination now stands: here with a shorter max_wait.
func TestBatchSentWhenDestinationEdited(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	s := newBatchSink(t, nil)
	d := st.batchWebhook(t, "shop", s.URL, &hogwirev1.BatchDelivery{MaxEvents: 1000, MaxWait: durationpb.New(60 * time.Second)}, nil)
	probe := st.webhook(t, "shop", s.URL, &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "never"}}})
	st.waitConfig(t, 2)
	publishNamed(t, st, p.CaptureToken, "order", "u", 5, 5)
	// The probe counts the events routed: they wait in the batch.
	waitStat(t, st, probe.Name, "filtered", 5)
	if _, users := s.seen(); len(users) != 0 {
		t.Fatalf("%d events delivered before max_wait", len(users))
	}
	_, err := hogwirev1.NewDestinationServiceClient(st.admin).UpdateDestination(context.Background(), &hogwirev1.UpdateDestinationRequest{
		Destination: &hogwirev1.Destination{Name: d.Name, Batch: &hogwirev1.BatchDelivery{MaxEvents: 1000, MaxWait: durationpb.New(time.Second)}},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"batch"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	batches, _ := s.waitUsers(t, 5)
	waitStat(t, st, d.Name, "succeeded", 5)
	if len(batches) != 1 {
		t.Errorf("batches %v: want one", batches)
	}
}
