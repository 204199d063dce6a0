package controlplane

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/inputs"
	"github.com/hogwire/hogwire/resourcename"
)

// Destination history: every write of a destination through the API also
// writes, in the same etcd transaction, a DestinationRevision under
//
//	history/{project}/{destination}/{previous revision, 20 digits}
//
// outside "config/", so data-plane nodes never receive it. The key is named
// after the revision the write replaced (0 for the creation): the
// destination key is compare-and-swapped on that revision, so each name is
// written at most once, and the keys sort in write order. The record's own
// mod revision is the destination's revision after the write.
//
// Records hold no secret values (only whether one is set) and no bytecode,
// so they are small, need no re-sealing when keys rotate, and leak nothing.

// maxRevisions bounds the revisions kept per destination; the oldest go
// first.
const maxRevisions = 100

// historyOps returns the operations that record the write of next, which
// replaces the destination stored at prevRev (0: it is created), or nil when
// the write changes nothing a user set. before is the plaintext destination
// as it was (nil on creation), next the plaintext as it will be.
func (s *destinationServer) historyOps(ctx context.Context, project, id string, prevRev int64, before, next *hogwirev1.Destination) ([]clientv3.Op, error) {
	var changed []string
	if before != nil {
		if changed = changedFields(before, next); len(changed) == 0 {
			return nil, nil
		}
	}
	rec := &hogwirev1.DestinationRevision{
		CreateTime:    next.UpdateTime,
		ChangedFields: changed,
		Destination:   revisionSnapshot(next),
	}
	val, err := proto.Marshal(rec)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encoding revision: %v", err)
	}
	prefix := s.store.Keys.History(project, id)
	ops := []clientv3.Op{clientv3.OpPut(prefix+revisionKey(prevRev), string(val))}
	if prevRev == 0 {
		return ops, nil
	}
	// Keep maxRevisions including this one: find the oldest of the newest
	// maxRevisions-1 and delete everything before it.
	resp, err := s.store.Etcd.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(maxRevisions-1))
	if err != nil {
		return nil, store.Err(err)
	}
	if len(resp.Kvs) == maxRevisions-1 && resp.More {
		oldestKept := string(resp.Kvs[len(resp.Kvs)-1].Key)
		ops = append(ops, clientv3.OpDelete(prefix, clientv3.WithRange(oldestKept)))
	}
	return ops, nil
}

// historyDelete removes every revision of a destination.
func (s *destinationServer) historyDelete(project, id string) clientv3.Op {
	return clientv3.OpDelete(s.store.Keys.History(project, id), clientv3.WithPrefix())
}

func revisionKey(prevRev int64) string { return fmt.Sprintf("%020d", prevRev) }

// revisionSnapshot is d without secrets, bytecode and server state.
func revisionSnapshot(d *hogwirev1.Destination) *hogwirev1.Destination {
	out := proto.CloneOf(d)
	out.Bytecode, out.Health, out.Etag, out.Revision = nil, nil, "", 0
	redactSecrets(out)
	for _, in := range out.Inputs {
		in.Bytecode, in.BytecodeJson = nil, ""
	}
	if out.Filters != nil {
		out.Filters.Bytecode = nil
	}
	if out.Masking != nil {
		out.Masking.Bytecode = nil
	}
	return out
}

// inputText is an input's value as JSON, in its declared key order,
// whichever form it is stored in.
func inputText(in *hogwirev1.InputValue) string {
	v, ok, err := inputs.Of(in)
	if !ok || err != nil {
		return ""
	}
	return v.JSON()
}

// changedFields names the user-settable fields that differ between two
// plaintext versions of a destination, inputs by key.
func changedFields(plainA, plainB *hogwirev1.Destination) []string {
	a, b := revisionSnapshot(plainA), revisionSnapshot(plainB)
	var out []string
	add := func(field string, same bool) {
		if !same {
			out = append(out, field)
		}
	}
	add("display_name", a.DisplayName == b.DisplayName)
	add("description", a.Description == b.Description)
	add("enabled", a.Enabled == b.Enabled)
	add("hog", a.Hog == b.Hog)
	add("inputs_schema", equalSchemas(a.InputsSchema, b.InputsSchema))
	// The snapshots have no secret values: compare the plaintexts.
	for _, key := range inputKeys(a, b) {
		ia, ib := plainA.Inputs[key], plainB.Inputs[key]
		add("inputs."+key, inputText(ia) == inputText(ib) && ia.GetSecretSet() == ib.GetSecretSet())
	}
	add("filters", proto.Equal(a.Filters, b.Filters))
	add("masking", proto.Equal(a.Masking, b.Masking))
	add("limits", proto.Equal(a.Limits, b.Limits))
	add("batch", proto.Equal(a.Batch, b.Batch))
	//lint:ignore SA1019 a deprecated field still changes
	add("notification_destination", a.NotificationDestination == b.NotificationDestination)
	return out
}

func equalSchemas(a, b []*hogwirev1.InputSchema) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// inputKeys returns the input keys of a and b, in schema order and then any
// others in sorted order.
func inputKeys(a, b *hogwirev1.Destination) []string {
	seen := map[string]bool{}
	var keys []string
	for _, d := range []*hogwirev1.Destination{a, b} {
		for _, sc := range d.InputsSchema {
			if !seen[sc.Key] {
				seen[sc.Key] = true
				keys = append(keys, sc.Key)
			}
		}
	}
	var rest []string
	for _, d := range []*hogwirev1.Destination{a, b} {
		for k := range d.Inputs {
			if !seen[k] {
				seen[k] = true
				rest = append(rest, k)
			}
		}
	}
	slices.Sort(rest)
	return append(keys, rest...)
}

func (s *destinationServer) ListDestinationRevisions(ctx context.Context, req *hogwirev1.ListDestinationRevisionsRequest) (*hogwirev1.ListDestinationRevisionsResponse, error) {
	project, id, err := resourcename.ParseDestination(req.GetParent())
	if err != nil {
		return nil, invalid("parent", "%v", err)
	}
	if project == "-" {
		st, err := s.store.Destination(ctx, project, id)
		if err != nil {
			return nil, err
		}
		project, _, _ = resourcename.ParseDestination(st.D.Name)
	}
	after, ok := store.DecodePageToken("revisions", req.GetPageToken())
	if !ok {
		return nil, invalid("page_token", "is not a token from a previous ListDestinationRevisions call with the same parent")
	}
	prefix := s.store.Keys.History(project, id)
	n := store.PageSize(req.GetPageSize())
	opts := []clientv3.OpOption{clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(n))}
	if after == "" {
		opts = append(opts, clientv3.WithPrefix())
	} else {
		opts = append(opts, clientv3.WithRange(prefix+after))
	}
	resp, err := s.store.Etcd.Get(ctx, prefix, opts...)
	if err != nil {
		return nil, store.Err(err)
	}
	if len(resp.Kvs) == 0 && after == "" {
		// No history: say whether that is because the destination does not
		// exist (or was created before revisions were kept).
		if _, err := s.store.Destination(ctx, project, id); err != nil {
			return nil, err
		}
	}
	name := resourcename.Destination(project, id)
	out := &hogwirev1.ListDestinationRevisionsResponse{}
	for _, kv := range resp.Kvs {
		rec := &hogwirev1.DestinationRevision{}
		if err := proto.Unmarshal(kv.Value, rec); err != nil {
			return nil, status.Errorf(codes.DataLoss, "decoding %s: %v", kv.Key, err)
		}
		rec.Revision = kv.ModRevision
		rec.Name = name + "/revisions/" + strconv.FormatInt(kv.ModRevision, 10)
		if rec.Destination != nil {
			rec.Destination.Name, rec.Destination.Revision = name, kv.ModRevision
		}
		out.Revisions = append(out.Revisions, rec)
	}
	if resp.More && len(resp.Kvs) > 0 {
		out.NextPageToken = store.EncodePageToken("revisions", strings.TrimPrefix(string(resp.Kvs[len(resp.Kvs)-1].Key), prefix))
	}
	return out, nil
}

// revisionAt returns the kept revision of a destination in effect at rev
// (a Destination.revision): the newest history record written at or
// before it, its Revision set. Writes that change nothing a user sets
// (a re-seal, say) move the destination's revision without a record, so
// rev itself is often not a record's. FailedPrecondition, saying why,
// when that record is no longer kept.
func revisionAt(ctx context.Context, st *store.Store, project, id string, rev int64) (*hogwirev1.DestinationRevision, error) {
	name := resourcename.Destination(project, id)
	if rev <= 0 {
		return nil, revisionGone("%s: the invocation recorded no revision of it (it was recorded before revisions were)", name)
	}
	prefix := st.Keys.History(project, id)
	resp, err := st.Etcd.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, store.Err(err)
	}
	// Keys sort in write order, and so do their mod revisions.
	var at []byte
	for _, kv := range resp.Kvs {
		if kv.ModRevision > rev {
			break
		}
		at = kv.Key
	}
	if at == nil {
		if len(resp.Kvs) == 0 {
			return nil, revisionGone("revision %d of %s is no longer kept: the destination has no history", rev, name)
		}
		return nil, revisionGone("revision %d of %s is no longer kept in its history (the oldest kept is %d; at most %d are kept)",
			rev, name, resp.Kvs[0].ModRevision, maxRevisions)
	}
	got, err := st.Etcd.Get(ctx, string(at))
	if err != nil {
		return nil, store.Err(err)
	}
	if len(got.Kvs) == 0 {
		return nil, revisionGone("revision %d of %s is no longer kept in its history", rev, name)
	}
	rec := &hogwirev1.DestinationRevision{}
	if err := proto.Unmarshal(got.Kvs[0].Value, rec); err != nil {
		return nil, status.Errorf(codes.DataLoss, "decoding %s: %v", at, err)
	}
	rec.Revision = got.Kvs[0].ModRevision
	rec.Name = name + "/revisions/" + strconv.FormatInt(rec.Revision, 10)
	return rec, nil
}

// revisionGone is the error of a revision that cannot be run any more.
func revisionGone(format string, args ...any) error {
	return status.Errorf(codes.FailedPrecondition, format, args...)
}

// runnableRevision returns the destination as the kept revision in
// effect at rev had it, ready to run: compiled, with its secret inputs at
// their current values in the clear (revisions never keep secrets, as
// restoring one keeps them too). FailedPrecondition when the revision is
// no longer kept, or needs a secret the destination no longer has.
func (s *destinationServer) runnableRevision(ctx context.Context, project, id string, rev int64) (*hogwirev1.Destination, error) {
	rec, err := revisionAt(ctx, s.store, project, id, rev)
	if err != nil {
		return nil, err
	}
	cur, err := s.store.Destination(ctx, project, id)
	if err != nil {
		return nil, err
	}
	if err := s.store.Unseal(cur.D); err != nil {
		return nil, err
	}
	d := rec.GetDestination()
	if d == nil {
		return nil, status.Errorf(codes.DataLoss, "%s holds no destination", rec.Name)
	}
	d.Name = resourcename.Destination(project, id)
	for key, in := range d.Inputs {
		if !in.GetSecretSet() {
			continue
		}
		now := cur.D.Inputs[key]
		if !now.GetSecretSet() || now.GetValue() == nil {
			return nil, revisionGone("revision %d of %s has the secret input %s, which the destination no longer has", rec.Revision, d.Name, key)
		}
		d.Inputs[key] = proto.CloneOf(now)
	}
	var v violations
	s.compileDestination(d, &v)
	if err := v.err(); err != nil {
		return nil, revisionGone("revision %d of %s no longer compiles: %v", rec.Revision, d.Name, status.Convert(err).Message())
	}
	d.Revision = rec.Revision
	return d, nil
}

// GetDestinationRevision serves a destination's kept revision to a
// data-plane node running a rerun with the original revision.
func (s *configServer) GetDestinationRevision(ctx context.Context, req *hogwirev1.GetDestinationRevisionRequest) (*hogwirev1.GetDestinationRevisionResponse, error) {
	project, id, err := resourcename.ParseDestination(req.GetName())
	if err != nil {
		return nil, invalid("name", "%v", err)
	}
	if req.GetRevision() <= 0 {
		return nil, invalid("revision", "must be positive")
	}
	d, err := s.dests.runnableRevision(ctx, project, id, req.GetRevision())
	if err != nil {
		return nil, err
	}
	return &hogwirev1.GetDestinationRevisionResponse{Destination: d}, nil
}
