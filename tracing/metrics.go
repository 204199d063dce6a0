package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	otelprom "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports a process's Prometheus metrics (the per-destination
// counters and histograms, Go runtime and process metrics) as
// OpenTelemetry metrics over OTLP/gRPC as well, when the standard OTEL_*
// variables ask for it: OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT set and OTEL_METRICS_EXPORTER not
// "none". The Prometheus /metrics endpoint serves the same numbers either
// way. The returned shutdown flushes and stops the exporter; it is a no-op
// when nothing is exported.
func Metrics(ctx context.Context, getenv Getenv, serviceName string, g prometheus.Gatherer) (shutdown func(context.Context) error, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	none := func(context.Context) error { return nil }
	kind := strings.ToLower(strings.TrimSpace(getenv("OTEL_METRICS_EXPORTER")))
	endpoint := getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if kind == "none" || (endpoint == "" && kind != "otlp") {
		return none, nil
	}
	if kind != "" && kind != "otlp" {
		return nil, fmt.Errorf("tracing: OTEL_METRICS_EXPORTER=%q is not supported (use otlp or none)", kind)
	}
	exp, err := otlpmetricgrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP metric exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithFromEnv(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// The periodic reader pulls from the Prometheus registry through the
	// bridge, so every metric is defined once, with Prometheus' client.
	reader := metric.NewPeriodicReader(exp, metric.WithProducer(otelprom.NewMetricProducer(otelprom.WithGatherer(g))))
	mp := metric.NewMeterProvider(metric.WithReader(reader), metric.WithResource(res))
	return mp.Shutdown, nil
}
