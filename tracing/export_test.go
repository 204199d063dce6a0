package tracing_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/hogwire/hogwire/tracing"
)

// receiver is an OTLP receiver speaking both protocols: gRPC and
// HTTP/protobuf (POST /v1/traces, /v1/metrics). It records what arrives.
type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	colmetricspb.UnimplementedMetricsServiceServer
	mu      sync.Mutex
	spans   []*tracepb.Span
	metrics []string
}

func (r *receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.addSpans(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *receiver) addSpans(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			r.spans = append(r.spans, ss.Spans...)
		}
	}
}

func (r *receiver) addMetrics(req *colmetricspb.ExportMetricsServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rm := range req.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				r.metrics = append(r.metrics, m.Name)
			}
		}
	}
}

type metricsService struct {
	colmetricspb.UnimplementedMetricsServiceServer
	r *receiver
}

func (m metricsService) Export(_ context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	m.r.addMetrics(req)
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

func (r *receiver) serveGRPC(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, r)
	colmetricspb.RegisterMetricsServiceServer(gs, metricsService{r: r})
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	return "http://" + l.Addr().String()
}

func (r *receiver) serveHTTP(t *testing.T) string {
	mux := http.NewServeMux()
	handle := func(path string, msg func() proto.Message, add func(proto.Message), resp proto.Message) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, req *http.Request) {
			if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
				http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
				return
			}
			body, _ := io.ReadAll(req.Body)
			m := msg()
			if err := proto.Unmarshal(body, m); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			add(m)
			b, _ := proto.Marshal(resp)
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.Write(b)
		})
	}
	handle("/v1/traces", func() proto.Message { return &coltracepb.ExportTraceServiceRequest{} },
		func(m proto.Message) { r.addSpans(m.(*coltracepb.ExportTraceServiceRequest)) }, &coltracepb.ExportTraceServiceResponse{})
	handle("/v1/metrics", func() proto.Message { return &colmetricspb.ExportMetricsServiceRequest{} },
		func(m proto.Message) { r.addMetrics(m.(*colmetricspb.ExportMetricsServiceRequest)) }, &colmetricspb.ExportMetricsServiceResponse{})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Traces and metrics reach a real OTLP receiver over the protocol that
// OTEL_EXPORTER_OTLP_PROTOCOL names; HTTP server and client spans carry
// the semantic-convention attributes, and a 5xx marks them as errors.
func TestExportOverBothProtocols(t *testing.T) {
	for _, proto := range []string{"grpc", "http/protobuf"} {
		t.Run(proto, func(t *testing.T) {
			rcv := &receiver{}
			endpoint := rcv.serveHTTP(t)
			if proto == "grpc" {
				endpoint = rcv.serveGRPC(t)
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
			t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			tp, err := tracing.FromEnv(ctx, nil, "test")
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			mp, err := tracing.NewMeters(ctx, nil, "test", reg)
			if err != nil {
				t.Fatal(err)
			}
			counter, err := mp.Meter("hogwire").Int64Counter("hogwire.test.events")
			if err != nil {
				t.Fatal(err)
			}
			counter.Add(ctx, 3)

			// A destination that fails with a 500, called through an
			// instrumented client from inside an instrumented handler.
			dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "down", http.StatusInternalServerError)
			}))
			defer dest.Close()
			client := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport,
				otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(tp.Propagator))}
			front := httptest.NewServer(otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, dest.URL+"/hook", nil)
				resp, err := client.Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				resp.Body.Close()
				w.WriteHeader(resp.StatusCode)
			}), "capture", otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(tp.Propagator)))
			defer front.Close()
			resp, err := http.Get(front.URL + "/batch/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			if err := tp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := mp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if !slices.Contains(rcv.metrics, "hogwire.test.events") {
				t.Errorf("metrics received: %v", rcv.metrics)
			}
			var server, clientSpan *tracepb.Span
			for _, s := range rcv.spans {
				switch s.Kind {
				case tracepb.Span_SPAN_KIND_SERVER:
					server = s
				case tracepb.Span_SPAN_KIND_CLIENT:
					clientSpan = s
				}
			}
			if server == nil || clientSpan == nil {
				t.Fatalf("spans received: %v", rcv.spans)
			}
			for _, s := range []*tracepb.Span{server, clientSpan} {
				if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
					t.Errorf("%s span of a 500 has status %v", s.Kind, s.Status)
				}
				attrs := map[string]bool{}
				for _, a := range s.Attributes {
					attrs[a.Key] = true
				}
				for _, k := range []string{"http.request.method", "http.response.status_code", "server.address"} {
					if !attrs[k] {
						t.Errorf("%s span lacks %s: %v", s.Kind, k, s.Attributes)
					}
				}
			}
			if clientSpan.ParentSpanId == nil || string(clientSpan.TraceId) != string(server.TraceId) {
				t.Error("client span is not in the server span's trace")
			}
		})
	}
}

// The same instruments are served to Prometheus scrapes, with the names
// Prometheus users expect, whether or not anything is pushed.
func TestPrometheusServesTheSameInstruments(t *testing.T) {
	reg := prometheus.NewRegistry()
	mp, err := tracing.NewMeters(context.Background(), func(string) string { return "" }, "test", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer mp.Shutdown(context.Background())
	c, _ := mp.Meter("hogwire").Int64Counter("hogwire.ingest.events")
	c.Add(context.Background(), 5)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "hogwire_ingest_events_total 5") {
		t.Fatalf("scrape:\n%s", body)
	}
}

func TestNothingExportedWithoutConfiguration(t *testing.T) {
	empty := func(string) string { return "" }
	tp, err := tracing.FromEnv(context.Background(), empty, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, sdk := tp.TracerProvider.(interface{ ForceFlush(context.Context) error }); sdk {
		t.Error("an SDK tracer provider without any OTEL_* configuration")
	}
	none := func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"}[k]
	}
	tp, err = tracing.FromEnv(context.Background(), none, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, sdk := tp.TracerProvider.(interface{ ForceFlush(context.Context) error }); sdk {
		t.Error("OTEL_TRACES_EXPORTER=none still builds an exporting provider")
	}
}

func TestUnknownProtocolIsAnError(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
	if _, err := tracing.FromEnv(context.Background(), nil, "x"); err == nil {
		t.Error("traces: accepted")
	}
	if _, err := tracing.NewMeters(context.Background(), nil, "x", nil); err == nil {
		t.Error("metrics: accepted")
	}
}
