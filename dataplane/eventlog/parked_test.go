package eventlog_test

import (
	"context"
	"testing"
	"time"

	"github.com/hogwire/hogwire/dataplane/eventlog"
)

// Parked messages are counted per destination, deduplicated by id, and
// handed back after the delay a Nak asks for, without holding up the
// events' consumer.
func TestParkedStream(t *testing.T) {
	l, _ := startLog(t, eventlog.Config{})
	ctx := context.Background()
	for _, p := range []struct{ dest, body, id string }{
		{"projects/shop/destinations/a", "a1", "1"},
		{"projects/shop/destinations/a", "a2", "2"},
		{"projects/shop/destinations/a", "a2 again", "2"}, // a repeated park within the window
		{"projects/shop/destinations/b", "b1", "3"},
	} {
		if err := l.Park(ctx, "shop", p.dest, []byte(p.body), nil, p.id); err != nil {
			t.Fatal(err)
		}
	}
	depth, err := l.ParkedDepth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, b := eventlog.DestinationKey("projects/shop/destinations/a"), eventlog.DestinationKey("projects/shop/destinations/b")
	if len(depth) != 2 || depth[a] != 2 || depth[b] != 1 {
		t.Fatalf("depth %v, want a=2 b=1", depth)
	}

	cctx, stop := context.WithCancel(ctx)
	type delivery struct {
		body    string
		project string
		at      time.Time
	}
	got := make(chan delivery, 10)
	done := make(chan error, 1)
	var naked time.Time
	go func() {
		done <- l.ConsumeParked(cctx, 10, func(m *eventlog.Message) {
			body := string(m.Data[0])
			if body == "b1" && m.Redelivered == 0 {
				naked = time.Now()
				_ = m.Nak(300 * time.Millisecond)
				return
			}
			_ = m.Ack()
			got <- delivery{body, m.Project, time.Now()}
		})
	}()
	seen := map[string]delivery{}
	deadline := time.After(20 * time.Second)
	for len(seen) < 3 {
		select {
		case d := <-got:
			seen[d.body] = d
		case <-deadline:
			t.Fatalf("got %v", seen)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if seen["a1"].project != "shop" || seen["b1"].at.Sub(naked) < 300*time.Millisecond {
		t.Errorf("deliveries %+v (b1 handed back at %v)", seen, naked)
	}
	if depth, _ := l.ParkedDepth(ctx); len(depth) != 0 {
		t.Errorf("depth %v after every message was acknowledged", depth)
	}
}
