package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/resourcename"
)

// TelemetryConfig says where node telemetry is stored: JetStream streams
// shared by every replica, so what one replica stored any other can serve,
// and it survives restarts. Retention is bounded by age and, for logs, by a
// per-destination count.
type TelemetryConfig struct {
	Conn *nats.Conn
	// MaxAge of metrics and logs (default 7 days).
	MaxAge time.Duration
	// InvocationMaxAge is how long the record of each invocation, and the
	// events they ran on, are kept (package invocations; default 7 days).
	InvocationMaxAge time.Duration
	// MaxLogsPerDestination keeps only the newest entries of each
	// destination (default 10,000).
	MaxLogsPerDestination int64
	// Memory stores telemetry in memory (tests and benchmarks).
	Memory bool
	// Replicas of the telemetry streams in a NATS cluster (default 1).
	Replicas int
}

const (
	metricsStream  = "HOGWIRE_METRICS"
	logsStream     = "HOGWIRE_LOGS"
	metricsSubject = "hogwire.metrics"
	logsSubject    = "hogwire.logs"
)

// telemetryServer serves TelemetryService: it stores what nodes report.
type telemetryServer struct {
	hogwirev1.UnimplementedTelemetryServiceServer
	telemetry *telemetryStore
	log       *slog.Logger
}

// errNoTelemetry is the answer of the services that need the telemetry
// streams when there is no NATS connection.
var errNoTelemetry = status.Error(codes.Unimplemented, "this control plane has no telemetry storage (no NATS configured)")

type telemetryStore struct {
	js jetstream.JetStream
}

func openTelemetry(ctx context.Context, cfg TelemetryConfig) (*telemetryStore, error) {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 7 * 24 * time.Hour
	}
	if cfg.MaxLogsPerDestination <= 0 {
		cfg.MaxLogsPerDestination = 10000
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: metricsStream, Description: "per-destination metrics, one message per node, destination and minute",
		Subjects: []string{metricsSubject + ".>"}, Storage: storage, MaxAge: cfg.MaxAge, Discard: jetstream.DiscardOld,
		Replicas: max(cfg.Replicas, 1),
	}); err != nil {
		return nil, fmt.Errorf("controlplane: stream %s: %w", metricsStream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: logsStream, Description: "destination log entries",
		Subjects: []string{logsSubject + ".>"}, Storage: storage, MaxAge: cfg.MaxAge, Discard: jetstream.DiscardOld,
		MaxMsgsPerSubject: cfg.MaxLogsPerDestination, Replicas: max(cfg.Replicas, 1),
	}); err != nil {
		return nil, fmt.Errorf("controlplane: stream %s: %w", logsStream, err)
	}
	return &telemetryStore{js: js}, nil
}

// subjectOf turns "projects/p/destinations/d" into "p.d"; ok is false for
// anything else (a node cannot write outside the destination namespace).
func subjectOf(destination string) (string, bool) {
	project, id, err := resourcename.ParseDestination(destination)
	if err != nil || project == "-" {
		return "", false
	}
	return project + "." + id, true
}

// store writes one report and returns once JetStream has it all.
func (t *telemetryStore) store(ctx context.Context, req *hogwirev1.ReportRequest) error {
	var futures []jetstream.PubAckFuture
	publish := func(subject string, m proto.Message) error {
		b, err := proto.Marshal(m)
		if err != nil {
			return err
		}
		f, err := t.js.PublishAsync(subject, b)
		if err != nil {
			return err
		}
		futures = append(futures, f)
		return nil
	}
	for _, m := range req.Metrics {
		sub, ok := subjectOf(m.Destination)
		if !ok {
			continue
		}
		if err := publish(metricsSubject+"."+sub, m); err != nil {
			return err
		}
	}
	for _, e := range req.Logs {
		sub, ok := subjectOf(e.Destination)
		if !ok {
			continue
		}
		if e.NodeId == "" {
			e.NodeId = req.NodeId
		}
		if err := publish(logsSubject+"."+sub, e); err != nil {
			return err
		}
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Report stores each batch a node sends and acknowledges it.
func (s *telemetryServer) Report(stream hogwirev1.TelemetryService_ReportServer) error {
	if s.telemetry == nil {
		return errNoTelemetry
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if req.DroppedLogs > 0 {
			s.log.Warn("a node dropped log entries under back-pressure", "node", req.NodeId, "dropped", req.DroppedLogs)
		}
		ctx, cancel := context.WithTimeout(stream.Context(), 10*time.Second)
		err = s.telemetry.store(ctx, req)
		cancel()
		if err != nil {
			return status.Errorf(codes.Unavailable, "storing telemetry: %v", err)
		}
		if err := stream.Send(&hogwirev1.ReportResponse{AckedSequence: req.Sequence}); err != nil {
			return err
		}
	}
}
