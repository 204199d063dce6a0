package tracing_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"

	"github.com/hogwire/hogwire/tracing"
)

type metricsReceiver struct {
	colmetricspb.UnimplementedMetricsServiceServer
	mu    sync.Mutex
	names map[string]bool
}

func (r *metricsReceiver) Export(_ context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rm := range req.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				r.names[m.Name] = true
			}
		}
	}
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

// Prometheus metrics reach an OTLP receiver when the OTEL_* variables say so.
func TestPrometheusMetricsExportedOverOTLP(t *testing.T) {
	rcv := &metricsReceiver{names: map[string]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	colmetricspb.RegisterMetricsServiceServer(gs, rcv)
	go gs.Serve(l)
	defer gs.Stop()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+l.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")

	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hogwire_destination_events_total", Help: "h"}, []string{"destination", "metric"})
	reg.MustRegister(c)
	c.WithLabelValues("projects/p/destinations/d", "succeeded").Add(3)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stop, err := tracing.Metrics(ctx, nil, "test", reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(ctx); err != nil { // flushes one collection
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if !rcv.names["hogwire_destination_events_total"] {
		t.Fatalf("receiver got %v, want hogwire_destination_events_total", rcv.names)
	}
}

func TestNoMetricsExportWithoutOTELEnv(t *testing.T) {
	stop, err := tracing.Metrics(context.Background(), func(string) string { return "" }, "x", prometheus.NewRegistry())
	if err != nil || stop(context.Background()) != nil {
		t.Fatal(err)
	}
}
