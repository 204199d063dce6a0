package dataplane

import (
	"crypto/rand"
	"encoding/hex"
	"sync"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/configsync"
)

// lane runs one destination's invocations, at most limit at a time on
// this node. Work beyond the limit waits in the lane's own queue, not on a
// goroutine of its own, so a slow destination costs its waiting events
// only memory, and other lanes are unaffected.
type lane struct {
	limit int
	mu    sync.Mutex
	queue []func()
	// running counts the lane's workers: each runs queued tasks one after
	// another until the queue is empty.
	running int
}

func (n *Node) lane(d *hogwirev1.Destination) *lane {
	size := int(d.GetLimits().GetMaxConcurrency())
	if size <= 0 {
		size = n.cfg.DefaultConcurrency
	}
	n.lanesMu.Lock()
	defer n.lanesMu.Unlock()
	l := n.lanes[d.Name]
	if l == nil || l.limit != size {
		// A changed limit takes effect for new work; work queued in the
		// old lane finishes there.
		l = &lane{limit: size}
		n.lanes[d.Name] = l
	}
	return l
}

// pruneLanes forgets the lanes of destinations that no longer exist.
func (n *Node) pruneLanes(cfg *configsync.Snapshot) {
	n.lanesMu.Lock()
	defer n.lanesMu.Unlock()
	for name := range n.lanes {
		if _, ok := cfg.Destinations[name]; !ok {
			delete(n.lanes, name)
		}
	}
}

// submit queues task and starts a worker on w if the lane has fewer than
// its limit.
func (l *lane) submit(w *workers, task func()) {
	l.mu.Lock()
	l.queue = append(l.queue, task)
	start := l.running < l.limit
	if start {
		l.running++
	}
	l.mu.Unlock()
	if start {
		w.Go(l.work)
	}
}

// work runs queued tasks until none is left.
func (l *lane) work() {
	for {
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.queue = l.queue[:0:0]
			l.running--
			l.mu.Unlock()
			return
		}
		task := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		l.mu.Unlock()
		task()
	}
}

func newInvocationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
