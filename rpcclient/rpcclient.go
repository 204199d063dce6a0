// Package rpcclient dials hogwire's gRPC servers with tracing, a bearer
// token, and failover between several servers, and paces the loops that
// keep long-lived streams to them open.
package rpcclient

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

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

// roundRobin spreads calls over every server that is up and skips those
// that are not, so one server going away costs only the calls in flight on
// it.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// Dial returns a client connection. target is one server ("host:port"),
// several ("host1:7070,host2:7070"), or a DNS name whose every address is a
// server ("dns:///controlplane-headless.ns.svc:7070", re-resolved when
// servers come and go). With several servers, calls go round-robin to
// those that are up. It connects lazily, on the first call, and reconnects
// with exponential backoff and jitter.
func Dial(target string, opts Options) (*grpc.ClientConn, error) {
	var otelOpts []otelgrpc.Option
	if opts.TracerProvider != nil {
		otelOpts = append(otelOpts, otelgrpc.WithTracerProvider(opts.TracerProvider))
	}
	if opts.Propagator != nil {
		otelOpts = append(otelOpts, otelgrpc.WithPropagators(opts.Propagator))
	}
	do := []grpc.DialOption{
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelOpts...)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 500 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 15 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		// Finds a server that vanished without closing its connections (a
		// node lost power) within half a minute. rpcserver permits pings
		// every 10s.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultServiceConfig(roundRobin),
	}
	if opts.Creds != nil {
		do = append(do, grpc.WithTransportCredentials(opts.Creds))
	} else {
		do = append(do, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if opts.Token != "" {
		do = append(do, grpc.WithPerRPCCredentials(auth.Bearer{Token: opts.Token, Insecure: opts.Creds == nil}))
	}
	dialTarget := target
	// Addresses hold neither commas nor spaces.
	addrs := strings.FieldsFunc(target, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	switch {
	case len(addrs) == 0:
		return nil, fmt.Errorf("rpcclient: no address in %q", target)
	case len(addrs) > 1:
		// A fixed list: hand gRPC the addresses as they are.
		r := manual.NewBuilderWithScheme("hogwire-static")
		state := resolver.State{}
		for _, a := range addrs {
			state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
		}
		r.InitialState(state)
		do = append(do, grpc.WithResolvers(r))
		dialTarget = r.Scheme() + ":///" + strings.Join(addrs, ",")
	}
	cc, err := grpc.NewClient(dialTarget, append(do, opts.More...)...)
	if err != nil {
		return nil, fmt.Errorf("rpcclient: %s: %w", target, err)
	}
	return cc, nil
}
