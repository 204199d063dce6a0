package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

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
	reruns  *reruns
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
	if is.reruns, err = openReruns(ctx, cfg); err != nil {
		return nil, err
	}
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
	filter.Rerun = filterRerun(&v, f)
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
	sc, err := is.existingScope(ctx, req.GetParent())
	if err != nil {
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

func (is *invocationServer) rerunsOrErr() (*invocations.Store, *reruns, error) {
	st, err := is.storeOrErr()
	if err != nil {
		return nil, nil, err
	}
	return st, is.reruns, nil
}

// RerunJob runs the stored reruns that are running; it is a LeaderJob.
func (s *Server) RerunJob(ctx context.Context) {
	if s.invocations.reruns != nil {
		s.invocations.reruns.runAll(ctx, s.invocations.records)
	}
}

func (is *invocationServer) RerunInvocations(ctx context.Context, req *hogwirev1.RerunInvocationsRequest) (*hogwirev1.RerunInvocationsResponse, error) {
	st, rr, err := is.rerunsOrErr()
	if err != nil {
		return nil, err
	}
	var v violations
	ids, f := req.GetInvocationIds(), req.GetFilter()
	switch {
	case len(ids) == 0 && f == nil:
		v.add("invocation_ids", "give the invocations to run again, or a filter that selects them")
	case len(ids) > 0 && f != nil:
		v.add("filter", "give invocation ids or a filter, not both")
	case len(ids) > maxRerun:
		v.add("invocation_ids", "%d ids: a rerun runs at most %d invocations", len(ids), maxRerun)
	}
	rate := int(req.GetMaxPerSecond())
	switch {
	case rate < 0:
		v.add("max_per_second", "must not be negative")
	case rate == 0:
		rate = defaultRerunRate
	case rate > maxRerunRate:
		v.add("max_per_second", "%d: at most %d a second", rate, maxRerunRate)
	}
	var filter invocations.Filter
	if f != nil {
		filter = is.rerunFilter(&v, f)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	sc, err := is.existingScope(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	if sc.destination != "" {
		if _, err := is.store.Destination(ctx, sc.project, sc.destination); status.Code(err) == codes.NotFound {
			return nil, invalid("parent", "destination %s does not exist", resourcename.Destination(sc.project, sc.destination))
		} else if err != nil {
			return nil, err
		}
	}
	filter.Destination = sc.destination
	var items []rerunItem
	truncated := false
	if len(ids) > 0 {
		items, err = rerunByID(ctx, st, sc, ids)
	} else {
		items, truncated, err = rerunByFilter(ctx, st, sc.project, filter)
	}
	if err != nil {
		return nil, err
	}
	now := rr.now()
	j := &rerunJob{Project: sc.project, Parent: req.GetParent(), Truncated: truncated,
		MaxPerSecond: rate, State: rerunRunning, Created: now, OriginalRevision: req.GetOriginalRevision()}
	if j.OriginalRevision {
		if items, err = pinRevisions(ctx, is.store, j, items); err != nil {
			return nil, err
		}
	}
	j.Total = len(items)
	if f != nil {
		j.Filter, _ = proto.Marshal(f)
	}
	if req.GetValidateOnly() || len(items) == 0 {
		// Nothing to run is not an error: a script rerunning the last
		// hour's failures finds none on a good day.
		pb := j.proto()
		pb.Name, pb.State, pb.CreateTime = "", hogwirev1.RerunState_RERUN_STATE_UNSPECIFIED, nil
		return &hogwirev1.RerunInvocationsResponse{Rerun: pb}, nil
	}
	j.ID = newRerunID(now)
	if err := rr.create(ctx, j, items); err != nil {
		return nil, err
	}
	return &hogwirev1.RerunInvocationsResponse{Rerun: j.proto()}, nil
}

// rerunFilter checks a rerun's filter: at most 30 days (default the last
// 7), FAILED unless it says, never PARKED.
func (is *invocationServer) rerunFilter(v *violations, f *hogwirev1.InvocationFilter) invocations.Filter {
	var filter invocations.Filter
	for i, s := range f.GetStatuses() {
		switch {
		case s == hogwirev1.InvocationStatus_INVOCATION_STATUS_PARKED:
			v.add(fmt.Sprintf("filter.statuses[%d]", i), "PARKED invocations run again on their own")
		case !slices.Contains(recordedStatuses, s):
			v.add(fmt.Sprintf("filter.statuses[%d]", i), "status %d (%s) is never recorded: give SUCCEEDED, FAILED, SKIPPED or MASKED", i, s)
		}
	}
	filter.Statuses = f.GetStatuses()
	if len(filter.Statuses) == 0 {
		filter.Statuses = []hogwirev1.InvocationStatus{hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED}
	}
	filter.ErrorKind, filter.EventUUID, filter.DistinctID = f.GetErrorKind(), f.GetEventUuid(), f.GetDistinctId()
	filter.Rerun = filterRerun(v, f)
	filter.Start, filter.End = v.timeRange("filter.", f.GetStartTime(), f.GetEndTime())
	if filter.End.IsZero() {
		filter.End = time.Now()
	}
	if filter.Start.IsZero() {
		filter.Start = filter.End.Add(-defaultRerunRange)
	}
	if d := filter.End.Sub(filter.Start); d > maxRerunRange {
		v.add("filter.start_time", "the range covers %s: a rerun covers at most 30 days", d.Round(time.Hour))
	}
	return filter
}

// rerunByID looks the invocations up by id; each must exist, be of the
// parent's destination, and not be PARKED.
func rerunByID(ctx context.Context, st *invocations.Store, sc telemetryScope, ids []string) ([]rerunItem, error) {
	var v violations
	var items []rerunItem
	seen := map[[2]string]bool{}
	for i, id := range ids {
		field := fmt.Sprintf("invocation_ids[%d]", i)
		if p, rest, ok := parseInvocationName(id); ok {
			if p != sc.project {
				v.add(field, "%s is not an invocation of project %s", id, sc.project)
				continue
			}
			id = rest
		}
		rec, err := st.Get(ctx, sc.project, id)
		if errors.Is(err, invocations.ErrNotFound) {
			v.add(field, "no invocation %s in project %s (it never existed, or expired)", id, sc.project)
			continue
		}
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "reading invocation records: %v", err)
		}
		item, ok := rerunItemOf(rec)
		switch {
		case !ok:
			v.add(field, "invocation %s has no stored event", id)
		case sc.destination != "" && item.Dest != sc.destination:
			v.add(field, "invocation %s is not of destination %s", id, sc.destination)
		case rec.GetStatus() == hogwirev1.InvocationStatus_INVOCATION_STATUS_PARKED:
			v.add(field, "invocation %s is PARKED: it runs again on its own", id)
		case !seen[[2]string{item.Dest, item.UUID}]:
			seen[[2]string{item.Dest, item.UUID}] = true
			items = append(items, item)
		}
	}
	return items, v.err()
}

// rerunByFilter selects up to maxRerun invocations, the oldest first, one
// per destination and event; truncated says more matched.
func rerunByFilter(ctx context.Context, st *invocations.Store, project string, f invocations.Filter) ([]rerunItem, bool, error) {
	var items []rerunItem
	seen := map[[2]string]bool{}
	var from invocations.Cursor
	for {
		recs, next, err := st.List(ctx, project, f, maxInvocationPageSize, from)
		if err != nil {
			return nil, false, status.Errorf(codes.Unavailable, "reading invocation records: %v", err)
		}
		for _, rec := range recs {
			item, ok := rerunItemOf(rec)
			if !ok || seen[[2]string{item.Dest, item.UUID}] {
				continue
			}
			if len(items) == maxRerun {
				return items, true, nil
			}
			seen[[2]string{item.Dest, item.UUID}] = true
			items = append(items, item)
		}
		if next == (invocations.Cursor{}) {
			return items, false, nil
		}
		from = next
	}
}

func rerunItemOf(rec *hogwirev1.Invocation) (rerunItem, bool) {
	_, dest, err := resourcename.ParseDestination(rec.GetDestination())
	if err != nil || rec.GetEventUuid() == "" {
		return rerunItem{}, false
	}
	return rerunItem{ID: rec.GetId(), Dest: dest, UUID: rec.GetEventUuid(), Rev: rec.GetDestinationRevision()}, true
}

// maxRerunReasons bounds the reasons a rerun lists for what it left out.
const maxRerunReasons = 20

// pinRevisions sets each item's revision to the kept revision in effect
// when its invocation ran, and returns the items that have one; the
// others are counted in j as not rerunnable, with the reason.
func pinRevisions(ctx context.Context, st *store.Store, j *rerunJob, items []rerunItem) ([]rerunItem, error) {
	type at struct {
		dest string
		rev  int64
	}
	kept := map[at]int64{}
	gone := map[at]string{}
	var order []string
	counts := map[string]int{}
	out := items[:0]
	for _, it := range items {
		k := at{it.Dest, it.Rev}
		if _, ok := kept[k]; !ok && gone[k] == "" {
			rec, err := revisionAt(ctx, st, j.Project, it.Dest, it.Rev)
			switch {
			case status.Code(err) == codes.FailedPrecondition:
				gone[k] = status.Convert(err).Message()
			case err != nil:
				return nil, err
			default:
				kept[k] = rec.GetRevision()
			}
		}
		if why := gone[k]; why != "" {
			if counts[why] == 0 {
				order = append(order, why)
			}
			counts[why]++
			j.NotRerunnable++
			continue
		}
		it.Rev = kept[k]
		out = append(out, it)
	}
	for _, why := range order[:min(len(order), maxRerunReasons)] {
		j.Reasons = append(j.Reasons, fmt.Sprintf("%s: %d invocation(s) not rerunnable", why, counts[why]))
	}
	return out, nil
}

func (is *invocationServer) GetRerun(ctx context.Context, req *hogwirev1.GetRerunRequest) (*hogwirev1.GetRerunResponse, error) {
	_, rr, err := is.rerunsOrErr()
	if err != nil {
		return nil, err
	}
	project, id, ok := invocations.ParseRerunName(req.GetName())
	if !ok {
		return nil, invalid("name", "want projects/{project}/reruns/{id}, got %q", req.GetName())
	}
	j, _, err := rr.job(ctx, project, id)
	if err != nil {
		return nil, err
	}
	return &hogwirev1.GetRerunResponse{Rerun: j.proto()}, nil
}

func (is *invocationServer) ListReruns(ctx context.Context, req *hogwirev1.ListRerunsRequest) (*hogwirev1.ListRerunsResponse, error) {
	_, rr, err := is.rerunsOrErr()
	if err != nil {
		return nil, err
	}
	project, err := resourcename.ParseProject(req.GetParent())
	if err != nil {
		return nil, invalid("parent", "%v", err)
	}
	if _, _, err := is.store.Project(ctx, project); err != nil {
		return nil, err
	}
	jobs, err := rr.list(ctx, project)
	if err != nil {
		return nil, err
	}
	resp := &hogwirev1.ListRerunsResponse{}
	for _, j := range jobs {
		resp.Reruns = append(resp.Reruns, j.proto())
	}
	return resp, nil
}

func (is *invocationServer) CancelRerun(ctx context.Context, req *hogwirev1.CancelRerunRequest) (*hogwirev1.CancelRerunResponse, error) {
	_, rr, err := is.rerunsOrErr()
	if err != nil {
		return nil, err
	}
	project, id, ok := invocations.ParseRerunName(req.GetName())
	if !ok {
		return nil, invalid("name", "want projects/{project}/reruns/{id}, got %q", req.GetName())
	}
	j, err := rr.cancel(ctx, project, id)
	if err != nil {
		return nil, err
	}
	return &hogwirev1.CancelRerunResponse{Rerun: j.proto()}, nil
}

// filterRerun reads a filter's rerun name; its id, or "".
func filterRerun(v *violations, f *hogwirev1.InvocationFilter) string {
	if f.GetRerun() == "" {
		return ""
	}
	_, id, ok := invocations.ParseRerunName(f.GetRerun())
	if !ok {
		v.add("filter.rerun", "want projects/{project}/reruns/{id}, got %q", f.GetRerun())
	}
	return id
}

// existingScope is resolveScope, answering NotFound for a project that
// does not exist.
func (is *invocationServer) existingScope(ctx context.Context, parent string) (telemetryScope, error) {
	sc, err := is.resolveScope(ctx, parent)
	if err != nil {
		return telemetryScope{}, err
	}
	if _, _, err := is.store.Project(ctx, sc.project); err != nil {
		return telemetryScope{}, err
	}
	return sc, nil
}
