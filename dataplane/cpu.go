package dataplane

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// cpu shares the node's processors between destinations. Hog runs only
// in a turn: a fixed number of invocations run Hog at once (slots), and
// when more want to, the destination that has used the least CPU time is
// served first (start-time fair queueing: each destination's used time
// counts from the least of those waiting when it starts to wait, so one
// that was idle gets no credit for it). A destination that always wants
// the CPU (an infinite loop, say) therefore gets an equal share of time
// with the others that want it, and no more; what it wants beyond that
// waits in its own queue, while short invocations of other destinations
// pass it at once. An invocation holds its turn while it runs Hog, for at
// most a quantum once others wait (the VM checks in every few thousand
// steps), and gives it up while it waits for a fetch.
//
// No destination holds more than half the turns (at least one): on a node
// of two processors an infinite loop keeps one of them at most, and the
// other stays for what Hog turns do not cover — ingest, the fetches and
// telemetry of every destination — which is most of a delivery's cost.
// Without it, a loop holding every turn starves healthy destinations of
// processors even though their Hog is served first.
//
// Nor does a destination keep its processor to itself while others are
// active: one whose turn lasts a whole quantum while another destination
// took a turn lately (within activeWindow) rests for a quantum before its
// next turn, so it runs at most half the time. The turns alone cannot
// share the CPU fairly here, as most of a healthy destination's cost is
// outside them (ingest, fetch, telemetry): an infinite loop holding one
// processor of two without a break left that work one processor, and the
// healthy destination's tail latency several times its latency alone. A
// destination alone on the node, or whose turns are short, never rests.
//
// A run of Hog takes its turn only at its first checkpoint (begin, then
// yield), not when it starts: most runs (a webhook's few hundred
// instructions before and after its fetch) end before one, and a turn for
// each cost a lock and, whenever both slots were taken, a hand-off from
// one goroutine to another, more than the Hog they ran (bench/pipeline:
// the turns were a fifth of a delivery's CPU outside fetch). What runs
// without a turn is at most the instructions between two checkpoints, so
// an infinite loop is in turns from its first thousand on.
type cpu struct {
	quantum time.Duration
	// perDest is the most turns one destination holds at once.
	perDest int
	// window is how lately another destination must have taken a turn
	// for a destination running whole quanta to rest.
	window time.Duration

	mu   sync.Mutex
	free int
	// ring lists the destinations with invocations waiting.
	ring []*destination
	// waiting counts the invocations waiting, for a look without the lock.
	waiting atomic.Int32
	// recent holds the last two destinations to take a turn, the latest
	// first, and when each last took one: enough to tell whether any
	// destination but a given one took a turn lately.
	recent [2]struct {
		d  *destination
		at time.Time
	}
	// wakeAt is when restTimer runs handOn next (zero: not armed).
	wakeAt    time.Time
	restTimer *time.Timer
	// epoch is when the cpu was made: runs without a turn note the time
	// since then (see begin).
	epoch time.Time
}

// activeWindow is how many quanta back another destination's turn makes
// a destination running whole quanta rest.
const activeWindow = 100

// cpuQueue is one destination's invocations waiting for a turn: the
// oldest first, so that a destination's share finishes its work in order
// rather than spreading over everything it has started.
type cpuQueue struct {
	waiters []*invocation
	inRing  bool
	// used is the destination's virtual time: the CPU time its turns took,
	// from where it started to wait last.
	used time.Duration
	// held counts the turns the destination holds.
	held int
	// restUntil is when the destination may take a turn again after a
	// rest.
	restUntil time.Time
	// noted is when, after the cpu's epoch, the destination's run without a
	// turn was last noted among the recent (see begin).
	noted atomic.Int64
}

func newCPU(slots int, quantum time.Duration) *cpu {
	return &cpu{free: slots, quantum: quantum, perDest: max(1, slots/2), window: activeWindow * quantum, epoch: time.Now()}
}

// begin starts a run of Hog for inv without a turn: it takes one at its
// first checkpoint (yield). The run counts as its destination's turn for
// the rest rule all the same, or an infinite loop beside destinations
// whose runs are all short would never rest; to spare a lock per run, a
// destination is noted at most every eighth of the window.
func (c *cpu) begin(inv *invocation) {
	d := inv.dest
	since := time.Since(c.epoch)
	if last := d.cpu.noted.Load(); last != 0 && since-time.Duration(last) < c.window/8 {
		return
	}
	d.cpu.noted.Store(int64(since))
	c.mu.Lock()
	c.noteTurn(d, c.epoch.Add(since))
	c.mu.Unlock()
}

// acquire waits for a turn for inv.
func (c *cpu) acquire(ctx context.Context, inv *invocation) error {
	now := time.Now()
	c.mu.Lock()
	c.noteTurn(inv.dest, now)
	q := &inv.dest.cpu
	if c.free > 0 && len(c.ring) == 0 && q.held < c.perDest && !now.Before(q.restUntil) {
		c.free--
		q.held++
		c.mu.Unlock()
		inv.turnStart, inv.inTurn = now, true
		return nil
	}
	c.enqueue(inv, false)
	c.handOn(now)
	c.mu.Unlock()
	return c.wait(ctx, inv)
}

// release ends inv's turn, if it has one, and hands it to the next
// destination waiting.
func (c *cpu) release(inv *invocation) {
	if !inv.inTurn {
		return
	}
	now := time.Now()
	c.mu.Lock()
	c.charge(inv, now)
	c.giveBack(inv)
	c.handOn(now)
	c.mu.Unlock()
}

// giveBack frees inv's turn. c.mu is held.
func (c *cpu) giveBack(inv *invocation) {
	inv.dest.cpu.held--
	c.free++
	inv.inTurn = false
}

// charge adds the time of inv's turn so far to its destination. c.mu is
// held.
func (c *cpu) charge(inv *invocation, now time.Time) {
	inv.dest.cpu.used += now.Sub(inv.turnStart)
	inv.turnStart = now
}

// yield passes inv's turn on when it has lasted a quantum and another
// destination waits, and waits for the next one; otherwise it lets other
// goroutines of the node run (the fetches and ingest of every destination
// need the processors the VM would keep).
func (c *cpu) yield(ctx context.Context, inv *invocation) error {
	if !inv.inTurn {
		// The run's first checkpoint (see begin): from here on it runs in
		// turns.
		return c.acquire(ctx, inv)
	}
	now := time.Now()
	if now.Sub(inv.turnStart) < c.quantum {
		return nil
	}
	c.mu.Lock()
	c.charge(inv, now)
	if c.window > 0 && c.othersActive(inv.dest, now) {
		// A whole quantum while others are active: rest for one.
		inv.dest.cpu.restUntil = now.Add(c.quantum)
		c.enqueue(inv, true)
		c.giveBack(inv)
		c.handOn(now)
		c.mu.Unlock()
		return c.wait(ctx, inv)
	}
	if len(c.ring) == 0 || (len(c.ring) == 1 && c.ring[0] == inv.dest) {
		// Only this destination's own later work waits: it goes on, and
		// lets the node's other goroutines (fetches, ingest) run.
		c.mu.Unlock()
		runtime.Gosched()
		return nil
	}
	c.enqueue(inv, true)
	c.giveBack(inv)
	c.handOn(now)
	c.mu.Unlock()
	return c.wait(ctx, inv)
}

// enqueue adds inv to its destination's queue (in front when it already
// had a turn) and the destination to the ring.
func (c *cpu) enqueue(inv *invocation, front bool) {
	q := &inv.dest.cpu
	if front {
		q.waiters = append(q.waiters, nil)
		copy(q.waiters[1:], q.waiters)
		q.waiters[0] = inv
	} else {
		q.waiters = append(q.waiters, inv)
	}
	if !q.inRing {
		q.inRing = true
		// Idle time earns no credit: start from the least used time of
		// those waiting.
		if len(c.ring) > 0 {
			least := c.ring[0].cpu.used
			for _, d := range c.ring[1:] {
				least = min(least, d.cpu.used)
			}
			q.used = max(q.used, least)
		}
		c.ring = append(c.ring, inv.dest)
	}
	c.waiting.Add(1)
}

// noteTurn records that d takes a turn at now. c.mu is held.
func (c *cpu) noteTurn(d *destination, now time.Time) {
	if c.recent[0].d != d {
		c.recent[1] = c.recent[0]
		c.recent[0].d = d
	}
	c.recent[0].at = now
}

// othersActive reports whether a destination other than d took a turn
// within the window. c.mu is held.
func (c *cpu) othersActive(d *destination, now time.Time) bool {
	for _, r := range c.recent {
		if r.d != nil && r.d != d && now.Sub(r.at) < c.window {
			return true
		}
	}
	return false
}

// handOn gives the free turns to the first waiters of the destinations
// that have used the least CPU, hold fewer than their most and are not
// resting at now (a turn given starts then). c.mu is held.
func (c *cpu) handOn(now time.Time) {
	for c.free > 0 {
		at := -1
		var wake time.Time
		for i, d := range c.ring {
			if d.cpu.held >= c.perDest {
				continue
			}
			if !d.cpu.restUntil.IsZero() {
				if now.Before(d.cpu.restUntil) {
					if wake.IsZero() || d.cpu.restUntil.Before(wake) {
						wake = d.cpu.restUntil
					}
					continue
				}
			}
			if at < 0 || d.cpu.used < c.ring[at].cpu.used {
				at = i
			}
		}
		if at < 0 {
			if !wake.IsZero() {
				c.wakeAfterRest(wake)
			}
			return
		}
		d := c.ring[at]
		q := &d.cpu
		next := q.waiters[0]
		q.waiters[0] = nil
		q.waiters = q.waiters[1:]
		if len(q.waiters) == 0 {
			q.inRing = false
			q.waiters = q.waiters[:0:0]
			c.ring = append(c.ring[:at], c.ring[at+1:]...)
		}
		c.waiting.Add(-1)
		c.free--
		q.held++
		next.granted, next.inTurn = true, true
		next.turnStart = now
		next.wake <- struct{}{}
	}
}

// wakeAfterRest makes sure handOn runs at t, when a destination's rest
// ends with a turn free for it. c.mu is held.
func (c *cpu) wakeAfterRest(t time.Time) {
	if !c.wakeAt.IsZero() && !t.Before(c.wakeAt) {
		return
	}
	c.wakeAt = t
	d := time.Until(t)
	if c.restTimer == nil {
		c.restTimer = time.AfterFunc(d, func() {
			c.mu.Lock()
			c.wakeAt = time.Time{}
			c.handOn(time.Now())
			c.mu.Unlock()
		})
		return
	}
	c.restTimer.Reset(d)
}

// wait blocks until inv is given a turn or ctx ends.
func (c *cpu) wait(ctx context.Context, inv *invocation) error {
	select {
	case <-inv.wake:
		inv.granted = false
		return nil
	case <-ctx.Done():
	}
	c.mu.Lock()
	if inv.granted {
		// The turn came as ctx ended: take it, and pass it on.
		<-inv.wake
		inv.granted = false
		c.giveBack(inv)
		c.handOn(time.Now())
		c.mu.Unlock()
		return ctx.Err()
	}
	q := &inv.dest.cpu
	for i, w := range q.waiters {
		if w == inv {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			c.waiting.Add(-1)
			break
		}
	}
	if len(q.waiters) == 0 && q.inRing {
		q.inRing = false
		for i, d := range c.ring {
			if d == inv.dest {
				c.ring = append(c.ring[:i], c.ring[i+1:]...)
				break
			}
		}
	}
	c.mu.Unlock()
	return ctx.Err()
}
