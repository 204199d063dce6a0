package dataplane

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hogwire/hogwire/hogvm/vm"
)

func testInvocation(d *destination) *invocation {
	return &invocation{dest: d, wake: make(chan struct{}, 1)}
}

// queued runs f, which asks c for a turn, on a goroutine, and returns
// where its result will come once it waits in c's queue.
func queued(c *cpu, f func() error) chan error {
	got := make(chan error, 1)
	go func() { got <- f() }()
	for c.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	return got
}

// stillWaiting fails t with what when got has a result already.
func stillWaiting(t *testing.T, got chan error, what string) {
	t.Helper()
	select {
	case err := <-got:
		t.Fatalf("%s (%v)", what, err)
	default:
	}
}

// A destination that always wants the CPU gets its share and no more: a
// destination asking for short turns is served at the next hand-off each
// time, however long the greedy one's queue.
func TestCPUServesTheLeastUsedFirst(t *testing.T) {
	c := newCPU(1, 0) // every checkpoint may hand the turn on
	ctx := context.Background()
	greedy, short := &destination{name: "greedy"}, &destination{name: "short"}

	var yields atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The greedy destination runs four invocations at once that never end.
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inv := testInvocation(greedy)
			if err := c.acquire(ctx, inv); err != nil {
				t.Error(err)
				return
			}
			for {
				select {
				case <-stop:
					c.release(inv)
					return
				default:
				}
				// A little work per turn, as a loop does between checkpoints.
				time.Sleep(50 * time.Microsecond)
				yields.Add(1)
				if err := c.yield(ctx, inv); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for yields.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	// The short destination asks for 200 turns, one after another.
	before := yields.Load()
	for range 200 {
		inv := testInvocation(short)
		if err := c.acquire(ctx, inv); err != nil {
			t.Fatal(err)
		}
		c.release(inv)
	}
	during := yields.Load() - before
	close(stop)
	wg.Wait()
	// Each of its turns waited for at most one greedy turn to end (the
	// greedy one has used more CPU), so the greedy destination checked in
	// about once per short turn; served in turn order behind four
	// invocations it would have been four times that.
	if during > 2*200 {
		t.Errorf("the greedy destination had %d turns while the short one had 200", during)
	}
	if short.cpu.used >= greedy.cpu.used {
		t.Errorf("CPU used: short %v, greedy %v", short.cpu.used, greedy.cpu.used)
	}
}

// One destination holds at most half the turns: a loop wanting them all
// leaves the other half to other destinations and the node's other work,
// even when nobody else waits for one yet.
func TestCPUHalfTheTurnsAtMost(t *testing.T) {
	c := newCPU(4, time.Hour) // no turn ends by quantum here
	ctx := context.Background()
	greedy, other := &destination{name: "greedy"}, &destination{name: "other"}
	var holding []*invocation
	for range 2 {
		inv := testInvocation(greedy)
		if err := c.acquire(ctx, inv); err != nil {
			t.Fatal(err)
		}
		holding = append(holding, inv)
	}
	third := testInvocation(greedy)
	got := queued(c, func() error { return c.acquire(ctx, third) })
	select {
	case err := <-got:
		t.Fatalf("a third turn for the same destination (err %v) with 2 of 4 held", err)
	case <-time.After(20 * time.Millisecond):
	}
	c.mu.Lock()
	free := c.free
	c.mu.Unlock()
	if free != 2 {
		t.Errorf("free = %d, want the 2 the greedy destination may not take", free)
	}
	// Another destination gets a free turn at once, twice.
	for range 2 {
		inv := testInvocation(other)
		if err := c.acquire(ctx, inv); err != nil {
			t.Fatal(err)
		}
		defer c.release(inv)
	}
	// One of the greedy turns ends: its waiting invocation takes it.
	c.release(holding[0])
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	c.release(holding[1])
	c.release(third)
	if greedy.cpu.held != 0 || c.waiting.Load() != 0 {
		t.Errorf("held %d, waiting %d", greedy.cpu.held, c.waiting.Load())
	}
}

// A waiter whose context ends leaves the queue, and a turn handed to it
// as it gives up is passed on.
func TestCPUWaiterCancelled(t *testing.T) {
	c := newCPU(1, 0)
	a, b := &destination{name: "a"}, &destination{name: "b"}
	holder := testInvocation(a)
	if err := c.acquire(context.Background(), holder); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := queued(c, func() error { return c.acquire(ctx, testInvocation(b)) })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	c.release(holder)
	// The slot is free again.
	next := testInvocation(b)
	if err := c.acquire(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	c.release(next)
	if c.free != 1 || len(c.ring) != 0 || c.waiting.Load() != 0 {
		t.Errorf("free %d, ring %d, waiting %d", c.free, len(c.ring), c.waiting.Load())
	}
}

// A run starts without a turn, however busy the slots, and takes one at
// its first checkpoint, waiting there like any other.
func TestCPUTurnAtFirstCheckpoint(t *testing.T) {
	c := newCPU(1, 0)
	ctx := context.Background()
	a, b := &destination{name: "a"}, &destination{name: "b"}
	holder := testInvocation(a)
	if err := c.acquire(ctx, holder); err != nil {
		t.Fatal(err)
	}
	inv := testInvocation(b)
	c.begin(inv) // does not wait for the slot holder
	if inv.inTurn {
		t.Fatal("a run holds a turn before its first checkpoint")
	}
	// A run that ends before a checkpoint gives back nothing.
	c.release(inv)
	if c.free != 0 || a.cpu.held != 1 || b.cpu.held != 0 {
		t.Fatalf("free %d, held a %d b %d after a run without a turn", c.free, a.cpu.held, b.cpu.held)
	}

	c.begin(inv)
	got := queued(c, func() error { return c.yield(ctx, inv) })
	stillWaiting(t, got, "the checkpoint went on while the only slot was held")
	c.release(holder)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if !inv.inTurn || b.cpu.held != 1 {
		t.Fatalf("after its checkpoint the run holds no turn (inTurn %v, held %d)", inv.inTurn, b.cpu.held)
	}
	c.release(inv)
	if c.free != 1 || b.cpu.held != 0 {
		t.Errorf("free %d, held %d", c.free, b.cpu.held)
	}
}

// A run stopped while it waits at a checkpoint holds no turn, so ending
// it gives none back: before, each such stop left the node one slot more.
func TestCPUStoppedAtCheckpointGivesNothingBack(t *testing.T) {
	c := newCPU(1, 0)
	a, b := &destination{name: "a"}, &destination{name: "b"}
	holder := testInvocation(a)
	if err := c.acquire(context.Background(), holder); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	inv := testInvocation(b)
	c.begin(inv)
	errc := queued(c, func() error { return c.yield(ctx, inv) })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	c.release(inv) // as the executor does when the invocation ends
	c.release(holder)
	if c.free != 1 || a.cpu.held != 0 || b.cpu.held != 0 {
		t.Errorf("free %d (want 1), held a %d b %d", c.free, a.cpu.held, b.cpu.held)
	}
}

// Runs without a turn count for the rest rule: a destination running
// whole quanta rests while another destination's short runs go on, though
// those never take a turn.
func TestCPURestBesideRunsWithoutTurns(t *testing.T) {
	c := newCPU(2, time.Millisecond)
	ctx := context.Background()
	loop, short := &destination{name: "loop"}, &destination{name: "short"}
	inv := testInvocation(loop)
	if err := c.acquire(ctx, inv); err != nil {
		t.Fatal(err)
	}
	c.begin(testInvocation(short))
	inv.turnStart = time.Now().Add(-2 * time.Millisecond) // a whole quantum
	if err := c.yield(ctx, inv); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	rest := loop.cpu.restUntil
	c.mu.Unlock()
	if rest.IsZero() {
		t.Error("the looping destination did not rest beside another's runs without turns")
	}
	c.release(inv)
}

// The memory budget fails the destination holding the most when it is
// spent, lets the others use a reserve, and makes new invocations wait
// until memory comes back.
func TestMemoryBudget(t *testing.T) {
	m := newMemory(1 << 20)
	hog, other := &destination{name: "hog"}, &destination{name: "other"}
	h := &invocation{dest: hog}
	for alloc := int64(memoryChunk); alloc <= 1<<20; alloc += memoryChunk {
		if err := m.grow(h, alloc); err != nil {
			t.Fatalf("grow to %d: %v", alloc, err)
		}
	}
	if err := m.grow(h, 1<<20+1); !errors.Is(err, vm.ErrMemoryLimit) {
		t.Fatalf("the hog grew past the budget: %v", err)
	}
	o := &invocation{dest: other}
	if err := m.grow(o, 100<<10); err != nil {
		t.Fatalf("another destination could not use the reserve: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.admit(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("admitted with the budget spent: %v", err)
	}
	admitted := make(chan error, 1)
	go func() { admitted <- m.admit(context.Background()) }()
	m.giveBack(h)
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
	m.giveBack(o)
	if m.used != 0 || len(m.byDest) != 0 {
		t.Errorf("used %d by %v after everything was given back", m.used, m.byDest)
	}
}

// A turn that is free while other destinations wait for theirs (each
// holds its most) goes at once to a destination that may take it, and the
// time it was idle earns it no credit, as when it waits first.
func TestCPUFreeTurnWhileOthersWait(t *testing.T) {
	c := newCPU(2, time.Millisecond) // at most 1 turn per destination
	ctx := context.Background()
	a, b := &destination{name: "a"}, &destination{name: "b"}
	first := testInvocation(a)
	if err := c.acquire(ctx, first); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	a.cpu.used = 5 * time.Millisecond
	c.mu.Unlock()
	second := testInvocation(a)
	got := queued(c, func() error { return c.acquire(ctx, second) })
	inv := testInvocation(b)
	if err := c.acquire(ctx, inv); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	used, free := b.cpu.used, c.free
	c.mu.Unlock()
	if used < 5*time.Millisecond {
		t.Errorf("b starts from %v of CPU used, want a's 5ms: idle time earned it credit", used)
	}
	if free != 0 {
		t.Errorf("%d turns free, want 0", free)
	}
	c.release(first)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	c.release(second)
	c.release(inv)
}

// A destination whose rest has just ended, before handOn came round to
// it, still takes the free turn before a newcomer that used more CPU.
func TestCPURestEndedBeforeNewcomer(t *testing.T) {
	c := newCPU(2, time.Millisecond)
	ctx := context.Background()
	other, rested, late := &destination{name: "other"}, &destination{name: "rested"}, &destination{name: "late"}
	holder := testInvocation(other)
	if err := c.acquire(ctx, holder); err != nil {
		t.Fatal(err)
	}
	// rested waits, its rest over a moment ago, with a turn free: the
	// timer that runs handOn at the end of a rest has not fired yet.
	waiter := testInvocation(rested)
	c.mu.Lock()
	rested.cpu.restUntil = time.Now().Add(-time.Microsecond)
	c.enqueue(waiter, false)
	late.cpu.used = 10 * time.Millisecond
	c.mu.Unlock()

	inv := testInvocation(late)
	got := make(chan error, 1)
	go func() { got <- c.acquire(ctx, inv) }()
	select {
	case <-waiter.wake:
		waiter.granted = false
	case err := <-got:
		t.Fatalf("the newcomer took the turn the rested destination was due (%v)", err)
	}
	stillWaiting(t, got, "the newcomer has a turn beside the rested destination")
	c.release(waiter)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	c.release(inv)
	c.release(holder)
}

// BenchmarkCPUTurns takes and gives back turns from 8 goroutines of 4
// destinations sharing 2 slots, as short invocations of several
// destinations do between their fetches.
func BenchmarkCPUTurns(b *testing.B) {
	c := newCPU(2, 250*time.Microsecond)
	ctx := context.Background()
	dests := make([]*destination, 4)
	for i := range dests {
		dests[i] = &destination{name: string(rune('a' + i))}
	}
	var next atomic.Int32
	b.SetParallelism(4) // 8 goroutines on 2 processors
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		inv := testInvocation(dests[int(next.Add(1))%len(dests)])
		for pb.Next() {
			if err := c.acquire(ctx, inv); err != nil {
				b.Error(err)
				return
			}
			c.release(inv)
		}
	})
}
