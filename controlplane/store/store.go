// Package store is the control plane's storage layer: the etcd key layout,
// compare-and-swap writes, reads of projects, destinations and their
// health, sealing of secret inputs at rest, and page tokens. Its errors are
// gRPC statuses, ready for the services that call it to return.
package store

import (
	"context"
	"errors"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/resourcename"
)

// Store reads and writes the control plane's state in etcd.
type Store struct {
	Etcd *clientv3.Client
	Keys Keys
	// Sealer encrypts secret input values (Seal, Unseal).
	Sealer Sealer
}

// New returns a store over etcd with every key under prefix.
func New(etcd *clientv3.Client, prefix string, sealer Sealer) *Store {
	return &Store{Etcd: etcd, Keys: NewKeys(prefix), Sealer: sealer}
}

// casAttempts bounds read-modify-write retries when writes race and the
// client sent no etag.
const casAttempts = 8

// Retry runs a read-modify-write until it does not lose a race (f returns
// ErrConflict).
func (s *Store) Retry(ctx context.Context, f func() error) error {
	for range casAttempts {
		err := f()
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if ctx.Err() != nil {
			return Err(ctx.Err())
		}
	}
	return Err(ErrConflict)
}

// Txn runs ops if key is still at revision rev, returning the new
// revision, or ErrConflict when another write came first.
func (s *Store) Txn(ctx context.Context, key string, rev int64, ops ...clientv3.Op) (int64, error) {
	resp, err := s.Etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(ops...).Commit()
	if err != nil {
		return 0, Err(err)
	}
	if !resp.Succeeded {
		return 0, ErrConflict
	}
	return resp.Header.Revision, nil
}

// Put writes m at key (and runs also) if the key is still at revision
// rev, returning the new revision, or ErrConflict.
func (s *Store) Put(ctx context.Context, key string, rev int64, m proto.Message, also ...clientv3.Op) (int64, error) {
	val, err := proto.Marshal(m)
	if err != nil {
		return 0, status.Errorf(codes.Internal, "encoding: %v", err)
	}
	return s.Txn(ctx, key, rev, append([]clientv3.Op{clientv3.OpPut(key, string(val))}, also...)...)
}

// Project reads a project with its etag, and its mod revision.
func (s *Store) Project(ctx context.Context, id string) (*hogwirev1.Project, int64, error) {
	resp, err := s.Etcd.Get(ctx, s.Keys.Project(id))
	if err != nil {
		return nil, 0, Err(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, NotFound("project", resourcename.Project(id))
	}
	p := &hogwirev1.Project{}
	if err := proto.Unmarshal(resp.Kvs[0].Value, p); err != nil {
		return nil, 0, status.Errorf(codes.DataLoss, "decoding project %s: %v", id, err)
	}
	p.Etag = Etag(resp.Kvs[0].ModRevision)
	return p, resp.Kvs[0].ModRevision, nil
}

// Stored is a destination as it is in etcd: secret inputs sealed, no
// health.
type Stored struct {
	D   *hogwirev1.Destination
	Rev int64
}

// Destination reads a stored destination. project may be "-".
func (s *Store) Destination(ctx context.Context, project, id string) (*Stored, error) {
	if project == "-" {
		resp, err := s.Etcd.Get(ctx, s.Keys.AllDestinations(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return nil, Err(err)
		}
		for _, kv := range resp.Kvs {
			if strings.HasSuffix(string(kv.Key), "/"+id) {
				p := strings.TrimSuffix(strings.TrimPrefix(string(kv.Key), s.Keys.AllDestinations()), "/"+id)
				return s.Destination(ctx, p, id)
			}
		}
		return nil, NotFound("destination", resourcename.Destination(project, id))
	}
	resp, err := s.Etcd.Get(ctx, s.Keys.Destination(project, id))
	if err != nil {
		return nil, Err(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, NotFound("destination", resourcename.Destination(project, id))
	}
	d := &hogwirev1.Destination{}
	if err := proto.Unmarshal(resp.Kvs[0].Value, d); err != nil {
		return nil, status.Errorf(codes.DataLoss, "decoding destination %s: %v", id, err)
	}
	d.Revision = resp.Kvs[0].ModRevision
	return &Stored{D: d, Rev: resp.Kvs[0].ModRevision}, nil
}

// Health reads the health manager's record of a destination; nil when it
// has none.
func (s *Store) Health(ctx context.Context, project, id string) (*hogwirev1.DestinationHealth, error) {
	resp, err := s.Etcd.Get(ctx, s.Keys.Health(project, id))
	if err != nil {
		return nil, Err(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	h := &hogwirev1.DestinationHealth{}
	if err := proto.Unmarshal(resp.Kvs[0].Value, h); err != nil {
		return nil, status.Errorf(codes.DataLoss, "decoding health of %s: %v", id, err)
	}
	return h, nil
}

// ErrConflict means a compare-and-swap lost to a concurrent write.
var ErrConflict = errors.New("concurrent modification")

// Etag renders an etcd mod revision as an etag.
func Etag(rev int64) string { return strconv.FormatInt(rev, 10) }

// CheckEtag compares a client's etag with the stored revision. An empty
// etag skips the check (the write is still a compare-and-swap on the
// revision that was read).
func CheckEtag(etag string, rev int64) error {
	if etag == "" || etag == Etag(rev) {
		return nil
	}
	return status.Errorf(codes.Aborted, "etag %q is stale (current %q): read the resource again and retry", etag, Etag(rev))
}

// NotFound is the error for a missing resource.
func NotFound(what, name string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", what, name)
}

// Err turns an etcd error into a gRPC status.
func Err(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, ErrConflict) {
		return status.Error(codes.Aborted, "the resource changed concurrently: read it again and retry")
	}
	if errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return status.Error(codes.Unavailable, "etcd is unavailable")
	}
	return status.Errorf(codes.Unavailable, "etcd: %v", err)
}
