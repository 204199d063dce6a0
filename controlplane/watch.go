package controlplane

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
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

// configState is what one stream has sent its node: the node's view of the
// configuration, kept so that a change to one key can be sent as the whole
// resource it affects.
type configState struct {
	projects     map[string]*hogwirev1.Project     // by project id
	destinations map[string]*hogwirev1.Destination // by "project/id", without health
	health       map[string]*hogwirev1.DestinationHealth
}

// Watch streams configuration to one data-plane node (see the proto).
func (s *Server) Watch(stream hogwirev1.ConfigService_WatchServer) error {
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

	acks := make(chan int64, 16)
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
				case acks <- a.Revision:
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
			case rev := <-acks:
				reg.ack(ctx, rev)
			}
		}
	}()

	sendErr := make(chan error, 1)
	go func() { sendErr <- s.streamConfig(ctx, stream, sub.Revision) }()
	select {
	case err := <-sendErr:
		return err
	case err := <-recvErr:
		cancel()
		<-sendErr
		if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
			return nil
		}
		return nil // the node went away; it will reconnect
	}
}

// streamConfig sends a snapshot or the changes since rev, then every change.
func (s *Server) streamConfig(ctx context.Context, stream hogwirev1.ConfigService_WatchServer, rev int64) error {
	for {
		st, at, err := s.loadState(ctx, rev)
		snapshot := false
		if rev <= 0 || errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrFutureRev) {
			// The node is new, further behind than etcd's history, or ahead
			// of it (etcd was restored or replaced): send everything as of now.
			if st, at, err = s.loadState(ctx, 0); err != nil {
				return storeErr(err)
			}
			snapshot = true
		} else if err != nil {
			return storeErr(err)
		}
		if snapshot {
			if err := sendSnapshot(stream, st, at); err != nil {
				return err
			}
		}
		err = s.followChanges(ctx, stream, st, at)
		if !errors.Is(err, rpctypes.ErrCompacted) {
			return err
		}
		rev = 0 // compacted while watching: start over with a snapshot
	}
}

// loadState reads the configuration as of revision rev (0: now).
func (s *Server) loadState(ctx context.Context, rev int64) (*configState, int64, error) {
	st := &configState{
		projects:     map[string]*hogwirev1.Project{},
		destinations: map[string]*hogwirev1.Destination{},
		health:       map[string]*hogwirev1.DestinationHealth{},
	}
	prefix := s.keys.config()
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(snapshotPage)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.etcd.Get(ctx, from, opts...)
		if err != nil {
			return nil, 0, err
		}
		if rev <= 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if err := s.applyKV(st, kv, false); err != nil {
				return nil, 0, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return st, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// applyKV folds one key into the state and returns the resource it changed
// (a project or destination to send, or a deleted name).
func (s *Server) applyKV(st *configState, kv *mvccpb.KeyValue, deleted bool) error {
	_, err := s.apply(st, string(kv.Key), kv.Value, kv.ModRevision, deleted)
	return err
}

type change struct {
	project     *hogwirev1.Project
	destination *hogwirev1.Destination
	deleted     string
}

func (s *Server) apply(st *configState, key string, val []byte, modRev int64, deleted bool) (change, error) {
	switch {
	case strings.HasPrefix(key, s.keys.projects()):
		id := strings.TrimPrefix(key, s.keys.projects())
		if deleted {
			delete(st.projects, id)
			return change{deleted: projectName(id)}, nil
		}
		p := &hogwirev1.Project{}
		if err := proto.Unmarshal(val, p); err != nil {
			return change{}, status.Errorf(codes.DataLoss, "decoding %s: %v", key, err)
		}
		p.Etag = etagOf(modRev)
		st.projects[id] = p
		return change{project: p}, nil
	case strings.HasPrefix(key, s.keys.allDestinations()):
		rel := strings.TrimPrefix(key, s.keys.allDestinations())
		if deleted {
			d := st.destinations[rel]
			delete(st.destinations, rel)
			if d == nil {
				project, id, _ := strings.Cut(rel, "/")
				return change{deleted: destinationName(project, id)}, nil
			}
			return change{deleted: d.Name}, nil
		}
		d := &hogwirev1.Destination{}
		if err := proto.Unmarshal(val, d); err != nil {
			return change{}, status.Errorf(codes.DataLoss, "decoding %s: %v", key, err)
		}
		d.Revision = modRev
		if err := s.unseal(d); err != nil {
			return change{}, err
		}
		st.destinations[rel] = d
		return change{destination: withHealth(d, st.health[rel])}, nil
	case strings.HasPrefix(key, s.keys.allHealth()):
		rel := strings.TrimPrefix(key, s.keys.allHealth())
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
	out.Etag = etagOf(d.Revision)
	return out
}

func sendSnapshot(stream hogwirev1.ConfigService_WatchServer, st *configState, rev int64) error {
	var all []*hogwirev1.WatchResponse
	cur := &hogwirev1.WatchResponse{Revision: rev, Snapshot: true}
	flush := func() {
		all = append(all, cur)
		cur = &hogwirev1.WatchResponse{Revision: rev, Snapshot: true}
	}
	n := 0
	for _, p := range st.projects {
		cur.Projects = append(cur.Projects, p)
		if n++; n%snapshotChunk == 0 {
			flush()
		}
	}
	for rel, d := range st.destinations {
		cur.Destinations = append(cur.Destinations, withHealth(d, st.health[rel]))
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

// followChanges sends one response per etcd revision after rev.
func (s *Server) followChanges(ctx context.Context, stream hogwirev1.ConfigService_WatchServer, st *configState, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.etcd.Watch(wctx, s.keys.config(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return rpctypes.ErrCompacted
		}
		if err := resp.Err(); err != nil {
			return status.Errorf(codes.Unavailable, "watching etcd: %v", err)
		}
		var out *hogwirev1.WatchResponse
		for _, ev := range resp.Events {
			if out != nil && out.Revision != ev.Kv.ModRevision {
				if err := stream.Send(out); err != nil {
					return err
				}
				out = nil
			}
			if out == nil {
				out = &hogwirev1.WatchResponse{Revision: ev.Kv.ModRevision}
			}
			c, err := s.apply(st, string(ev.Kv.Key), ev.Kv.Value, ev.Kv.ModRevision, ev.Type == clientv3.EventTypeDelete)
			if err != nil {
				return err
			}
			switch {
			case c.project != nil:
				out.Projects = append(out.Projects, c.project)
			case c.destination != nil:
				out.Destinations = append(out.Destinations, c.destination)
			case c.deleted != "":
				out.Deleted = append(out.Deleted, c.deleted)
			}
		}
		if out != nil {
			if err := stream.Send(out); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return status.Error(codes.Unavailable, "etcd watch ended")
}

// nodeRegistration is a node's entry in etcd, alive while its lease is.
type nodeRegistration struct {
	s     *Server
	node  *hogwirev1.Node
	lease clientv3.LeaseID
	stop  context.CancelFunc
}

func (s *Server) registerNode(ctx context.Context, sub *hogwirev1.WatchRequest_Subscribe) (*nodeRegistration, error) {
	lease, err := s.etcd.Grant(ctx, nodeTTL)
	if err != nil {
		return nil, storeErr(err)
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	ka, err := s.etcd.KeepAlive(kctx, lease.ID)
	if err != nil {
		stop()
		return nil, storeErr(err)
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
	_, err = r.s.etcd.Put(ctx, r.s.keys.node(r.node.NodeId), string(b), clientv3.WithLease(r.lease))
	return storeErr(err)
}

func (r *nodeRegistration) ack(ctx context.Context, rev int64) {
	if rev <= r.node.AckedRevision {
		return
	}
	r.node.AckedRevision = rev
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
	if _, err := r.s.etcd.Revoke(ctx, r.lease); err != nil {
		r.s.log.Debug("revoking node lease", "node", r.node.NodeId, "err", err)
	}
}

func (s *Server) ListNodes(ctx context.Context, _ *hogwirev1.ListNodesRequest) (*hogwirev1.ListNodesResponse, error) {
	resp, err := s.etcd.Get(ctx, s.keys.nodes(), clientv3.WithPrefix())
	if err != nil {
		return nil, storeErr(err)
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
