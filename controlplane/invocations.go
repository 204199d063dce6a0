package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/invocations"
	"github.com/hogwire/hogwire/resourcename"
)

const (
	defaultInvocationPageSize = 100
	maxInvocationPageSize     = 1000
	// maxInvocationLogs bounds the log entries GetInvocation returns.
	maxInvocationLogs = 1000
)

// invocationServer serves InvocationService from the records data-plane
// nodes write (package invocations); it answers UNIMPLEMENTED without a
// store.
type invocationServer struct {
	hogwirev1.UnimplementedInvocationServiceServer
	telemetryReader
	records *invocations.Store
}

func newInvocationServer(ctx context.Context, reader telemetryReader, log *slog.Logger, cfg TelemetryConfig) (*invocationServer, error) {
	is := &invocationServer{telemetryReader: reader}
	if cfg.Conn == nil {
		return is, nil
	}
	st, err := invocations.Open(ctx, invocations.Config{Conn: cfg.Conn, MaxAge: cfg.InvocationMaxAge, Memory: cfg.Memory,
		Replicas: cfg.Replicas, Logger: log.With("component", "invocations")})
	if err != nil {
		return nil, err
	}
	is.records = st
	return is, nil
}

func (is *invocationServer) storeOrErr() (*invocations.Store, error) {
	if is.records == nil {
		return nil, status.Error(codes.Unimplemented, "invocation records are not served: the control plane has no NATS connection")
	}
	return is.records, nil
}

// recordedStatuses are the statuses a record can have.
var recordedStatuses = []hogwirev1.InvocationStatus{
	hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED,
	hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED,
	hogwirev1.InvocationStatus_INVOCATION_STATUS_SKIPPED,
	hogwirev1.InvocationStatus_INVOCATION_STATUS_MASKED,
	hogwirev1.InvocationStatus_INVOCATION_STATUS_PARKED,
}

func (is *invocationServer) ListInvocations(ctx context.Context, req *hogwirev1.ListInvocationsRequest) (*hogwirev1.ListInvocationsResponse, error) {
	st, err := is.storeOrErr()
	if err != nil {
		return nil, err
	}
	var v violations
	f := req.GetFilter()
	var filter invocations.Filter
	for i, s := range f.GetStatuses() {
		if !slices.Contains(recordedStatuses, s) {
			v.add("filter.statuses", "status %d (%s) is never recorded: give SUCCEEDED, FAILED, SKIPPED, MASKED or PARKED", i, s)
		}
	}
	filter.Statuses = f.GetStatuses()
	filter.ErrorKind, filter.EventUUID, filter.DistinctID = f.GetErrorKind(), f.GetEventUuid(), f.GetDistinctId()
	filter.Start, filter.End = v.timeRange("filter.", f.GetStartTime(), f.GetEndTime())
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		v.add("page_size", "must not be negative")
	case size == 0:
		size = defaultInvocationPageSize
	case size > maxInvocationPageSize:
		size = maxInvocationPageSize
	}
	var from invocations.Cursor
	if tok := req.GetPageToken(); tok != "" {
		c, ok := invocations.ParseCursor(strings.TrimPrefix(tok, "i"))
		if !ok || !strings.HasPrefix(tok, "i") {
			v.add("page_token", "is not a token this service returned")
		}
		from = c
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	sc, err := is.resolveScope(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	if _, _, err := is.store.Project(ctx, sc.project); err != nil {
		return nil, err
	}
	filter.Destination = sc.destination
	out, next, err := st.List(ctx, sc.project, filter, size, from)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading invocation records: %v", err)
	}
	resp := &hogwirev1.ListInvocationsResponse{Invocations: out}
	if next != (invocations.Cursor{}) {
		resp.NextPageToken = "i" + next.String()
	}
	return resp, nil
}

func (is *invocationServer) GetInvocation(ctx context.Context, req *hogwirev1.GetInvocationRequest) (*hogwirev1.GetInvocationResponse, error) {
	st, err := is.storeOrErr()
	if err != nil {
		return nil, err
	}
	project, id, ok := parseInvocationName(req.GetName())
	if !ok {
		return nil, invalid("name", "want projects/{project}/invocations/{id}, got %q", req.GetName())
	}
	r, err := st.Get(ctx, project, id)
	if errors.Is(err, invocations.ErrNotFound) {
		return nil, store.NotFound("invocation", req.GetName())
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading invocation records: %v", err)
	}
	resp := &hogwirev1.GetInvocationResponse{Invocation: r}
	if r.GetLogInvocationId() == "" || is.telemetry == nil {
		return resp, nil
	}
	sc := telemetryScope{project: project}
	if _, dest, err := resourcename.ParseDestination(r.GetDestination()); err == nil {
		sc.destination = dest
	}
	// Its entries were written while it ran, and shipped within seconds.
	start := r.GetStartTime().AsTime()
	lf := logFilter{invocation: r.GetLogInvocationId(), start: start.Add(-time.Minute),
		end: start.Add(r.GetDuration().AsDuration() + 10*time.Minute)}
	logs, _, err := is.telemetry.listLogs(ctx, sc.subject(logsSubject), lf, maxInvocationLogs, 0)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading logs: %v", err)
	}
	slices.Reverse(logs) // oldest first
	resp.Logs = logs
	return resp, nil
}

// parseInvocationName reads "projects/{project}/invocations/{id}".
func parseInvocationName(name string) (project, id string, ok bool) {
	rest, ok := strings.CutPrefix(name, "projects/")
	if !ok {
		return "", "", false
	}
	project, id, ok = strings.Cut(rest, "/invocations/")
	if !ok || !resourcename.ValidID(project) || id == "" || strings.Contains(id, "/") {
		return "", "", false
	}
	return project, id, true
}
