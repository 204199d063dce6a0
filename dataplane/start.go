package dataplane

import (
	"context"
	"time"
)

// Running is a started node. `hogwire dev` and `hogwire dataplane` both
// run one this way.
type Running struct {
	*Node
	stop   context.CancelFunc
	exited chan struct{}
	err    error // Run's, once exited is closed
}

// Start builds a node for cfg and runs it until Stop; grace bounds the
// invocations it lets finish when stopped. Serve its ingest by registering
// it on a gRPC server and its Handler on HTTP; Ready says when it has its
// configuration.
func Start(ctx context.Context, cfg Config, grace time.Duration) (*Running, error) {
	n, err := New(cfg)
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &Running{Node: n, stop: stop, exited: make(chan struct{})}
	go func() {
		r.err = n.Run(rctx, grace)
		close(r.exited)
	}()
	return r, nil
}

// Exited is closed when the node has stopped, by Stop or by itself (it
// could not open the event log, say); then Err says why.
func (r *Running) Exited() <-chan struct{} { return r.exited }

// Err is how the node's Run ended; call it after Exited is closed.
func (r *Running) Err() error { return r.err }

// Stop stops the node, waits for it and returns how Run ended.
func (r *Running) Stop() error {
	r.stop()
	<-r.exited
	return r.err
}
