package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/configcache"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/resourcename"
)

const (
	// nodeTTL is how long a node stays listed after its stream breaks
	// without a goodbye (a control-plane crash).
	nodeTTL = 15 // seconds
	// snapshotChunk bounds the resources in one snapshot message.
	snapshotChunk = 200
	// snapshotPage bounds the keys read from etcd at once for a snapshot.
	snapshotPage = 1000
)

// configServer serves ConfigService: configuration streamed to data-plane
// nodes, each registered in etcd while its stream is open.
type configServer struct {
	hogwirev1.UnimplementedConfigServiceServer
	store     *store.Store
	log       *slog.Logger
	now       func() time.Time
	replicaID string
	// cache is the configuration every Watch stream reads; feed keeps it
	// current while any stream is open.
	cache *configcache.Cache
	feed  configFeed
	// dests serves kept revisions (GetDestinationRevision).
	dests *destinationServer
}

// nodeServer serves NodeService: the nodes registered by ConfigService.
type nodeServer struct {
	hogwirev1.UnimplementedNodeServiceServer
	store *store.Store
}

// configState is the configuration as etcd stores it, key by key: what
// the config feed folds etcd's changes into, so that a change to one key
// can be sent as the whole resource it affects.
type configState struct {
	projects     map[string]*hogwirev1.Project     // by project id
	destinations map[string]*hogwirev1.Destination // by "project/id", without health
	health       map[string]*hogwirev1.DestinationHealth
}

// snapshot is the state as nodes see it, at rev.
func (st *configState) snapshot(rev int64) *configcache.Snapshot {
	projects := make([]*hogwirev1.Project, 0, len(st.projects))
	for _, p := range st.projects {
		projects = append(projects, p)
	}
	dests := make([]*hogwirev1.Destination, 0, len(st.destinations))
	for rel, d := range st.destinations {
		dests = append(dests, withHealth(d, st.health[rel]))
	}
	return configcache.New(rev, projects, dests)
}

// Watch streams configuration to one data-plane node (see the proto). All
// streams of a replica read one configcache.Cache, which one etcd watch
// keeps current (see configFeed).
func (s *configServer) Watch(stream hogwirev1.ConfigService_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	sub := first.GetSubscribe()
	if sub == nil {
		return invalid("subscribe", "the first message must be a subscribe")
	}
	if sub.NodeId == "" || len(sub.NodeId) > 253 {
		return invalid("subscribe.node_id", "is required (at most 253 bytes)")
	}
	reg, err := s.registerNode(ctx, sub)
	if err != nil {
		return err
	}
	defer reg.close()
	log := s.log.With("node", sub.NodeId)
	log.Info("node connected", "revision", sub.Revision, "address", sub.Address)
	defer log.Info("node disconnected")

	acks := make(chan *hogwirev1.WatchRequest_Ack, 16)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if a := m.GetAck(); a != nil {
				select {
				case acks <- a:
				default: // a newer ack will follow; only the latest matters
				}
			}
		}
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case a := <-acks:
				reg.ack(ctx, a, log)
			}
		}
	}()

	sendErr := make(chan error, 1)
	go func() { sendErr <- s.streamConfig(ctx, stream, sub.Revision) }()
	select {
	case err := <-sendErr:
		return err
	case <-recvErr:
		// The node went away; it will reconnect.
		cancel()
		<-sendErr
		return nil
	}
}

// errCatchUp means etcd no longer has (or does not yet have) the history a
// node would resume from: it gets a snapshot.
var errCatchUp = errors.New("cannot resume from the node's revision")

// streamConfig sends what the node at rev misses, then every change.
func (s *configServer) streamConfig(ctx context.Context, stream hogwirev1.ConfigService_WatchServer, rev int64) error {
	run, release := s.feed.subscribe(s)
	defer release()
	select {
	case <-run.ready:
	case <-run.broken:
		return status.Error(codes.Unavailable, "the configuration feed from etcd broke; reconnect")
	case <-ctx.Done():
		return nil
	}
	if rev > 0 {
		// A node that was connected to another replica may be a little
		// ahead of this one: wait for this replica to catch up.
		deadline := time.Now().Add(2 * time.Second)
		for _, cur := s.cache.Range(); rev > cur && time.Now().Before(deadline); _, cur = s.cache.Range() {
			run.requestProgress()
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
		}
		// A node further behind than the cache's history is brought up to
		// the history's start from etcd's own history.
		if base, _ := s.cache.Range(); rev < base {
			var err error
			if rev, err = s.catchUp(ctx, stream, rev, base); errors.Is(err, errCatchUp) {
				rev = 0
			} else if err != nil {
				return err
			}
		}
	}
	for {
		changes, snap, changed := s.cache.Since(rev)
		if snap != nil {
			if err := sendSnapshot(stream, snap); err != nil {
				return err
			}
			rev = snap.Revision
		}
		for _, m := range changes {
			if err := stream.Send(m); err != nil {
				return err
			}
			rev = m.Revision
		}
		select {
		case <-changed:
		case <-run.broken:
			return status.Error(codes.Unavailable, "the configuration feed from etcd broke; reconnect")
		case <-ctx.Done():
			return nil
		}
	}
}

// catchUp sends, from etcd's history, the changes after rev up to until,
// and returns until.
func (s *configServer) catchUp(ctx context.Context, stream hogwirev1.ConfigService_WatchServer, rev, until int64) (int64, error) {
	st, _, err := s.loadState(ctx, rev)
	if errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrFutureRev) {
		return 0, errCatchUp
	}
	if err != nil {
		return 0, store.Err(err)
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.store.Etcd.Watch(wctx, s.store.Keys.Config(), clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
			// Until etcd reports progress, the history may still be arriving.
			_ = s.store.Etcd.RequestProgress(wctx)
		case resp, ok := <-wch:
			if !ok {
				return 0, status.Error(codes.Unavailable, "etcd watch ended")
			}
			if resp.CompactRevision != 0 {
				return 0, errCatchUp
			}
			if err := resp.Err(); err != nil {
				return 0, status.Errorf(codes.Unavailable, "watching etcd: %v", err)
			}
			if resp.IsProgressNotify() && resp.Header.Revision >= until {
				return until, nil
			}
			for _, m := range s.changes(st, resp.Events) {
				if m.err != nil {
					return 0, m.err
				}
				if m.resp.Revision > until {
					return until, nil
				}
				if err := stream.Send(m.resp); err != nil {
					return 0, err
				}
				if m.resp.Revision == until {
					return until, nil
				}
			}
		}
	}
}

// loadState reads the configuration as of revision rev (0: now).
func (s *configServer) loadState(ctx context.Context, rev int64) (*configState, int64, error) {
	st := &configState{
		projects:     map[string]*hogwirev1.Project{},
		destinations: map[string]*hogwirev1.Destination{},
		health:       map[string]*hogwirev1.DestinationHealth{},
	}
	prefix := s.store.Keys.Config()
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(snapshotPage)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.store.Etcd.Get(ctx, from, opts...)
		if err != nil {
			return nil, 0, err
		}
		if rev <= 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if _, err := s.apply(st, string(kv.Key), kv.Value, kv.ModRevision, false); err != nil {
				return nil, 0, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return st, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

type change struct {
	project     *hogwirev1.Project
	destination *hogwirev1.Destination
	deleted     string
}

func (s *configServer) apply(st *configState, key string, val []byte, modRev int64, deleted bool) (change, error) {
	switch {
	case strings.HasPrefix(key, s.store.Keys.Projects()):
		id := strings.TrimPrefix(key, s.store.Keys.Projects())
		if deleted {
			delete(st.projects, id)
			return change{deleted: resourcename.Project(id)}, nil
		}
		p := &hogwirev1.Project{}
		if err := proto.Unmarshal(val, p); err != nil {
			return change{}, status.Errorf(codes.DataLoss, "decoding %s: %v", key, err)
		}
		p.Etag = store.Etag(modRev)
		st.projects[id] = p
		return change{project: p}, nil
	case strings.HasPrefix(key, s.store.Keys.AllDestinations()):
		rel := strings.TrimPrefix(key, s.store.Keys.AllDestinations())
		if deleted {
			d := st.destinations[rel]
			delete(st.destinations, rel)
			if d == nil {
				project, id, _ := strings.Cut(rel, "/")
				return change{deleted: resourcename.Destination(project, id)}, nil
			}
			return change{deleted: d.Name}, nil
		}
		d := &hogwirev1.Destination{}
		if err := proto.Unmarshal(val, d); err != nil {
			return change{}, status.Errorf(codes.DataLoss, "decoding %s: %v", key, err)
		}
		d.Revision = modRev
		if err := s.store.Unseal(d); err != nil {
			return change{}, err
		}
		st.destinations[rel] = d
		return change{destination: withHealth(d, st.health[rel])}, nil
	case strings.HasPrefix(key, s.store.Keys.AllHealth()):
		rel := strings.TrimPrefix(key, s.store.Keys.AllHealth())
		if deleted {
			delete(st.health, rel)
		} else {
			h := &hogwirev1.DestinationHealth{}
			if err := proto.Unmarshal(val, h); err != nil {
				return change{}, status.Errorf(codes.DataLoss, "decoding %s: %v", key, err)
			}
			st.health[rel] = h
		}
		if d := st.destinations[rel]; d != nil {
			return change{destination: withHealth(d, st.health[rel])}, nil
		}
	}
	return change{}, nil
}

// withHealth returns d as nodes see it: secrets in the clear, health set.
func withHealth(d *hogwirev1.Destination, h *hogwirev1.DestinationHealth) *hogwirev1.Destination {
	out := proto.CloneOf(d)
	if h == nil {
		h = &hogwirev1.DestinationHealth{State: hogwirev1.HealthState_HEALTH_STATE_HEALTHY, StateTime: d.UpdateTime}
	}
	out.Health = h
	out.Etag = store.Etag(d.Revision)
	return out
}

func sendSnapshot(stream hogwirev1.ConfigService_WatchServer, snap *configcache.Snapshot) error {
	var all []*hogwirev1.WatchResponse
	cur := &hogwirev1.WatchResponse{Revision: snap.Revision, Snapshot: true}
	flush := func() {
		all = append(all, cur)
		cur = &hogwirev1.WatchResponse{Revision: snap.Revision, Snapshot: true}
	}
	n := 0
	for _, p := range snap.Projects {
		cur.Projects = append(cur.Projects, p)
		if n++; n%snapshotChunk == 0 {
			flush()
		}
	}
	for _, d := range snap.Destinations {
		cur.Destinations = append(cur.Destinations, d)
		if n++; n%snapshotChunk == 0 {
			flush()
		}
	}
	if len(cur.Projects)+len(cur.Destinations) > 0 || len(all) == 0 {
		flush()
	}
	for i, m := range all {
		m.More = i < len(all)-1
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// revisionChange is the response for one etcd revision, or the error of
// decoding it.
type revisionChange struct {
	resp *hogwirev1.WatchResponse
	err  error
}

// changes folds etcd events into st and returns one response per revision.
func (s *configServer) changes(st *configState, events []*clientv3.Event) []revisionChange {
	var out []revisionChange
	var cur *hogwirev1.WatchResponse
	for _, ev := range events {
		if cur == nil || cur.Revision != ev.Kv.ModRevision {
			cur = &hogwirev1.WatchResponse{Revision: ev.Kv.ModRevision}
			out = append(out, revisionChange{resp: cur})
		}
		c, err := s.apply(st, string(ev.Kv.Key), ev.Kv.Value, ev.Kv.ModRevision, ev.Type == clientv3.EventTypeDelete)
		if err != nil {
			return append(out, revisionChange{err: err})
		}
		switch {
		case c.project != nil:
			cur.Projects = append(cur.Projects, c.project)
		case c.destination != nil:
			cur.Destinations = append(cur.Destinations, c.destination)
		case c.deleted != "":
			cur.Deleted = append(cur.Deleted, c.deleted)
		}
	}
	return out
}

// configFeed keeps the replica's config cache current with one etcd watch
// while any node is connected, whatever the number of nodes.
type configFeed struct {
	mu       sync.Mutex
	watchers int
	run      atomic.Pointer[feedRun]
	stop     context.CancelFunc
	done     chan struct{}
}

// feedRun is one attempt of the feed: ready once the cache holds the
// state of etcd, broken if the watch failed (streams then end, so that
// nodes reconnect, possibly to a healthier replica).
type feedRun struct {
	ready, broken chan struct{}
	progress      chan struct{}
}

func (r *feedRun) requestProgress() {
	select {
	case r.progress <- struct{}{}:
	default:
	}
}

// subscribe counts a stream in, starting the feed for the first one, and
// returns the feed's current run and the stream's release.
func (f *configFeed) subscribe(s *configServer) (*feedRun, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watchers++
	if f.watchers == 1 {
		if f.done != nil {
			<-f.done // the previous feed is stopping
		}
		ctx, stop := context.WithCancel(context.Background())
		f.stop, f.done = stop, make(chan struct{})
		run := newFeedRun()
		f.run.Store(run)
		go s.runFeed(ctx, run, f.done)
	}
	return f.run.Load(), func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.watchers--; f.watchers == 0 {
			f.stop()
		}
	}
}

func newFeedRun() *feedRun {
	return &feedRun{ready: make(chan struct{}), broken: make(chan struct{}), progress: make(chan struct{}, 1)}
}

// runFeed follows etcd into the cache until ctx ends, starting over after
// a failure.
func (s *configServer) runFeed(ctx context.Context, run *feedRun, done chan struct{}) {
	defer close(done)
	backoff := 100 * time.Millisecond
	for {
		err := s.feedOnce(ctx, run)
		if ctx.Err() != nil {
			return
		}
		close(run.broken)
		s.log.Warn("config feed from etcd broke; starting over", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		run = newFeedRun()
		s.feed.run.Store(run)
	}
}

// feedOnce loads the configuration into the cache, then applies every
// change; after a compaction it loads again.
func (s *configServer) feedOnce(ctx context.Context, run *feedRun) error {
	for {
		st, rev, err := s.loadState(ctx, 0)
		if err != nil {
			return store.Err(err)
		}
		s.cache.Set(st.snapshot(rev))
		select {
		case <-run.ready:
		default:
			close(run.ready)
		}
		err = s.followChanges(ctx, run, st, rev)
		if !errors.Is(err, rpctypes.ErrCompacted) {
			return err
		}
	}
}

// followChanges applies etcd's changes after rev to the cache.
func (s *configServer) followChanges(ctx context.Context, run *feedRun, st *configState, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.store.Etcd.Watch(wctx, s.store.Keys.Config(), clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-run.progress:
			_ = s.store.Etcd.RequestProgress(wctx)
		case resp, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return status.Error(codes.Unavailable, "etcd watch ended")
			}
			if resp.CompactRevision != 0 {
				return rpctypes.ErrCompacted
			}
			if err := resp.Err(); err != nil {
				return status.Errorf(codes.Unavailable, "watching etcd: %v", err)
			}
			if resp.IsProgressNotify() {
				s.cache.Advance(resp.Header.Revision)
				continue
			}
			for _, m := range s.changes(st, resp.Events) {
				if m.err != nil {
					return m.err
				}
				s.cache.Update(m.resp)
			}
		}
	}
}

// nodeRegistration is a node's entry in etcd, alive while its lease is.
type nodeRegistration struct {
	s     *configServer
	node  *hogwirev1.Node
	lease clientv3.LeaseID
	stop  context.CancelFunc
}

func (s *configServer) registerNode(ctx context.Context, sub *hogwirev1.WatchRequest_Subscribe) (*nodeRegistration, error) {
	lease, err := s.store.Etcd.Grant(ctx, nodeTTL)
	if err != nil {
		return nil, store.Err(err)
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	ka, err := s.store.Etcd.KeepAlive(kctx, lease.ID)
	if err != nil {
		stop()
		return nil, store.Err(err)
	}
	go func() {
		for range ka { // drain until kctx ends
		}
	}()
	r := &nodeRegistration{s: s, lease: lease.ID, stop: stop, node: &hogwirev1.Node{
		NodeId: sub.NodeId, Address: sub.Address, Version: sub.Version,
		AckedRevision: sub.Revision, ConnectTime: timestamppb.New(s.now()), Controlplane: s.replicaID,
	}}
	if err := r.put(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *nodeRegistration) put(ctx context.Context) error {
	b, err := proto.Marshal(r.node)
	if err != nil {
		return status.Errorf(codes.Internal, "encoding node: %v", err)
	}
	_, err = r.s.store.Etcd.Put(ctx, r.s.store.Keys.Node(r.node.NodeId), string(b), clientv3.WithLease(r.lease))
	return store.Err(err)
}

// ack records what the node applied: its revision, and what it rejected
// (a NACK), which is logged when it changes.
func (r *nodeRegistration) ack(ctx context.Context, a *hogwirev1.WatchRequest_Ack, log *slog.Logger) {
	rejected := a.GetErrorDetail()
	if a.GetRevision() <= r.node.AckedRevision && proto.Equal(rejected, r.node.Rejected) {
		return
	}
	if rejected != nil && !proto.Equal(rejected, r.node.Rejected) {
		log.Warn("node rejected configuration", "revision", a.GetRevision(), "reason", rejected.GetMessage())
	}
	r.node.AckedRevision = max(r.node.AckedRevision, a.GetRevision())
	r.node.Rejected = rejected
	if err := r.put(ctx); err != nil && ctx.Err() == nil {
		r.s.log.Warn("recording node ack", "node", r.node.NodeId, "err", err)
	}
}

// close ends the keep-alive and revokes the lease, which removes the
// node's entry (unless a newer stream of the same node has re-put it).
func (r *nodeRegistration) close() {
	r.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := r.s.store.Etcd.Revoke(ctx, r.lease); err != nil {
		r.s.log.Debug("revoking node lease", "node", r.node.NodeId, "err", err)
	}
}

func (s *nodeServer) ListNodes(ctx context.Context, _ *hogwirev1.ListNodesRequest) (*hogwirev1.ListNodesResponse, error) {
	resp, err := s.store.Etcd.Get(ctx, s.store.Keys.Nodes(), clientv3.WithPrefix())
	if err != nil {
		return nil, store.Err(err)
	}
	out := &hogwirev1.ListNodesResponse{}
	for _, kv := range resp.Kvs {
		n := &hogwirev1.Node{}
		if err := proto.Unmarshal(kv.Value, n); err != nil {
			return nil, status.Errorf(codes.DataLoss, "decoding %s: %v", kv.Key, err)
		}
		out.Nodes = append(out.Nodes, n)
	}
	return out, nil
}
