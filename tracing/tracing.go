// Package tracing sets up OpenTelemetry traces and metrics from the
// standard OTEL_* environment variables, through the contrib autoexport
// package: OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER pick otlp,
// console or none, OTEL_EXPORTER_OTLP_PROTOCOL picks grpc or
// http/protobuf, and the exporters read the other OTEL_EXPORTER_OTLP_*
// variables themselves. With none of them set nothing is exported and
// spans cost next to nothing.
package tracing

import (
	"context"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Provider is a configured tracer provider and the propagator to use with it.
type Provider struct {
	trace.TracerProvider
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// Shutdown flushes pending spans and stops the exporter.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.shutdown == nil {
		return nil
	}
	return p.shutdown(ctx)
}

// Getenv reads an environment variable; os.Getenv in production, a map in tests.
type Getenv func(string) string

// exports reports whether a signal ("TRACES", "METRICS") is to be exported:
// its OTEL_<SIGNAL>_EXPORTER names an exporter other than none, or it is
// unset and an OTLP endpoint is configured. Unlike the specification's
// default (otlp to localhost), an unconfigured process exports nothing: a
// hogwire without a collector must not log export errors forever.
func exports(getenv Getenv, signal string) bool {
	kind := strings.ToLower(strings.TrimSpace(getenv("OTEL_" + signal + "_EXPORTER")))
	if kind != "" {
		return kind != "none"
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// newResource describes the process: serviceName unless OTEL_SERVICE_NAME
// says otherwise, OTEL_RESOURCE_ATTRIBUTES, host and process id.
func newResource(ctx context.Context, serviceName string) (*resource.Resource, error) {
	return resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithHost(),
		resource.WithProcessPID(),
	)
}

// FromEnv builds a tracer provider. getenv decides whether traces are
// exported at all (nil: os.Getenv); the exporter itself reads the process
// environment. serviceName applies unless OTEL_SERVICE_NAME is set. The
// sampler follows OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
func FromEnv(ctx context.Context, getenv Getenv, serviceName string) (*Provider, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	if !exports(getenv, "TRACES") {
		return &Provider{TracerProvider: noop.NewTracerProvider(), Propagator: prop}, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, errorf("span exporter: %w", err)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return &Provider{TracerProvider: noop.NewTracerProvider(), Propagator: prop}, nil
	}
	res, err := newResource(ctx, serviceName)
	if err != nil {
		return nil, errorf("resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Provider{TracerProvider: tp, Propagator: prop, shutdown: tp.Shutdown}, nil
}
