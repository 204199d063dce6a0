package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	promBridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func errorf(format string, args ...any) error { return fmt.Errorf("tracing: "+format, args...) }

// Meters is a process's meter provider: every instrument made from it is
// served on the Prometheus /metrics endpoint and, when the OTEL_* variables
// ask for it, pushed to an OTLP receiver (or the console) too. One set of
// instruments, two ways out; no bridge from Prometheus to OpenTelemetry.
type Meters struct {
	metric.MeterProvider
	shutdown func(context.Context) error
}

// Shutdown flushes the last collection to the exporter and stops it.
func (m *Meters) Shutdown(ctx context.Context) error { return m.shutdown(ctx) }

// NewMeters builds the meter provider. reg receives the instruments for
// Prometheus scrapes (nil: no scrape endpoint); getenv decides whether to
// push as well (nil: os.Getenv), and the exporter reads the process
// environment (OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_*,
// OTEL_METRIC_EXPORT_INTERVAL).
func NewMeters(ctx context.Context, getenv Getenv, serviceName string, reg prometheus.Registerer) (*Meters, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	res, err := newResource(ctx, serviceName)
	if err != nil {
		return nil, errorf("resource: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	if reg != nil {
		// Scrapes see the names Prometheus users expect (hogwire_…_total,
		// _seconds); the resource and scope belong in OTLP, not in every
		// series.
		pe, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
		if err != nil {
			return nil, errorf("prometheus exporter: %w", err)
		}
		opts = append(opts, sdkmetric.WithReader(pe))
	}
	if exports(getenv, "METRICS") {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, errorf("metric exporter: %w", err)
		}
		if !autoexport.IsNoneMetricReader(r) {
			opts = append(opts, sdkmetric.WithReader(r))
		}
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	return &Meters{MeterProvider: mp, shutdown: func(ctx context.Context) error {
		err := mp.Shutdown(ctx)
		if errors.Is(err, sdkmetric.ErrReaderShutdown) {
			return nil
		}
		return err
	}}, nil
}

// Metrics pushes the metrics of a Prometheus registry over OTLP as well,
// through the Prometheus bridge, when the OTEL_* variables ask for it.
// hogwire's own instruments come from NewMeters; this carries the Go
// runtime's and process's collectors, which have no OpenTelemetry
// counterpart here. Give it a registry without NewMeters' instruments, or
// they would be pushed twice.
func Metrics(ctx context.Context, getenv Getenv, serviceName string, g prometheus.Gatherer) (shutdown func(context.Context) error, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	none := func(context.Context) error { return nil }
	if !exports(getenv, "METRICS") {
		return none, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp sdkmetric.Exporter
	switch kind := strings.ToLower(strings.TrimSpace(getenv("OTEL_METRICS_EXPORTER"))); {
	case kind == "console":
		exp, err = stdoutmetric.New()
	case kind != "" && kind != "otlp":
		return nil, errorf("OTEL_METRICS_EXPORTER=%q is not supported (use otlp, console or none)", kind)
	case proto == "grpc":
		exp, err = otlpmetricgrpc.New(ctx)
	case proto == "" || proto == "http/protobuf":
		exp, err = otlpmetrichttp.New(ctx)
	default:
		return nil, errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q is not supported (use grpc or http/protobuf)", proto)
	}
	if err != nil {
		return nil, errorf("metric exporter: %w", err)
	}
	res, err := newResource(ctx, serviceName)
	if err != nil {
		return nil, errorf("resource: %w", err)
	}
	reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithProducer(promBridge.NewMetricProducer(promBridge.WithGatherer(g))))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
	return mp.Shutdown, nil
}
