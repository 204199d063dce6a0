// Package configsync keeps a data-plane node's copy of the configuration
// in step with the control plane over ConfigService.Watch.
//
// The node always has a complete, immutable Snapshot to read: a change is
// applied to a copy that replaces the current one atomically, so readers
// never lock and never see half an update. When the control plane is
// unreachable the node keeps serving the last snapshot and reconnects with
// its revision, so it receives exactly the changes it missed.
//
// A destination the node cannot run (Config.Check fails: a version skew
// between control plane and node, say) is rejected: the node keeps the
// version it had, or none, and says so in its acks (a NACK carrying a
// google.rpc.Status, as in Envoy's xDS), which the control plane shows
// in ListNodes. A later version of the destination is checked again.
package configsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/configcache"
	"github.com/hogwire/hogwire/rpcclient"
)

// Snapshot is one consistent version of the configuration; see package
// configcache.
type Snapshot = configcache.Snapshot

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
	// Check, when set, says whether the node can run a destination it was
	// sent; one it cannot is rejected (see the package doc).
	Check func(*hogwirev1.Destination) error
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
	// rejected are the destinations Check refused, by name; only the
	// Syncer's goroutine uses it.
	rejected map[string]rejection
}

// rejection is a destination version the node refused, and why.
type rejection struct {
	revision int64
	err      error
}

// New returns a Syncer; call Run to start it.
func New(cfg Config) *Syncer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	s := &Syncer{cfg: cfg, log: cfg.Logger, ready: make(chan struct{}), rejected: map[string]rejection{}}
	s.cur.Store(configcache.Empty())
	return s
}

// Current returns the latest snapshot. It never blocks.
func (s *Syncer) Current() *Snapshot { return s.cur.Load() }

// Ready is closed once the first full snapshot has been applied.
func (s *Syncer) Ready() <-chan struct{} { return s.ready }

// Run follows the control plane until ctx ends, reconnecting with backoff
// and jitter, and keeping the last configuration meanwhile. An outage is
// logged once (rpcclient.Keep), not at every retry.
func (s *Syncer) Run(ctx context.Context) error {
	rpcclient.Keep(ctx, s.log, "config stream", rpcclient.KeepOptions{Initial: 100 * time.Millisecond, Max: s.cfg.MaxBackoff}, s.follow)
	return nil
}

// follow runs one Watch stream until it breaks; connected is called at
// its first message.
func (s *Syncer) follow(ctx context.Context, connected func()) error {
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
		if len(pending) == 0 {
			connected()
		}
		pending = append(pending, m)
		if m.More {
			continue
		}
		prev := s.Current()
		next := s.check(prev, prev.Apply(pending...))
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
		ack := &hogwirev1.WatchRequest_Ack{Revision: next.Revision, ErrorDetail: s.nack()}
		if err := stream.Send(&hogwirev1.WatchRequest{Kind: &hogwirev1.WatchRequest_Ack_{Ack: ack}}); err != nil {
			return err
		}
	}
}

// check applies Config.Check to the destinations next brings, and returns
// next with each rejected one replaced by prev's version (or removed).
func (s *Syncer) check(prev, next *Snapshot) *Snapshot {
	for name, r := range s.rejected {
		if d, ok := next.Destinations[name]; !ok || d.Revision != r.revision {
			delete(s.rejected, name) // deleted or replaced: check again below
		}
	}
	if s.cfg.Check == nil {
		return next
	}
	var fixed map[string]*hogwirev1.Destination
	for name, d := range next.Destinations {
		old, had := prev.Destinations[name]
		if had && (old == d || old.Revision == d.Revision) {
			continue // unchanged, or only its health changed
		}
		r, known := s.rejected[name]
		if !known {
			err := s.cfg.Check(d)
			if err == nil {
				continue
			}
			r = rejection{revision: d.Revision, err: err}
			s.rejected[name] = r
			s.log.Error("rejecting a destination this node cannot run; keeping its previous version",
				"destination", name, "revision", d.Revision, "err", err, "previous_revision", old.GetRevision())
		}
		if fixed == nil {
			fixed = maps.Clone(next.Destinations)
		}
		if had && old.Revision != r.revision {
			fixed[name] = old
		} else {
			delete(fixed, name)
		}
	}
	if fixed == nil {
		return next
	}
	out := *next
	out.Destinations = fixed
	return &out
}

// nack describes what the node rejects, for its acks; nil when nothing.
func (s *Syncer) nack() *spb.Status {
	if len(s.rejected) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(s.rejected))
	st := &spb.Status{Code: int32(codes.FailedPrecondition),
		Message: fmt.Sprintf("%d destination(s) rejected; the node runs their previous version, if any: %s: %v",
			len(names), names[0], s.rejected[names[0]].err)}
	for _, name := range names {
		r := s.rejected[name]
		a, err := anypb.New(&errdetails.ResourceInfo{ResourceType: "hogwire.v1.Destination", ResourceName: name,
			Description: fmt.Sprintf("revision %d: %v", r.revision, r.err)})
		if err == nil {
			st.Details = append(st.Details, a)
		}
	}
	return st
}
