package controlplane

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/resourcename"
	"github.com/hogwire/hogwire/streamscan"
)

const (
	defaultLogPageSize = 100
	maxLogPageSize     = 1000
	// maxLogScan bounds the messages one ListLogEntries call reads; past it
	// the call returns what it has and a token to continue below.
	maxLogScan = 50000
	// maxLogWindows bounds the consumers one call creates, for a filter
	// that matches little of a long stream.
	maxLogWindows = 48
	// storeSlack widens a time range mapped onto JetStream's storage times:
	// nodes flush about every second but may send late after a reconnect,
	// and their clocks are not ours.
	storeSlack = 5 * time.Minute
)

// logServer serves LogService from the logs stream.
type logServer struct {
	hogwirev1.UnimplementedLogServiceServer
	telemetryReader
}

// telemetryReader is what the services reading node telemetry share: the
// streams (nil without NATS) and the store, to resolve a parent.
type telemetryReader struct {
	store     *store.Store
	telemetry *telemetryStore
}

// telemetryScope is what a parent names: one destination, or every
// destination of a project (destination empty).
type telemetryScope struct {
	project, destination string
}

// subject returns the filter of scope under the stream prefix.
func (sc telemetryScope) subject(prefix string) string {
	if sc.destination == "" {
		return prefix + "." + sc.project + ".>"
	}
	return prefix + "." + sc.project + "." + sc.destination
}

// resolveScope parses a parent. A destination in project "-" is looked up;
// one in a named project is not, so that the telemetry of a deleted
// destination stays readable until it expires.
func (s *telemetryReader) resolveScope(ctx context.Context, parent string) (telemetryScope, error) {
	if strings.Contains(strings.TrimPrefix(parent, "projects/"), "/") {
		project, id, err := resourcename.ParseDestination(parent)
		if err != nil {
			return telemetryScope{}, invalid("parent", "%v", err)
		}
		if project == "-" {
			st, err := s.store.Destination(ctx, project, id)
			if err != nil {
				return telemetryScope{}, err
			}
			if project, _, err = resourcename.ParseDestination(st.D.GetName()); err != nil {
				return telemetryScope{}, status.Errorf(codes.Internal, "stored destination %s has a bad name: %v", id, err)
			}
		}
		return telemetryScope{project: project, destination: id}, nil
	}
	project, err := resourcename.ParseProject(parent)
	if err != nil {
		return telemetryScope{}, invalid("parent", "%v (or a destination name)", err)
	}
	return telemetryScope{project: project}, nil
}

func (s *telemetryReader) telemetryStore() (*telemetryStore, error) {
	if s.telemetry == nil {
		return nil, errNoTelemetry
	}
	return s.telemetry, nil
}

// logFilter is a validated LogFilter.
type logFilter struct {
	minLevel   hogwirev1.LogLevel
	search     string // lower case
	start, end time.Time
	invocation string
	event      string
	person     string
}

func parseLogFilter(f *hogwirev1.LogFilter, v *violations) logFilter {
	out := logFilter{
		minLevel:   f.GetMinLevel(),
		search:     strings.ToLower(f.GetSearch()),
		invocation: f.GetInvocationId(),
		event:      f.GetEventUuid(),
		person:     f.GetPersonId(),
	}
	if _, ok := hogwirev1.LogLevel_name[int32(out.minLevel)]; !ok {
		v.add("filter.min_level", "unknown level %d", out.minLevel)
	}
	out.start, out.end = v.timeRange("filter.", f.GetStartTime(), f.GetEndTime())
	return out
}

func (f logFilter) match(e *hogwirev1.LogEntry) bool {
	if e.GetLevel() < f.minLevel {
		return false
	}
	if f.invocation != "" && e.GetInvocationId() != f.invocation {
		return false
	}
	if f.event != "" && e.GetEventUuid() != f.event {
		return false
	}
	if f.person != "" && e.GetPersonId() != f.person {
		return false
	}
	t := e.GetTime().AsTime()
	if !f.start.IsZero() && t.Before(f.start) {
		return false
	}
	if !f.end.IsZero() && !t.Before(f.end) {
		return false
	}
	return f.search == "" || strings.Contains(strings.ToLower(e.GetMessage()), f.search)
}

// ListLogEntries returns entries newest first. The page token is the
// stream sequence below which the next page starts.
func (s *logServer) ListLogEntries(ctx context.Context, req *hogwirev1.ListLogEntriesRequest) (*hogwirev1.ListLogEntriesResponse, error) {
	t, err := s.telemetryStore()
	if err != nil {
		return nil, err
	}
	var v violations
	f := parseLogFilter(req.GetFilter(), &v)
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		v.add("page_size", "must not be negative")
	case size == 0:
		size = defaultLogPageSize
	case size > maxLogPageSize:
		size = maxLogPageSize
	}
	var below uint64
	if tok := req.GetPageToken(); tok != "" {
		n, err := strconv.ParseUint(strings.TrimPrefix(tok, "s"), 10, 64)
		if err != nil || !strings.HasPrefix(tok, "s") || n == 0 {
			v.add("page_token", "is not a token this service returned")
		}
		below = n
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	sc, err := s.resolveScope(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	entries, next, err := t.listLogs(ctx, sc.subject(logsSubject), f, size, below)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading logs: %v", err)
	}
	resp := &hogwirev1.ListLogEntriesResponse{Entries: entries}
	if next > 0 {
		resp.NextPageToken = "s" + strconv.FormatUint(next, 10)
	}
	return resp, nil
}

// listLogs reads windows of the stream backwards from below (exclusive,
// 0 for the end), each forwards, until it has size matching entries, has
// scanned maxLogScan messages or reaches the start of the range. next is
// the sequence to continue below, 0 when there is nothing more.
func (t *telemetryStore) listLogs(ctx context.Context, subject string, f logFilter, size int, below uint64) (out []*hogwirev1.LogEntry, next uint64, err error) {
	stream, err := t.js.Stream(ctx, logsStream)
	if err != nil {
		return nil, 0, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, 0, err
	}
	if info.State.Msgs == 0 {
		return nil, 0, nil
	}
	lo, hi := max(info.State.FirstSeq, 1), info.State.LastSeq+1
	if below > 0 && below < hi {
		hi = below
	}
	if !f.start.IsZero() {
		seq, err := t.firstSeqSince(ctx, logsStream, subject, f.start.Add(-storeSlack))
		if err != nil {
			return nil, 0, err
		}
		if seq == 0 {
			return nil, 0, nil
		}
		lo = max(lo, seq)
	}
	if !f.end.IsZero() {
		// Anything stored well after the end was written after it too.
		seq, err := t.firstSeqSince(ctx, logsStream, subject, f.end.Add(storeSlack))
		if err != nil {
			return nil, 0, err
		}
		if seq > 0 && seq < hi {
			hi = seq
		}
	}
	type seqEntry struct {
		seq uint64
		e   *hogwirev1.LogEntry
	}
	var found []seqEntry
	scanned, windows := 0, 0
	window := uint64(256)
	for hi > lo && len(found) < size && scanned < maxLogScan && windows < maxLogWindows {
		windows++
		// A window holds at most its width in messages, so keeping it
		// within the scan budget means it is always read whole.
		w := min(window, uint64(maxLogScan-scanned))
		from := lo
		if hi-lo > w {
			from = hi - w
		}
		var batch []seqEntry
		n, err := t.scan(ctx, logsStream, jetstream.ConsumerConfig{
			FilterSubject: subject, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
		}, maxLogScan-scanned, func(m jetstream.Msg, md *jetstream.MsgMetadata) bool {
			if md.Sequence.Stream >= hi {
				return false
			}
			e := &hogwirev1.LogEntry{}
			if proto.Unmarshal(m.Data(), e) == nil && f.match(e) {
				e.Id = strconv.FormatUint(md.Sequence.Stream, 10)
				batch = append(batch, seqEntry{md.Sequence.Stream, e})
			}
			return true
		})
		if err != nil {
			return nil, 0, err
		}
		scanned += n
		for i := len(batch) - 1; i >= 0; i-- {
			found = append(found, batch[i])
		}
		hi = from
		window = min(window*2, 1<<16)
	}
	if len(found) >= size {
		found = found[:size]
		if len(found) > 0 {
			hi = found[len(found)-1].seq
		}
	}
	for _, se := range found {
		out = append(out, se.e)
	}
	if hi > lo {
		next = hi
	}
	return out, next, nil
}

// firstSeqSince returns the sequence of subject's first message stored at
// or after since, 0 if there is none.
func (t *telemetryStore) firstSeqSince(ctx context.Context, streamName, subject string, since time.Time) (uint64, error) {
	var seq uint64
	_, err := t.scan(ctx, streamName, jetstream.ConsumerConfig{
		FilterSubject: subject, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	}, 1, func(_ jetstream.Msg, md *jetstream.MsgMetadata) bool {
		seq = md.Sequence.Stream
		return false
	})
	return seq, err
}

// scan reads what cfg selects of a telemetry stream (see streamscan.Scan).
func (t *telemetryStore) scan(ctx context.Context, streamName string, cfg jetstream.ConsumerConfig, limit int, fn func(jetstream.Msg, *jetstream.MsgMetadata) bool) (int, error) {
	return streamscan.Scan(ctx, t.js, streamName, cfg, limit, fn)
}

// TailLogEntries sends the entries since start_time (default: now) that
// match the filter, then new ones as they are stored, until the client
// goes away.
func (s *logServer) TailLogEntries(req *hogwirev1.TailLogEntriesRequest, stream hogwirev1.LogService_TailLogEntriesServer) error {
	t, err := s.telemetryStore()
	if err != nil {
		return err
	}
	var v violations
	f := parseLogFilter(req.GetFilter(), &v)
	if err := v.err(); err != nil {
		return err
	}
	ctx := stream.Context()
	sc, err := s.resolveScope(ctx, req.GetParent())
	if err != nil {
		return err
	}
	cfg := jetstream.ConsumerConfig{FilterSubject: sc.subject(logsSubject), DeliverPolicy: jetstream.DeliverNewPolicy}
	if !f.start.IsZero() {
		since := f.start.Add(-storeSlack)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = time.Minute
	c, err := t.js.CreateConsumer(ctx, logsStream, cfg)
	if err != nil {
		return status.Errorf(codes.Unavailable, "following logs: %v", err)
	}
	defer streamscan.Delete(ctx, t.js, logsStream, c)
	for ctx.Err() == nil {
		// Each pull is short so that the consumer never looks inactive.
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.tailOnce(fctx, c, f, stream)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return status.Errorf(codes.Unavailable, "following logs: %v", err)
		}
	}
	return nil
}

// tailOnce sends what one pull brings.
func (s *logServer) tailOnce(ctx context.Context, c jetstream.Consumer, f logFilter, stream hogwirev1.LogService_TailLogEntriesServer) error {
	batch, err := c.Fetch(500, jetstream.FetchContext(ctx))
	if err != nil {
		return err
	}
	var pending []*hogwirev1.LogEntry
	msgs := batch.Messages()
	for m := range msgs {
		md, err := m.Metadata()
		e := &hogwirev1.LogEntry{}
		if err == nil && proto.Unmarshal(m.Data(), e) == nil && f.match(e) {
			e.Id = strconv.FormatUint(md.Sequence.Stream, 10)
			pending = append(pending, e)
		}
		// Send what has arrived together, without waiting for more.
		if len(pending) > 0 && (len(msgs) == 0 || len(pending) >= 100) {
			if err := stream.Send(&hogwirev1.TailLogEntriesResponse{Entries: pending}); err != nil {
				return err
			}
			pending = nil
		}
	}
	if len(pending) > 0 {
		if err := stream.Send(&hogwirev1.TailLogEntriesResponse{Entries: pending}); err != nil {
			return err
		}
	}
	if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return err
	}
	return nil
}
