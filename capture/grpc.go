package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/eventlimits"
	"github.com/hogwire/hogwire/metrics"
)

type service struct {
	hogwirev1.UnimplementedEventServiceServer
	cfg Config
	mem *memory
}

// NewService returns the gRPC EventService. Register it on a server whose
// auth policy gives hogwire.v1.EventService the auth.Capture role: the
// service checks capture tokens itself.
func NewService(cfg Config) hogwirev1.EventServiceServer {
	cfg = cfg.withDefaults()
	return &service{cfg: cfg, mem: &memory{max: cfg.MemoryBytes}}
}

// Publish stores a batch.
func (s *service) Publish(ctx context.Context, req *hogwirev1.PublishRequest) (*hogwirev1.PublishResponse, error) {
	project, err := s.project(ctx, req.GetToken())
	if err == nil {
		var accepted int32
		var rejected []*hogwirev1.RejectedEvent
		if accepted, rejected, err = s.publish(ctx, project, req.GetEvents()); err == nil {
			s.record(ctx, "grpc", req, nil)
			return &hogwirev1.PublishResponse{Accepted: accepted, Rejected: rejected}, nil
		}
	}
	s.record(ctx, "grpc", req, err)
	return nil, err
}

// record counts a request in the ingest metrics.
func (s *service) record(ctx context.Context, endpoint string, req interface {
	proto.Message
	GetEvents() []*hogwirev1.Event
}, err error) {
	if s.cfg.Metrics == nil {
		return
	}
	st := metrics.StatusAccepted
	switch status.Code(err) {
	case codes.OK:
	case codes.Unauthenticated, codes.PermissionDenied:
		st = metrics.StatusUnauthorized
	case codes.ResourceExhausted:
		st = metrics.StatusTooLarge
	case codes.Unavailable, codes.Internal, codes.DeadlineExceeded, codes.Canceled:
		st = metrics.StatusUnavailable
	default:
		st = metrics.StatusInvalid
	}
	s.cfg.Metrics.Record(ctx, endpoint, st, len(req.GetEvents()), int64(proto.Size(req)))
}

// PublishStream answers each request, in order, once its events are stored.
// Up to StreamWindow requests publish at once, so a pipelining client is
// not held to one round trip per batch. A bad token, a malformed request or
// a failed publish ends the stream with that error after the responses to
// every earlier request have been sent; requests after it were not stored.
func (s *service) PublishStream(stream grpc.BidiStreamingServer[hogwirev1.PublishStreamRequest, hogwirev1.PublishStreamResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	var publishing sync.WaitGroup
	defer publishing.Wait()
	defer cancel()

	type received struct {
		req *hogwirev1.PublishStreamRequest
		err error
	}
	// Recv blocks until the client sends or the call ends, so it runs
	// apart; everything else happens on this goroutine.
	incoming := make(chan received)
	go func() {
		for {
			req, err := stream.Recv()
			select {
			case incoming <- received{req, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	type pending struct {
		done chan struct{}
		resp *hogwirev1.PublishStreamResponse
		err  error
	}
	var (
		inflight    []*pending // in request order
		reading     = true
		streamToken string
	)
	streamToken, _ = auth.BearerToken(ctx)
	stop := func(err error) {
		p := &pending{done: make(chan struct{}), err: err}
		close(p.done)
		inflight = append(inflight, p)
		reading = false
	}
	for reading || len(inflight) > 0 {
		var recv <-chan received
		if reading && len(inflight) < s.cfg.StreamWindow {
			recv = incoming
		}
		var headDone <-chan struct{}
		if len(inflight) > 0 {
			headDone = inflight[0].done
		}
		select {
		case r := <-recv:
			if errors.Is(r.err, io.EOF) {
				reading = false
				continue
			}
			if r.err != nil {
				stop(r.err)
				continue
			}
			token := r.req.GetToken()
			if token == "" {
				token = streamToken
			} else if streamToken == "" {
				streamToken = token
			}
			project, err := s.project(ctx, token)
			if err != nil {
				stop(err)
				continue
			}
			p := &pending{done: make(chan struct{})}
			inflight = append(inflight, p)
			publishing.Add(1)
			go func(req *hogwirev1.PublishStreamRequest) {
				defer publishing.Done()
				defer close(p.done)
				accepted, rejected, err := s.publish(ctx, project, req.GetEvents())
				s.record(ctx, "grpc_stream", req, err)
				if err != nil {
					p.err = err
					return
				}
				p.resp = &hogwirev1.PublishStreamResponse{Sequence: req.GetSequence(), Accepted: accepted, Rejected: rejected}
			}(r.req)
		case <-headDone:
			p := inflight[0]
			inflight[0] = nil
			inflight = inflight[1:]
			if p.err != nil {
				return p.err
			}
			if err := stream.Send(p.resp); err != nil {
				return err
			}
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil
}

// project resolves a request's token, falling back to bearer metadata.
func (s *service) project(ctx context.Context, token string) (string, error) {
	if token == "" {
		token, _ = auth.BearerToken(ctx)
	}
	if token == "" {
		return "", status.Error(codes.Unauthenticated, "missing capture token: set token or send \"authorization: Bearer <token>\" metadata")
	}
	project, ok := s.cfg.Tokens.Project(token)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "invalid capture token")
	}
	return project, nil
}

// publish validates events and stores them, all or none. Events are
// changed in place: they belong to this request.
func (s *service) publish(ctx context.Context, project string, events []*hogwirev1.Event) (int32, []*hogwirev1.RejectedEvent, error) {
	switch limit := s.cfg.Limits.MaxBatchEvents; {
	case len(events) == 0:
		return 0, nil, fieldViolations(codes.InvalidArgument, "a request must hold at least one event",
			violation("events", ruleRequired, "a request must hold at least one event"))
	case len(events) > limit:
		desc := fmt.Sprintf("%d events exceed the limit of %d per request", len(events), limit)
		return 0, nil, fieldViolations(codes.ResourceExhausted, desc, violation("events", string(eventlimits.RuleBatchEvents), desc))
	}
	now := timestamppb.New(s.cfg.Now())
	var (
		rej  rejections
		size int64
	)
	for i, ev := range events {
		if rule, field, reason := validate(ev); field != "" {
			rej.add(i, field, rule, reason)
			continue
		}
		if ev.Uuid == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return 0, nil, status.Errorf(codes.Internal, "generating a uuid: %v", err)
			}
			ev.Uuid = id.String()
		}
		if ev.Timestamp == nil {
			ev.Timestamp = now
		}
		ev.Project = project
		size += int64(checkLimits(s.cfg.Limits, ev, i, &rej))
	}
	if rej.count > 0 {
		first := rej.list[0]
		s.cfg.Logger.WarnContext(ctx, "capture: request refused",
			slog.String("project", project), slog.Int("events", len(events)), slog.Int("rejected", rej.count),
			slog.Int("first_index", first.Index), slog.String("first_field", first.Field), slog.String("first_rule", first.Rule))
		code := codes.InvalidArgument
		if rej.size {
			code = codes.ResourceExhausted
		}
		vs := make([]*errdetails.BadRequest_FieldViolation, len(rej.list))
		for i, r := range rej.list {
			vs[i] = violation(eventPath(r.Index, r.Field), r.Rule, r.Reason)
		}
		return 0, nil, fieldViolations(code, rej.summary(), vs...)
	}
	// A decoded request takes several times its encoded size.
	mem := s.mem.lease()
	defer mem.release()
	if err := mem.take(decodedFactor * size); err != nil {
		if errors.Is(err, errTooBig) {
			return 0, nil, status.Error(codes.ResourceExhausted, "the request needs more memory than capture gives one request; send smaller batches")
		}
		return 0, nil, s.retryLater("capture is at its memory limit; retry the request")
	}
	if err := s.cfg.Publisher.Publish(ctx, project, events); err != nil {
		if ctx.Err() != nil {
			return 0, nil, status.FromContextError(ctx.Err()).Err()
		}
		var tl *eventlimits.TooLargeError
		if errors.As(err, &tl) {
			field := "events"
			if tl.Index >= 0 {
				field = eventPath(tl.Index, "")
			}
			return 0, nil, fieldViolations(codes.ResourceExhausted, err.Error()+"; nothing was stored",
				violation(field, string(eventlimits.RuleEventBytes), err.Error()))
		}
		s.cfg.Logger.ErrorContext(ctx, "capture: publish failed", slog.String("project", project), slog.Int("events", len(events)), slog.Any("error", err))
		return 0, nil, s.retryLater("events could not be stored; retry the request")
	}
	return int32(len(events)), nil, nil
}

// decodedFactor is how many times its encoded size a request's events
// take once decoded, as gRPC hands them over.
const decodedFactor = 8

// retryLater is UNAVAILABLE with a RetryInfo detail: nothing was stored.
func (s *service) retryLater(msg string) error {
	st := status.New(codes.Unavailable, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(s.cfg.RetryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}

// eventPath names a field of the index-th event of a request.
func eventPath(index int, field string) string {
	p := "events[" + strconv.Itoa(index) + "]"
	if field != "" {
		p += "." + field
	}
	return p
}

// validate returns the rule an event breaks, its field and why, or an
// empty field when ev is valid.
func validate(ev *hogwirev1.Event) (rule, field, reason string) {
	switch {
	case ev == nil:
		return ruleRequired, "event", "event is null"
	case ev.Event == "":
		return ruleRequired, "event", "event name is missing or empty"
	case ev.DistinctId == "":
		return ruleRequired, "distinct_id", "distinct_id is missing or empty"
	case utf8.RuneCountInString(ev.DistinctId) > maxDistinctIDLen:
		return ruleInvalid, "distinct_id", fmt.Sprintf("distinct_id is longer than %d characters", maxDistinctIDLen)
	}
	if ev.Uuid != "" {
		id, err := uuid.Parse(ev.Uuid)
		if err != nil {
			return ruleInvalid, "uuid", "uuid is not a valid UUID"
		}
		ev.Uuid = id.String()
	}
	if ev.Timestamp != nil {
		if err := ev.Timestamp.CheckValid(); err != nil {
			return ruleInvalid, "timestamp", "timestamp is out of range"
		}
	}
	return "", "", ""
}

func violation(field, rule, description string) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: description, Reason: strings.ToUpper(rule)}
}

// fieldViolations is a status with a google.rpc.BadRequest detail.
func fieldViolations(code codes.Code, msg string, vs ...*errdetails.BadRequest_FieldViolation) error {
	st := status.New(code, msg)
	withDetails, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: vs})
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}
