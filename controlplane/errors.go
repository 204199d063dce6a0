package controlplane

import (
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
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

// timeRange checks an optional start_time and end_time (fields prefix +
// "start_time", prefix + "end_time") and returns them, zero when unset.
func (v *violations) timeRange(prefix string, start, end *timestamppb.Timestamp) (from, to time.Time) {
	if start != nil {
		if err := start.CheckValid(); err != nil {
			v.add(prefix+"start_time", "%v", err)
		}
		from = start.AsTime()
	}
	if end != nil {
		if err := end.CheckValid(); err != nil {
			v.add(prefix+"end_time", "%v", err)
		}
		to = end.AsTime()
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		v.add(prefix+"end_time", "is before start_time")
	}
	return from, to
}
