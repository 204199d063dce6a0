// Package configsync keeps a data-plane node's copy of the configuration
// in step with the control plane over ConfigService.Watch.
//
// The node always has a complete, immutable Snapshot to read: a change is
// applied to a copy that replaces the current one atomically, so readers
// never lock and never see half an update. When the control plane is
// unreachable the node keeps serving the last snapshot and reconnects with
// its revision, so it receives exactly the changes it missed.
package configsync

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// Snapshot is one consistent version of the configuration. It must not be
// modified.
type Snapshot struct {
	// Revision is the etcd revision the snapshot reflects; 0 before the
	// first snapshot arrived.
	Revision int64
	// Projects by id, and project id by capture token.
	Projects map[string]*hogwirev1.Project
	Tokens   map[string]string
	// Destinations by resource name.
	Destinations map[string]*hogwirev1.Destination
}

// Config configures a Syncer.
type Config struct {
	// Conn is a connection to the control plane carrying the node token.
	Conn grpc.ClientConnInterface
	// NodeID, Address and Version describe the node to the control plane.
	NodeID, Address, Version string
	Logger                   *slog.Logger
	// OnChange, when set, is called (from the Syncer's goroutine) with the
	// previous and the next snapshot, just before the next one becomes
	// Current, so that derived state is rebuilt (incrementally) before
	// anyone can see the snapshot it derives from.
	OnChange func(prev, next *Snapshot)
	// MaxBackoff caps the wait between reconnects (default 5s).
	MaxBackoff time.Duration
}

// Syncer maintains the current Snapshot.
type Syncer struct {
	cfg   Config
	log   *slog.Logger
	cur   atomic.Pointer[Snapshot]
	ready chan struct{}
	once  sync.Once
}

// New returns a Syncer; call Run to start it.
func New(cfg Config) *Syncer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	s := &Syncer{cfg: cfg, log: cfg.Logger, ready: make(chan struct{})}
	s.cur.Store(&Snapshot{
		Projects: map[string]*hogwirev1.Project{}, Tokens: map[string]string{},
		Destinations: map[string]*hogwirev1.Destination{},
	})
	return s
}

// Current returns the latest snapshot. It never blocks.
func (s *Syncer) Current() *Snapshot { return s.cur.Load() }

// Ready is closed once the first full snapshot has been applied.
func (s *Syncer) Ready() <-chan struct{} { return s.ready }

// Run follows the control plane until ctx ends, reconnecting as needed.
func (s *Syncer) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		s.log.Warn("config stream broken; keeping the last configuration and reconnecting",
			"err", err, "revision", s.Current().Revision, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

// follow runs one Watch stream until it breaks.
func (s *Syncer) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := hogwirev1.NewConfigServiceClient(s.cfg.Conn).Watch(ctx)
	if err != nil {
		return err
	}
	err = stream.Send(&hogwirev1.WatchRequest{Kind: &hogwirev1.WatchRequest_Subscribe_{Subscribe: &hogwirev1.WatchRequest_Subscribe{
		NodeId: s.cfg.NodeID, Address: s.cfg.Address, Version: s.cfg.Version, Revision: s.Current().Revision,
	}}})
	if err != nil {
		return err
	}
	var pending []*hogwirev1.WatchResponse
	for {
		m, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("control plane closed the stream")
			}
			return err
		}
		pending = append(pending, m)
		if m.More {
			continue
		}
		prev := s.Current()
		next := apply(prev, pending)
		pending = pending[:0]
		// Derived state first, then the snapshot: whoever sees a snapshot
		// in Current can rely on what OnChange built from it.
		if s.cfg.OnChange != nil {
			s.cfg.OnChange(prev, next)
		}
		s.cur.Store(next)
		if next.Revision > 0 {
			s.once.Do(func() { close(s.ready) })
		}
		if err := stream.Send(&hogwirev1.WatchRequest{Kind: &hogwirev1.WatchRequest_Ack_{Ack: &hogwirev1.WatchRequest_Ack{Revision: next.Revision}}}); err != nil {
			return err
		}
	}
}

// apply returns a new snapshot: cur with the responses applied in order.
func apply(cur *Snapshot, ms []*hogwirev1.WatchResponse) *Snapshot {
	next := &Snapshot{Revision: cur.Revision}
	if ms[0].Snapshot {
		next.Projects = map[string]*hogwirev1.Project{}
		next.Destinations = map[string]*hogwirev1.Destination{}
	} else {
		next.Projects = make(map[string]*hogwirev1.Project, len(cur.Projects))
		for k, v := range cur.Projects {
			next.Projects[k] = v
		}
		next.Destinations = make(map[string]*hogwirev1.Destination, len(cur.Destinations))
		for k, v := range cur.Destinations {
			next.Destinations[k] = v
		}
	}
	for _, m := range ms {
		next.Revision = max(next.Revision, m.Revision)
		for _, p := range m.Projects {
			next.Projects[projectID(p.Name)] = p
		}
		for _, d := range m.Destinations {
			next.Destinations[d.Name] = d
		}
		for _, name := range m.Deleted {
			if id := projectID(name); id != "" && !isDestination(name) {
				delete(next.Projects, id)
				// Destinations of a deleted project go with it.
				for dn := range next.Destinations {
					if projectID(dn) == id {
						delete(next.Destinations, dn)
					}
				}
				continue
			}
			delete(next.Destinations, name)
		}
	}
	next.Tokens = make(map[string]string, len(next.Projects))
	for id, p := range next.Projects {
		next.Tokens[p.CaptureToken] = id
	}
	return next
}
