package dataplane

import (
	"sync"
	"sync/atomic"
	"time"
)

// drain estimates how fast a destination works off its queue, so that the
// events stored again for it while it was full (see Node.storeOverflow)
// come back about when it has room for them. A fixed wait, doubled on
// every return, left a destination that drains its queue in a second idle
// for most of the next wait: a burst of 20,000 events to one destination
// took a fifth longer than the same events in two bursts.
type drain struct {
	finished atomic.Int64 // invocations finished, ever
	// behind counts the events of messages sent back to wait, which will
	// take room before a message that comes later: each wait is counted
	// after theirs, so that the messages come back one after another, not
	// all at once to find the queue full again.
	behind atomic.Int64

	mu     sync.Mutex
	at     time.Time // the last sample
	seen   int64     // finished at the last sample
	perSec float64   // smoothed rate; 0 until measured
}

// Bounds of a measurement and of a wait.
const (
	drainSample  = 10 * time.Millisecond // shorter intervals are too noisy to rate
	drainMinWait = 10 * time.Millisecond
)

// done counts a finished invocation.
func (d *drain) done() { d.finished.Add(1) }

// sample measures the rate at now, when the last sample is old enough (or
// starts measuring). The destination calls it when it first overflows,
// so that a rate is known by the time the events come back.
func (d *drain) sample(now time.Time) float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	fin := d.finished.Load()
	el := now.Sub(d.at)
	switch {
	case d.at.IsZero() || el > 10*time.Second:
		// Nothing recent to compare with: start again. Messages counted
		// behind long ago have come back by now, here or on another node.
		d.at, d.seen, d.perSec = now, fin, 0
		d.behind.Store(0)
	case el >= drainSample:
		r := float64(fin-d.seen) / el.Seconds()
		if d.perSec == 0 {
			d.perSec = r
		} else {
			d.perSec = (d.perSec + r) / 2
		}
		d.at, d.seen = now, fin
	}
	return d.perSec
}

// wait returns how long a message of k events should wait before coming
// back to a destination that holds held of at most limit, at most
// longest (the wait when no rate is known). The message is counted as
// behind until back (see returned).
func (d *drain) wait(now time.Time, k, held, limit int64, longest time.Duration) time.Duration {
	rate := d.sample(now)
	ahead := d.behind.Add(k)
	w := longest
	if rate > 0 {
		// Room for k: what it holds past limit-k, and the messages that
		// wait before it, must be done first.
		need := held + ahead - limit
		w = time.Duration(float64(need) / rate * float64(time.Second))
	}
	return min(max(w, drainMinWait), longest)
}

// returned uncounts a message of k events that came back from its wait.
func (d *drain) returned(k int64) {
	if d.behind.Add(-k) < 0 {
		// A message sent back before this node started, or redelivered
		// for another reason: never below zero.
		d.behind.Store(0)
	}
}
