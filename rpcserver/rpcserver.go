// Package rpcserver builds hogwire's gRPC servers the same way for every
// role: OpenTelemetry tracing, bearer-token auth, panic recovery, the
// standard health service and server reflection.
package rpcserver

import (
	"context"
	"log/slog"
	"maps"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/hogwire/hogwire/auth"
)

// Options configure a server.
type Options struct {
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// Policy decides which calls need which token; nil allows every call.
	Policy *auth.Policy
	// Creds enables TLS; nil serves plaintext.
	Creds credentials.TransportCredentials
}

// Server is a gRPC server with its health service.
type Server struct {
	*grpc.Server
	// Health reports per-service serving status; "" is the whole server.
	Health *health.Server
}

// New returns a server with health and reflection registered. Register the
// application's services on it before calling Serve.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	var otelOpts []otelgrpc.Option
	if opts.TracerProvider != nil {
		otelOpts = append(otelOpts, otelgrpc.WithTracerProvider(opts.TracerProvider))
	}
	if opts.Propagator != nil {
		otelOpts = append(otelOpts, otelgrpc.WithPropagators(opts.Propagator))
	}
	unary := []grpc.UnaryServerInterceptor{recoverUnary(log)}
	stream := []grpc.StreamServerInterceptor{recoverStream(log)}
	if opts.Policy != nil {
		// Probes and grpcurl must work without a token.
		p := *opts.Policy
		p.Services = maps.Clone(p.Services)
		if p.Services == nil {
			p.Services = map[string]auth.Role{}
		}
		for _, svc := range []string{
			healthpb.Health_ServiceDesc.ServiceName,
			"grpc.reflection.v1.ServerReflection",
			"grpc.reflection.v1alpha.ServerReflection",
		} {
			p.Services[svc] = auth.Public
		}
		unary = append(unary, p.UnaryInterceptor())
		stream = append(stream, p.StreamInterceptor())
	}
	so := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelOpts...)),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// Data-plane nodes hold long-lived streams; let them ping to keep
		// idle connections through load balancers.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	if opts.Creds != nil {
		so = append(so, grpc.Creds(opts.Creds))
	}
	gs := grpc.NewServer(so...)
	hs := health.NewServer()
	// Not serving until the owner says it is ready (SetServing).
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return &Server{Server: gs, Health: hs}
}

// SetServing sets the health status of the whole server and of every
// service registered on it.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.Health.SetServingStatus("", st)
	for name := range s.GetServiceInfo() {
		s.Health.SetServingStatus(name, st)
	}
}

// Shutdown marks the server NOT_SERVING, then stops it gracefully, forcing
// the stop when ctx ends first (long-lived streams would otherwise hold it).
func (s *Server) Shutdown(ctx context.Context) {
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
		<-done
	}
}

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in RPC", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in RPC", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(srv, ss)
	}
}
