package controlplane

import (
	"context"
	"net/http"
	"sync"
)

// Replica is a running control-plane replica: the API server, and, in the
// background, the leader election with the jobs only the leader runs
// (resealing secrets under a new key, the health manager). `hogwire dev`
// and `hogwire controlplane` both run one this way.
type Replica struct {
	*Server
	// Mux is the replica's HTTP handler: GET /readyz answers 200 while
	// etcd does. Mount more handlers on it before serving it (a web
	// console, say).
	Mux *http.ServeMux

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
	r := &Replica{Server: s, Mux: http.NewServeMux(), stop: stop}
	r.Mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := s.Ready(req.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":"unavailable"}` + "\n"))
			return
		}
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = s.RunElection(rctx, s.ResealJob, s.HealthJob)
	}()
	return r, nil
}

// Stop ends the background work (giving up leadership) and waits for it.
func (r *Replica) Stop() {
	r.stop()
	r.wg.Wait()
}
