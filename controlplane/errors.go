package controlplane

import (
	"errors"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// violations collects field errors of one request, to be returned together
// as INVALID_ARGUMENT with a google.rpc.BadRequest.
type violations []*errdetails.BadRequest_FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// err returns nil when there are no violations.
func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	msg := v[0].Field + ": " + v[0].Description
	if len(v) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(v)-1)
	}
	st, derr := status.New(codes.InvalidArgument, msg).WithDetails(&errdetails.BadRequest{FieldViolations: v})
	if derr != nil {
		return status.Error(codes.InvalidArgument, msg)
	}
	return st.Err()
}

func invalid(field, format string, args ...any) error {
	var v violations
	v.add(field, format, args...)
	return v.err()
}

func notFound(what, name string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", what, name)
}

// errConflict means a compare-and-swap lost to a concurrent write.
var errConflict = errors.New("concurrent modification")

// etagOf renders an etcd mod revision as an etag.
func etagOf(rev int64) string { return strconv.FormatInt(rev, 10) }

// checkEtag compares a client's etag with the stored revision. An empty
// etag skips the check (the write is still a compare-and-swap on the
// revision that was read).
func checkEtag(etag string, rev int64) error {
	if etag == "" || etag == etagOf(rev) {
		return nil
	}
	return status.Errorf(codes.Aborted, "etag %q is stale (current %q): read the resource again and retry", etag, etagOf(rev))
}

// storeErr turns an etcd error into a gRPC status.
func storeErr(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, errConflict) {
		return status.Error(codes.Aborted, "the resource changed concurrently: read it again and retry")
	}
	if errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return status.Error(codes.Unavailable, "etcd is unavailable")
	}
	return status.Errorf(codes.Unavailable, "etcd: %v", err)
}
