package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/deliverystate"
)

// pauses are the destinations no request may go to until a time a server
// gave in Retry-After. They live in a JetStream key-value bucket every
// node watches, so that a pause one node meets holds on all of them
// within a round trip; each node keeps its own copy to read without I/O.
type pauses struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	// active counts the pauses known, so that the check every fetch makes
	// costs one atomic load while no destination is paused.
	active atomic.Int32
	mu     sync.Mutex
	byName map[string]pause
}

type pause = deliverystate.Pause

func openPauses(ctx context.Context, cfg eventlog.Config, log *slog.Logger) (*pauses, jetstream.KeyValue, error) {
	kv, backlog, err := deliverystate.Open(ctx, func(ctx context.Context, kc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
		return eventlog.OpenBucket(ctx, cfg, kc)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("dataplane: %w", err)
	}
	return &pauses{kv: kv, log: log, byName: map[string]pause{}}, backlog, nil
}

// until returns when the destination's pause ends and why, or zero when it
// is not paused at now.
func (p *pauses) until(dest string, now time.Time) (time.Time, string) {
	ps, ok := p.get(dest)
	if !ok || !ps.Until.After(now) {
		return time.Time{}, ""
	}
	return ps.Until, ps.Reason
}

// untilNow is until at the current time, which it reads only when the
// destination has a pause: every delivery checks, and the clock costs more
// than the check while no destination is paused.
func (p *pauses) untilNow(dest string) (time.Time, string) {
	if _, ok := p.get(dest); !ok {
		return time.Time{}, ""
	}
	return p.until(dest, time.Now())
}

// paused reports whether the destination is paused at t.
func (p *pauses) paused(dest string, t time.Time) bool {
	until, _ := p.until(dest, t)
	return !until.IsZero()
}

// get returns the destination's last pause known, ended or not (until
// sweep forgets it).
func (p *pauses) get(dest string) (pause, bool) {
	if p == nil || p.active.Load() == 0 {
		return pause{}, false
	}
	p.mu.Lock()
	ps, ok := p.byName[dest]
	p.mu.Unlock()
	return ps, ok
}

// note keeps ps unless a pause of the destination lasting longer is known;
// it reports whether ps was kept.
func (p *pauses) note(ps pause) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.byName[ps.Destination]; ok && !ps.Until.After(cur.Until) {
		return false
	}
	p.byName[ps.Destination] = ps
	p.active.Store(int32(len(p.byName)))
	return true
}

// set pauses the destination until then on every node; it reports false
// when it was already paused as long.
func (p *pauses) set(ctx context.Context, ps pause) bool {
	dest := ps.Destination
	if !p.note(ps) {
		return false
	}
	b, err := json.Marshal(ps)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err = p.kv.Put(ctx, deliverystate.Key(dest), b)
		cancel()
	}
	if err != nil {
		// This node still holds the pause; other nodes learn of it from
		// their own responses.
		p.log.Warn("sharing a destination's pause", "destination", dest, "err", err)
	}
	return true
}

// watch follows the other nodes' pauses until ctx ends.
func (p *pauses) watch(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := p.kv.WatchAll(ctx)
		if err != nil {
			p.log.Warn("watching destination pauses", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				p.forget(e.Key())
				continue
			}
			var ps pause
			if json.Unmarshal(e.Value(), &ps) == nil && ps.Destination != "" {
				p.note(ps)
			}
		}
		_ = w.Stop()
	}
}

// sweep forgets pauses that ended a while ago (the breaker reads the last
// one's trips just after it ends).
func (p *pauses) sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, ps := range p.byName {
		if !ps.Until.After(now.Add(-breakerMemory)) {
			delete(p.byName, k)
		}
	}
	p.active.Store(int32(len(p.byName)))
}

// all returns the pauses known.
func (p *pauses) all() []pause {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]pause, 0, len(p.byName))
	for _, ps := range p.byName {
		out = append(out, ps)
	}
	return out
}

// forget drops the pause of the destination whose key is key.
func (p *pauses) forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name := range p.byName {
		if deliverystate.Key(name) == key {
			delete(p.byName, name)
		}
	}
	p.active.Store(int32(len(p.byName)))
}

// clearBreaker ends a destination's circuit-breaker pause, on every node:
// it runs again after a quarantine or a user's re-enable, which say "try
// again now". A Retry-After pause, which the endpoint asked for, stays.
func (p *pauses) clearBreaker(ctx context.Context, dest string) {
	ps, ok := p.get(dest)
	if !ok || !ps.Breaker {
		return
	}
	p.forget(deliverystate.Key(dest))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.kv.Delete(ctx, deliverystate.Key(dest)); err != nil {
		p.log.Debug("clearing a destination's breaker pause", "destination", dest, "err", err)
	}
}
