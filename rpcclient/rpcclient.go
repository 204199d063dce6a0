// Package rpcclient dials hogwire's gRPC servers with tracing and a bearer
// token.
package rpcclient

import (
	"fmt"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hogwire/hogwire/auth"
)

// Options configure a connection.
type Options struct {
	// Token is sent as "authorization: Bearer <token>" when set.
	Token string
	// Creds enables TLS; nil dials plaintext.
	Creds          credentials.TransportCredentials
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// More are further dial options, such as interceptors.
	More []grpc.DialOption
}

// Dial returns a client connection to target ("host:port"). It connects
// lazily, on the first call.
func Dial(target string, opts Options) (*grpc.ClientConn, error) {
	var otelOpts []otelgrpc.Option
	if opts.TracerProvider != nil {
		otelOpts = append(otelOpts, otelgrpc.WithTracerProvider(opts.TracerProvider))
	}
	if opts.Propagator != nil {
		otelOpts = append(otelOpts, otelgrpc.WithPropagators(opts.Propagator))
	}
	do := []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelOpts...))}
	if opts.Creds != nil {
		do = append(do, grpc.WithTransportCredentials(opts.Creds))
	} else {
		do = append(do, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if opts.Token != "" {
		do = append(do, grpc.WithPerRPCCredentials(auth.Bearer{Token: opts.Token, Insecure: opts.Creds == nil}))
	}
	cc, err := grpc.NewClient(target, append(do, opts.More...)...)
	if err != nil {
		return nil, fmt.Errorf("rpcclient: %s: %w", target, err)
	}
	return cc, nil
}
