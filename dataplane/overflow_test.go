package dataplane_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/durationpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
)

// Destinations that are full stay apart from one that is not: the fast
// destination gets every event at once, while the events of two blocked
// destinations are stored in the log again, ONE message for both (not a
// copy each), and reach both, each event once, when they unblock.
func TestOverflowOneCopyForDestinationsBehind(t *testing.T) {
	s, cc := devstacktest.Start(t, func(c *devstack.Config) { c.MaxInflightEvents = 20 }) // 10 per destination
	st := &stack{Stack: s, admin: cc}
	p := st.project(t, "shop")

	slow1, slow2, fast := newGate(t), newGate(t), newSink(t, nil)
	limits := &hogwirev1.ExecutionLimits{MaxConcurrency: 1, FetchTimeout: durationpb.New(time.Minute)}
	d1 := st.limitedWebhook(t, "shop", slow1.URL, limits)
	d2 := st.limitedWebhook(t, "shop", slow2.URL, limits)
	st.webhook(t, "shop", fast.URL, nil)
	st.waitConfig(t, 3)

	single, group := countStoredAgain(t, st)

	const n, per = 60, 10
	publishEach(t, st, p.CaptureToken, n, per, "u")
	for i := range n {
		select {
		case <-fast.got:
		case <-time.After(30 * time.Second):
			t.Fatalf("the fast destination got %d of %d events while two others were blocked", i, n)
		}
	}
	// Each blocked destination holds 10 (one running, nine queued); the
	// other 50 are stored again for both together.
	waitStat(t, st, d1.Name, "overflowed", n-10)
	waitStat(t, st, d2.Name, "overflowed", n-10)
	// A copy each would make 2 per message of the 5 (10); a message may
	// split, when one destination had room for an event the other had
	// not, but most are shared.
	if g, s := group.Load(), single.Load(); g < 2 || g+s >= 2*(n-10)/per {
		t.Errorf("stored again: %d messages for both destinations, %d for one, for %d events of %d-event messages", g, s, n-10, per)
	}

	slow1.release()
	slow2.release()
	for _, g := range []*gate{slow1, slow2} {
		waitFor(t, func() bool { return g.count() >= n })
	}
	time.Sleep(200 * time.Millisecond) // a duplicate would come about now
	wantEachOnce(t, slow1.sink, n, "the first blocked destination")
	wantEachOnce(t, slow2.sink, n, "the second blocked destination")
}

// wantEachOnce checks that s got the events of users u0 to u<n-1> once
// each.
func wantEachOnce(t *testing.T, s *sink, n int, what string) {
	t.Helper()
	seen := map[string]int{}
	s.mu.Lock()
	for _, b := range s.bodies {
		u, _ := b["user"].(string)
		seen[u]++
	}
	s.mu.Unlock()
	for i := range n {
		if u := fmt.Sprint("u", i); seen[u] != 1 {
			t.Errorf("%s got %s %d times, want once", what, u, seen[u])
		}
	}
}

// countStoredAgain counts the messages of events stored again in the log
// for one full destination (single) and for several together (group), by
// the headers that name them.
func countStoredAgain(t *testing.T, st *stack) (single, group *atomic.Int32) {
	t.Helper()
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	single, group = new(atomic.Int32), new(atomic.Int32)
	if _, err := nc.Subscribe(eventlog.DefaultSubject+".>", func(m *nats.Msg) {
		switch {
		case len(m.Header.Values("Hogwire-Destinations")) > 1:
			group.Add(1)
		case m.Header.Get("Hogwire-Destination") != "":
			single.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return single, group
}

// A node whose only destination is full but delivering waits for it to
// have room before reading on, rather than storing the events it reads in
// the log again: every event is delivered once and none is stored twice.
func TestFullNodeWaitsForRoomInsteadOfStoringAgain(t *testing.T) {
	s, cc := devstacktest.Start(t, func(c *devstack.Config) { c.MaxInflightEvents = 20 }) // 10 per destination
	st := &stack{Stack: s, admin: cc}
	p := st.project(t, "shop")
	slow := newSink(t, func(http.ResponseWriter, *http.Request) { time.Sleep(time.Millisecond) })
	d := st.limitedWebhook(t, "shop", slow.URL, &hogwirev1.ExecutionLimits{MaxConcurrency: 1})
	st.waitConfig(t, 1)
	single, group := countStoredAgain(t, st)

	const n, per = 100, 5
	publishEach(t, st, p.CaptureToken, n, per, "u")
	waitFor(t, func() bool { return slow.count() >= n })
	time.Sleep(200 * time.Millisecond) // a duplicate would come about now
	if got := slow.count(); got != n {
		t.Errorf("the destination got %d deliveries, want %d", got, n)
	}
	if s, g := single.Load(), group.Load(); s+g != 0 {
		t.Errorf("%d messages stored again for the destination (%d shared), want none: the node should wait for room", s+g, g)
	}
	if o := st.Node.Stat(d.Name, "overflowed"); o != 0 {
		t.Errorf("overflowed = %v, want 0", o)
	}
}

// The wait for room is short: a node whose only destination is stuck
// still reads on, storing the events it cannot hold in the log again, and
// delivers each once after the destination recovers.
func TestFullNodeStuckDestinationStillReadsOn(t *testing.T) {
	s, cc := devstacktest.Start(t, func(c *devstack.Config) { c.MaxInflightEvents = 20 }) // 10 per destination
	st := &stack{Stack: s, admin: cc}
	p := st.project(t, "shop")
	stuck := newGate(t)
	d := st.limitedWebhook(t, "shop", stuck.URL, &hogwirev1.ExecutionLimits{MaxConcurrency: 1, FetchTimeout: durationpb.New(time.Minute)})
	st.waitConfig(t, 1)

	const n, per = 40, 5
	publishEach(t, st, p.CaptureToken, n, per, "u")
	waitStat(t, st, d.Name, "overflowed", n-10)
	stuck.release()
	waitFor(t, func() bool { return stuck.count() >= n })
	time.Sleep(200 * time.Millisecond)
	wantEachOnce(t, stuck.sink, n, "the destination")
}
