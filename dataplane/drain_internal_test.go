package dataplane

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// Events sent back to wait for a full destination come back when it has
// worked off what it holds at the rate it goes, one message after another;
// without a rate they wait the longest wait.
func TestDrainWait(t *testing.T) {
	var d drain
	t0 := time.Unix(1000, 0)
	longest := time.Second
	d.sample(t0)
	if w := d.wait(t0, 100, 10000, 10000, longest); w != longest {
		t.Fatalf("no rate yet: wait %v, want %v", w, longest)
	}
	d.returned(100)
	for range 700 {
		d.done()
	}
	at := t0.Add(100 * time.Millisecond) // 7,000 a second
	var waits []time.Duration
	for range 3 {
		waits = append(waits, d.wait(at, 100, 10000, 10000, longest))
	}
	for i, want := range []time.Duration{14285714, 28571428, 42857142} {
		if diff := waits[i] - want; diff < -time.Microsecond || diff > time.Microsecond {
			t.Fatalf("waits %v, want about %v for the message %d", waits, want, i+1)
		}
	}
	// The first comes back; the next one counts only those still out.
	d.returned(100)
	if w := d.wait(at, 100, 10000, 10000, longest); w < 42*time.Millisecond || w > 43*time.Millisecond {
		t.Fatalf("after one came back: wait %v, want about 42.9ms", w)
	}
	// Bounds: never sooner than drainMinWait, never past longest.
	var quick drain
	quick.sample(t0)
	for range 1_000_000 {
		quick.done()
	}
	if w := quick.wait(at, 1, 10000, 10000, longest); w != drainMinWait {
		t.Fatalf("a fast destination: wait %v, want %v", w, drainMinWait)
	}
	var stuck drain
	stuck.sample(t0)
	if w := stuck.wait(at, 100, 10000, 10000, longest); w != longest {
		t.Fatalf("a stuck destination: wait %v, want %v", w, longest)
	}
	// Samples closer together than drainSample do not rate.
	var close drain
	close.sample(t0)
	close.done()
	if r := close.sample(t0.Add(drainSample / 2)); r != 0 {
		t.Fatalf("rate %v from half a sample", r)
	}
}

// The reader waits for room only while every destination is too full for
// the message, returns once one has room, and after a wait that ran out
// does not wait again until a destination has had room.
func TestWaitForRoom(t *testing.T) {
	full, free := &destination{name: "full"}, &destination{name: "free"}
	n := &Node{cfg: Config{MaxQueuedPerDestination: 10}, consumeCtx: t.Context(), log: slog.New(slog.DiscardHandler)}
	rt := &routing{routed: []*destination{full, free}}
	full.held.Store(10)
	free.held.Store(5)
	// A message of 5 fits beside 5 held of 10; one of 6 does not.
	if rt.noRoom(10 - 5) {
		t.Error("noRoom with a destination holding 5 of 10, for a message of 5")
	}
	if !rt.noRoom(10 - 6) {
		t.Error("room with every destination holding 5 or more of 10, for a message of 6")
	}
	free.held.Store(0)
	n.waitForRoom(rt, 5)
	if n.roomless.Load() {
		t.Error("roomless beside a destination with room")
	}
	if (&routing{}).noRoom(1) {
		t.Error("noRoom without destinations")
	}

	// Room comes while the reader waits.
	free.held.Store(10)
	go func() {
		time.Sleep(20 * time.Millisecond)
		free.held.Store(0)
	}()
	n.waitForRoom(rt, 5)
	if free.held.Load() != 0 || n.roomless.Load() {
		t.Fatalf("waitForRoom returned before room came (held %d) or marked the node roomless", free.held.Load())
	}

	// Stuck: the wait runs out, and the next message does not wait.
	free.held.Store(10)
	n.waitForRoom(rt, 5)
	if !n.roomless.Load() {
		t.Fatal("a wait that ran out did not mark the node roomless")
	}
	free.held.Store(0)
	n.waitForRoom(rt, 5)
	if n.roomless.Load() {
		t.Error("room came back but the node stays roomless")
	}

	// A stopping node does not wait.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n.consumeCtx = ctx
	free.held.Store(10)
	n.waitForRoom(rt, 5)
	if n.roomless.Load() {
		t.Error("a wait cut short by the node stopping marked it roomless")
	}
}
