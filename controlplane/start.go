package controlplane

import (
	"context"
	"sync"
)

// Replica is a running control-plane replica: the API server, and, in the
// background, the leader election with the jobs only the leader runs
// (resealing secrets under a new key, the health manager). `hogwire dev`
// and `hogwire controlplane` both run one this way.
type Replica struct {
	*Server

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Start builds a replica for cfg and starts its background work, which
// runs until Stop. Serve its API by registering it on a gRPC server.
func Start(ctx context.Context, cfg Config) (*Replica, error) {
	s, err := NewContext(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &Replica{Server: s, stop: stop}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = s.RunElection(rctx, s.ResealJob, s.HealthJob, s.RerunJob)
	}()
	return r, nil
}

// Stop ends the background work (giving up leadership) and waits for it.
func (r *Replica) Stop() {
	r.stop()
	r.wg.Wait()
}
