package devstack

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/tracing"
)

// receiver is a real OTLP/gRPC trace endpoint that remembers span names.
type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
}

func (r *receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				r.names = append(r.names, sp.Name)
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *receiver) has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.names {
		if n == name {
			return true
		}
	}
	return false
}

func TestRPCsAreTracedThroughOTELEnv(t *testing.T) {
	rcv := &receiver{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, rcv)
	go gs.Serve(l)
	defer gs.Stop()

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+l.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc") // the receiver speaks OTLP/gRPC; the default is http/protobuf
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tp, err := tracing.FromEnv(ctx, nil, "hogwire-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := Start(ctx, Config{
		DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tracing: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, st)

	_, _ = hogwirev1.NewProjectServiceClient(dial(t, st.GRPCAddr, st.AdminToken)).ListProjects(ctx, &hogwirev1.ListProjectsRequest{})
	// The server's span ends after its answer is on the way, so it may end
	// after the client has it: flush until it arrives.
	flusher, ok := tp.TracerProvider.(interface{ ForceFlush(context.Context) error })
	if !ok {
		t.Fatalf("the OTEL_* environment gave no SDK tracer provider (%T)", tp.TracerProvider)
	}
	for !rcv.has("hogwire.v1.ProjectService/ListProjects") {
		if ctx.Err() != nil {
			t.Fatalf("receiver got spans %v, want the server span of ListProjects", rcv.names)
		}
		if err := flusher.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNoExporterWithoutOTELEnv(t *testing.T) {
	tp, err := tracing.FromEnv(context.Background(), func(string) string { return "" }, "x")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("t").Start(context.Background(), "s")
	if span.SpanContext().IsValid() {
		t.Error("without OTEL_* variables spans should be no-ops")
	}
	span.End()
}
