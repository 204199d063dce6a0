package dataplane_test

import (
	"fmt"
	"net/http"
	"sync"
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

	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	gated := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	slow1, slow2, fast := newSink(t, gated), newSink(t, gated), newSink(t, nil)
	limits := &hogwirev1.ExecutionLimits{MaxConcurrency: 1, FetchTimeout: durationpb.New(time.Minute)}
	d1 := st.limitedWebhook(t, "shop", slow1.URL, limits)
	d2 := st.limitedWebhook(t, "shop", slow2.URL, limits)
	st.webhook(t, "shop", fast.URL, nil)
	st.waitConfig(t, 3)

	// Count the messages stored again, by the header that names their
	// destinations.
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var single, group atomic.Int32
	sub, err := nc.Subscribe(eventlog.DefaultSubject+".>", func(m *nats.Msg) {
		switch {
		case len(m.Header.Values("Hogwire-Destinations")) == 2:
			group.Add(1)
		case m.Header.Get("Hogwire-Destination") != "":
			single.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

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

	unblock()
	for _, s := range []*sink{slow1, slow2} {
		waitFor(t, func() bool { return s.count() >= n })
	}
	time.Sleep(200 * time.Millisecond) // a duplicate would come about now
	for name, s := range map[string]*sink{"first": slow1, "second": slow2} {
		seen := map[string]int{}
		s.mu.Lock()
		for _, b := range s.bodies {
			u, _ := b["user"].(string)
			seen[u]++
		}
		s.mu.Unlock()
		for i := range n {
			if u := fmt.Sprint("u", i); seen[u] != 1 {
				t.Errorf("the %s blocked destination got %s %d times, want once", name, u, seen[u])
			}
		}
	}
}
