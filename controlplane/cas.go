package controlplane

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// casAttempts bounds read-modify-write retries when writes race and the
// client sent no etag.
const casAttempts = 8

// casRetry runs a read-modify-write until it does not lose a race.
func (s *Server) casRetry(ctx context.Context, f func() error) error {
	for range casAttempts {
		err := f()
		if !errors.Is(err, errConflict) {
			return err
		}
		if ctx.Err() != nil {
			return storeErr(ctx.Err())
		}
	}
	return storeErr(errConflict)
}

// casTxn runs ops if key is still at revision rev, returning the new
// revision, or errConflict when another write came first.
func (s *Server) casTxn(ctx context.Context, key string, rev int64, ops ...clientv3.Op) (int64, error) {
	resp, err := s.etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(ops...).Commit()
	if err != nil {
		return 0, storeErr(err)
	}
	if !resp.Succeeded {
		return 0, errConflict
	}
	return resp.Header.Revision, nil
}

// casPut writes m at key (and runs also) if the key is still at revision
// rev, returning the new revision, or errConflict.
func (s *Server) casPut(ctx context.Context, key string, rev int64, m proto.Message, also ...clientv3.Op) (int64, error) {
	val, err := proto.Marshal(m)
	if err != nil {
		return 0, status.Errorf(codes.Internal, "encoding: %v", err)
	}
	return s.casTxn(ctx, key, rev, append([]clientv3.Op{clientv3.OpPut(key, string(val))}, also...)...)
}

// maskPaths returns the fields an update changes. With no mask, every
// allowed field that msg sets is implied (AIP-134); "*" means every allowed
// field. A path "a.b" is accepted when "a" is a map field that is allowed.
func maskPaths(mask *fieldmaskpb.FieldMask, msg proto.Message, allowed []string) ([]string, error) {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	if len(mask.GetPaths()) == 0 {
		var out []string
		fields := msg.ProtoReflect().Descriptor().Fields()
		for _, a := range allowed {
			if fd := fields.ByName(protoreflect.Name(a)); fd != nil && msg.ProtoReflect().Has(fd) {
				out = append(out, a)
			}
		}
		return out, nil
	}
	var out []string
	var v violations
	for _, p := range mask.GetPaths() {
		if p == "*" {
			return allowed, nil
		}
		head, _, sub := strings.Cut(p, ".")
		fd := msg.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(head))
		switch {
		case ok[p]:
		case sub && ok[head] && fd != nil && fd.IsMap():
		default:
			v.add("update_mask", "%q is not a field that can be updated (allowed: %s)", p, strings.Join(allowed, ", "))
			continue
		}
		out = append(out, p)
	}
	return out, v.err()
}

// newID returns a random id with the given one-letter prefix: a letter then
// 12 characters of lowercase base32, valid per AIP-122.
func newID(prefix string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("controlplane: crypto/rand: " + err.Error())
	}
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return prefix + string(b[:])
}
