package dataplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/configsync"
)

// lane limits one destination's invocations in flight on this node. Work
// for a slow destination waits in its own lane; other lanes are unaffected.
type lane struct {
	slots chan struct{}
}

func (n *Node) lane(d *hogwirev1.Destination) *lane {
	size := int(d.GetLimits().GetMaxConcurrency())
	if size <= 0 {
		size = n.cfg.DefaultConcurrency
	}
	n.lanesMu.Lock()
	defer n.lanesMu.Unlock()
	l := n.lanes[d.Name]
	if l == nil || cap(l.slots) != size {
		// A changed limit takes effect for new work; invocations holding a
		// slot of the old lane finish there.
		l = &lane{slots: make(chan struct{}, size)}
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

func (l *lane) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *lane) release() { <-l.slots }

func newInvocationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
