package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
)

type service struct {
	hogwirev1.UnimplementedEventServiceServer
	cfg Config
}

// NewService returns the gRPC EventService. Register it on a server whose
// auth policy gives hogwire.v1.EventService the auth.Capture role: the
// service checks capture tokens itself.
func NewService(cfg Config) hogwirev1.EventServiceServer {
	return &service{cfg: cfg.withDefaults()}
}

// Publish stores a batch.
func (s *service) Publish(ctx context.Context, req *hogwirev1.PublishRequest) (*hogwirev1.PublishResponse, error) {
	project, err := s.project(ctx, req.GetToken())
	if err != nil {
		return nil, err
	}
	accepted, rejected, err := s.publish(ctx, project, req.GetEvents())
	if err != nil {
		return nil, err
	}
	return &hogwirev1.PublishResponse{Accepted: accepted, Rejected: rejected}, nil
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

// publish validates events and stores the valid ones. Events are changed
// in place: they belong to this request.
func (s *service) publish(ctx context.Context, project string, events []*hogwirev1.Event) (int32, []*hogwirev1.RejectedEvent, error) {
	switch {
	case len(events) == 0:
		return 0, nil, badRequest("events", "a request must hold at least one event")
	case len(events) > s.cfg.MaxBatch:
		return 0, nil, badRequest("events", fmt.Sprintf("%d events exceed the limit of %d per request", len(events), s.cfg.MaxBatch))
	}
	now := timestamppb.New(s.cfg.Now())
	valid := make([]*hogwirev1.Event, 0, len(events))
	var rejected []*hogwirev1.RejectedEvent
	for i, ev := range events {
		field, reason := validate(ev)
		if field != "" {
			rejected = append(rejected, &hogwirev1.RejectedEvent{Index: int32(i), Field: field, Reason: reason})
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
		valid = append(valid, ev)
	}
	if len(rejected) > 0 {
		s.cfg.Logger.WarnContext(ctx, "capture: events rejected",
			slog.String("project", project), slog.Int("rejected", len(rejected)), slog.Int("accepted", len(valid)),
			slog.String("first_field", rejected[0].Field), slog.String("first_reason", rejected[0].Reason))
	}
	if len(valid) == 0 {
		return 0, rejected, nil
	}
	if err := s.cfg.Publisher.Publish(ctx, project, valid); err != nil {
		if ctx.Err() != nil {
			return 0, nil, status.FromContextError(ctx.Err()).Err()
		}
		s.cfg.Logger.ErrorContext(ctx, "capture: publish failed", slog.String("project", project), slog.Int("events", len(valid)), slog.Any("error", err))
		return 0, nil, status.Error(codes.Unavailable, "events could not be stored; retry the request")
	}
	return int32(len(valid)), rejected, nil
}

// validate returns the offending field and why, or "" when ev is valid.
func validate(ev *hogwirev1.Event) (field, reason string) {
	switch {
	case ev == nil:
		return "event", "event is null"
	case ev.Event == "":
		return "event", "event name is missing or empty"
	case ev.DistinctId == "":
		return "distinct_id", "distinct_id is missing or empty"
	case len([]rune(ev.DistinctId)) > maxDistinctIDLen:
		return "distinct_id", fmt.Sprintf("distinct_id is longer than %d characters", maxDistinctIDLen)
	}
	if ev.Uuid != "" {
		id, err := uuid.Parse(ev.Uuid)
		if err != nil {
			return "uuid", "uuid is not a valid UUID"
		}
		ev.Uuid = id.String()
	}
	if ev.Timestamp != nil {
		if err := ev.Timestamp.CheckValid(); err != nil {
			return "timestamp", "timestamp is out of range"
		}
	}
	return "", ""
}

func badRequest(field, description string) error {
	st := status.New(codes.InvalidArgument, field+": "+description)
	withDetails, err := st.WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description}},
	})
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}
