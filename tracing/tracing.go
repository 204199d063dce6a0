// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables.
package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
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

// FromEnv builds a provider. Spans are exported over OTLP/gRPC when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set
// (the exporter reads the other OTEL_EXPORTER_OTLP_* variables itself) and
// OTEL_TRACES_EXPORTER is not "none"; otherwise no exporter runs and spans
// cost next to nothing. serviceName applies unless OTEL_SERVICE_NAME is set.
func FromEnv(ctx context.Context, getenv Getenv, serviceName string) (*Provider, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	exporterKind := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if exporterKind == "none" || (endpoint == "" && exporterKind != "otlp") {
		return &Provider{TracerProvider: noop.NewTracerProvider(), Propagator: prop}, nil
	}
	if exporterKind != "" && exporterKind != "otlp" {
		return nil, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q is not supported (use otlp or none)", exporterKind)
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
	)
	return &Provider{TracerProvider: tp, Propagator: prop, shutdown: tp.Shutdown}, nil
}
