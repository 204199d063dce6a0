package dataplane

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// lane holds one destination's invocations on this node: at most limit
// are started at once, the rest wait in the lane's own queue, not on a
// goroutine of their own, so a slow destination costs its waiting events
// only memory, and other lanes are unaffected.
type lane struct {
	mu    sync.Mutex
	queue []*invocation
	// running counts the lane's workers: each runs queued invocations one
	// after another until the queue is empty.
	running int
}

// submit queues inv and starts a worker on w if the lane has fewer than
// limit. run runs one invocation.
func (l *lane) submit(w *workers, inv *invocation, limit int, run func(*invocation)) {
	l.mu.Lock()
	l.queue = append(l.queue, inv)
	start := l.running < limit
	if start {
		l.running++
	}
	l.mu.Unlock()
	if start {
		w.Go(func() { l.work(run) })
	}
}

// drain empties the queue and returns what it held.
func (l *lane) drain() []*invocation {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queue
	l.queue = nil
	return q
}

// work runs queued invocations until none is left.
func (l *lane) work(run func(*invocation)) {
	for {
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.queue = l.queue[:0:0]
			l.running--
			l.mu.Unlock()
			return
		}
		inv := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		l.mu.Unlock()
		run(inv)
	}
}

func newInvocationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
