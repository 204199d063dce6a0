package dataplane_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hogwire/hogwire/dataplane"
	"github.com/hogwire/hogwire/fetch"
)

// A node that stops with an invocation still fetching once its grace has
// passed cancels the fetch at once: the request does not run to its
// timeout, and the event goes back to the log.
func TestStopCancelsFetchInFlight(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	reached := make(chan struct{}, 1)
	release := make(chan struct{})
	s := newSink(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case reached <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	d := st.webhook(t, "shop", s.URL, nil)
	st.waitConfig(t, 1)
	// Its own stream, so that it alone runs the events sent to it.
	node2 := st.startNode(t, 50*time.Millisecond, func(c *dataplane.Config) {
		c.EventLog.Stream, c.EventLog.Subject = "NODE2_EVENTS", "node2.events"
		c.FetchPolicy = fetch.Policy{MaxRetries: -1}
	})
	waitFor(t, func() bool { return len(node2.Syncer().Current().Destinations) == 1 })
	srv := httptest.NewServer(node2.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+"/i/v0/e/", "application/json",
		strings.NewReader(`{"api_key":"`+p.CaptureToken+`","event":"e","distinct_id":"ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("capture answered %d", resp.StatusCode)
	}
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the event's request never reached the sink")
	}
	if err := node2.shutdown(); err != nil {
		t.Fatal(err)
	}
	if n := node2.Stat(d.Name, "fetch_timeouts"); n != 0 {
		t.Errorf("%v fetches timed out: the node waited for the fetch in flight instead of cancelling it", n)
	}
	if n := node2.Stat(d.Name, "fetch_attempts"); n != 1 {
		t.Errorf("%v fetch attempts, want the 1 cancelled", n)
	}
}
