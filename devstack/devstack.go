// Package devstack runs all of hogwire in one process on embedded etcd and
// NATS: the `hogwire dev` command, and the base of end-to-end tests.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"github.com/hogwire/hogwire/geoip"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/console"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/dataplane"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/embedetcd"
	"github.com/hogwire/hogwire/embednats"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/health"
	"github.com/hogwire/hogwire/natsconn"
	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/rpcserver"
	"github.com/hogwire/hogwire/secrets"
	"github.com/hogwire/hogwire/templates"
	"github.com/hogwire/hogwire/tracing"
)

// Config configures the stack. Zero values take the defaults of `hogwire dev`.
type Config struct {
	// GeoIPDB selects the database transformations' geoipLookup() reads,
	// as --geoip-db does (geoip.Select): empty for the country database
	// built in, "none" for none, else the path of a MaxMind-format city or
	// country database.
	GeoIPDB string
	// DataDir holds etcd's and NATS's data and the generated admin token,
	// node token and secrets key (default "./.hogwire").
	DataDir string
	// GRPCAddr serves the control plane's API and the data plane's gRPC
	// ingest (default "127.0.0.1:7070"); HTTPAddr serves the PostHog-compatible
	// capture API and the web console under /console/ (default
	// "127.0.0.1:8080"). Port 0 picks a free port.
	GRPCAddr, HTTPAddr string
	Logger             *slog.Logger
	// Tracing; nil disables tracing.
	Tracing *tracing.Provider
	// EventLog tunes the event stream, e.g. Memory storage or a short
	// AckWait for tests.
	EventLog eventlog.Config
	// ConsumeBatch is how many messages the node pulls at once (default 500).
	ConsumeBatch int
	// MaxInflightEvents bounds the events the node holds (default 20000).
	MaxInflightEvents int
	// HogMemory and HogSlots are the node's Hog memory budget and
	// concurrent Hog runs (see dataplane.Config; zero: its defaults).
	HogMemory int64
	HogSlots  int
	// Meters makes the data plane's metrics (nil: none).
	Meters metric.MeterProvider
	// Health tunes the health manager (tests shorten its windows).
	Health controlplane.HealthConfig
	// Retry is the data plane's durable retry schedule (tests shorten it).
	Retry dataplane.RetrySchedule
	// Backlog and BreakerFailures are the data plane's (zero: its
	// defaults).
	Backlog         dataplane.BacklogLimits
	BreakerFailures int
	// HTTPHandlers are mounted, by ServeMux pattern, on the HTTP server
	// next to the capture API (a web console, say).
	HTTPHandlers map[string]http.Handler
	// Capture sets ingest limits and the HTTP server's timeouts (Tokens
	// and Publisher are the node's).
	Capture capture.Config
	// Persons keeps person profiles (see dataplane.Config.Persons); `hogwire
	// dev` turns it on.
	Persons bool
	// SourceURL is the base of the links in the Hog globals (see
	// dataplane.Config.SourceURL).
	SourceURL string
	// NoRecords keeps no record of invocations (see
	// dataplane.Config.NoRecords).
	NoRecords bool
}

// Stack is a running dev stack.
type Stack struct {
	// GRPCAddr and HTTPAddr are the bound addresses.
	GRPCAddr, HTTPAddr string
	// AdminToken authenticates the admin API; it is stored in
	// <DataDir>/admin.token.
	AdminToken string
	// NodeToken authenticates data-plane nodes (<DataDir>/node.token).
	NodeToken string
	// EtcdURL and NATSURL are where the embedded stores listen.
	EtcdURL, NATSURL string
	// AdminTokenFile is the path of the admin token.
	AdminTokenFile string
	// Health answers /livez and /readyz (on the HTTP address too) from
	// checks of etcd, NATS and the node's configuration.
	Health *health.Checker

	log    *slog.Logger
	etcd   *embedetcd.Server
	nats   *embednats.Server
	client *clientv3.Client
	grpc   *rpcserver.Server
	http   *http.Server
	served chan error

	stopHealth context.CancelFunc
	healthDone chan struct{}

	cp       *controlplane.Replica
	dp       *dataplane.Running
	cpConn   *grpc.ClientConn
	natsConn *nats.Conn
	// personsConn is the person store's own connection.
	personsConn *nats.Conn
	geoip       *geoip.DB

	// Node is the data-plane node.
	Node *dataplane.Node
}

// Start starts every component and returns when all serve.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.DataDir == "" {
		cfg.DataDir = ".hogwire"
	}
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:7070"
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	s := &Stack{log: log, served: make(chan error, 2)}
	defer func() {
		if err != nil {
			// Both stop idempotently, so after stopServers too.
			if s.dp != nil {
				s.dp.Stop()
			}
			if s.cp != nil {
				s.cp.Stop()
			}
			s.closeStores()
		}
	}()

	s.AdminTokenFile = filepath.Join(cfg.DataDir, "admin.token")
	if s.AdminToken, err = auth.LoadOrCreate(s.AdminTokenFile, func() string { return auth.NewToken("hwa_") }); err != nil {
		return nil, err
	}
	if s.NodeToken, err = auth.LoadOrCreate(filepath.Join(cfg.DataDir, "node.token"), func() string { return auth.NewToken("hwn_") }); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(cfg.DataDir, "secrets.key")
	if _, err = auth.LoadOrCreate(keyFile, newSecretsKey); err != nil {
		return nil, err
	}
	keys, err := secrets.ReadKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	keyring, err := secrets.ParseKeyring(keys[0], keys[1:]...)
	if err != nil {
		return nil, fmt.Errorf("devstack: %s: %w", keyFile, err)
	}

	if s.etcd, err = embedetcd.Start(ctx, embedetcd.Config{Dir: filepath.Join(cfg.DataDir, "etcd"), Logger: log}); err != nil {
		return nil, err
	}
	s.EtcdURL = s.etcd.ClientURL()
	if s.nats, err = embednats.Start(embednats.Config{StoreDir: filepath.Join(cfg.DataDir, "nats")}); err != nil {
		return nil, err
	}
	s.NATSURL = s.nats.ClientURL()
	if s.natsConn, err = nats.Connect(s.NATSURL, nats.Name("hogwire-dev"), nats.InProcessServer(s.nats)); err != nil {
		return nil, fmt.Errorf("devstack: NATS: %w", err)
	}
	if cfg.Persons {
		if s.personsConn, err = nats.Connect(s.NATSURL, nats.Name("hogwire-dev-persons"), nats.InProcessServer(s.nats)); err != nil {
			return nil, fmt.Errorf("devstack: NATS: %w", err)
		}
	}
	if s.client, err = s.etcd.Client(); err != nil {
		return nil, fmt.Errorf("devstack: etcd client: %w", err)
	}

	catalog, err := templates.Load()
	if err != nil {
		return nil, err
	}
	hcfg := cfg.Health
	if hcfg.TracerProvider == nil && cfg.Tracing != nil {
		hcfg.TracerProvider = cfg.Tracing.TracerProvider
	}
	// Each role logs as it would in a process of its own; its packages add
	// their "component".
	if s.cp, err = controlplane.Start(ctx, controlplane.Config{
		Etcd: s.client, Logger: log.With("role", "controlplane"), ReplicaID: "dev",
		Sealer: keyring, CompileFilters: filters.Compile, Templates: catalog,
		Telemetry: controlplane.TelemetryConfig{Conn: s.natsConn, Memory: cfg.EventLog.Memory},
		Health:    hcfg,
		// Tests with real fetch reach loopback sinks, as the dev node does.
		Test: controlplane.TestConfig{FetchClient: fetch.New(fetch.Options{AllowCIDRs: fetch.Loopback()})},
	}); err != nil {
		return nil, err
	}

	gl, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("devstack: gRPC listener: %w", err)
	}
	s.GRPCAddr = gl.Addr().String()
	hl, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		gl.Close()
		return nil, fmt.Errorf("devstack: HTTP listener: %w", err)
	}
	s.HTTPAddr = hl.Addr().String()
	// The node reaches the control plane the way a separate process would:
	// over gRPC with the node token. The listener queues its connection
	// until the server below serves.
	if s.cpConn, err = rpcclient.Dial(s.GRPCAddr, rpcclient.Options{Token: s.NodeToken}); err != nil {
		gl.Close()
		hl.Close()
		return nil, err
	}
	dpCfg := dataplane.Config{
		NodeID: "dev", Address: s.GRPCAddr, ControlPlane: s.cpConn, NATS: s.natsConn,
		EventLog: cfg.EventLog, ConsumeBatch: cfg.ConsumeBatch, MaxInflightEvents: cfg.MaxInflightEvents,
		HogMemory: cfg.HogMemory, HogSlots: cfg.HogSlots, Retry: cfg.Retry,
		Backlog: cfg.Backlog, BreakerFailures: cfg.BreakerFailures,
		AllowEgress: fetch.Loopback(),
		Logger:      log.With("role", "dataplane"),
		Meters:      cfg.Meters, Capture: cfg.Capture,
		Persons: cfg.Persons, SourceURL: cfg.SourceURL, PersonsNATS: s.personsConn,
		NoRecords: cfg.NoRecords,
	}
	db, err := geoip.Load(cfg.GeoIPDB, log)
	if err != nil {
		gl.Close()
		hl.Close()
		return nil, err
	}
	if db != nil {
		s.geoip, dpCfg.GeoIP = db, db
	}
	if cfg.Tracing != nil {
		dpCfg.TracerProvider, dpCfg.Propagator = cfg.Tracing.TracerProvider, cfg.Tracing.Propagator
	}
	if s.dp, err = dataplane.Start(ctx, dpCfg, 5*time.Second); err != nil {
		gl.Close()
		hl.Close()
		if s.geoip != nil {
			_ = s.geoip.Close()
		}
		return nil, err
	}
	roles := controlplane.Roles()
	maps.Copy(roles, dataplane.Roles())
	opts := rpcserver.Options{
		Logger: log,
		Policy: &auth.Policy{Services: roles, AdminToken: s.AdminToken, NodeToken: s.NodeToken},
	}
	if cfg.Tracing != nil {
		opts.TracerProvider, opts.Propagator = cfg.Tracing.TracerProvider, cfg.Tracing.Propagator
	}
	s.grpc = rpcserver.New(opts)
	s.cp.Register(s.grpc)
	s.dp.Register(s.grpc)

	s.Health = health.New(log.With("component", "health"), 0)
	s.Health.Add("etcd", s.cp.Ready)
	s.Health.Add("nats", natsconn.Check(s.natsConn))
	s.Health.Add("config", func(context.Context) error {
		select {
		case <-s.dp.Ready():
			return nil
		default:
			return errors.New("waiting for the configuration from the control plane")
		}
	})
	hh := s.Health.Handler()
	mux := http.NewServeMux()
	mux.Handle("/", s.dp.Handler())
	mux.Handle("GET /livez", hh)
	mux.Handle("GET /readyz", hh)
	for pattern, h := range cfg.HTTPHandlers {
		mux.Handle(pattern, h)
	}
	ui, err := console.New(console.Options{GRPC: s.grpc.Server, Roles: roles, AdminToken: s.AdminToken, Logger: log.With("component", "console")})
	if err != nil {
		gl.Close()
		hl.Close()
		return nil, err
	}
	mux.Handle(console.Prefix, ui)
	s.http = capture.NewServer(mux, cfg.Capture.Server)
	go func() { s.served <- s.grpc.Serve(gl) }()
	go func() {
		if err := s.http.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
			s.served <- err
			return
		}
		s.served <- nil
	}()
	if err := s.cp.Ready(ctx); err != nil {
		s.stopServers(ctx)
		return nil, err
	}
	select {
	case <-s.dp.Ready():
	case <-s.dp.Exited():
		err := s.dp.Err()
		s.stopServers(ctx)
		return nil, fmt.Errorf("devstack: data plane: %w", err)
	case <-ctx.Done():
		s.stopServers(ctx)
		return nil, ctx.Err()
	}
	s.Node = s.dp.Node
	s.Health.OnChange(s.grpc.SetServing)
	s.Health.CheckNow(ctx)
	hctx, stopHealth := context.WithCancel(context.WithoutCancel(ctx))
	s.stopHealth = stopHealth
	s.healthDone = make(chan struct{})
	go func() { defer close(s.healthDone); s.Health.Run(hctx, 5*time.Second) }()
	return s, nil
}

// Err reports a component that stopped by itself.
func (s *Stack) Err() <-chan error { return s.served }

// Close stops the servers (gracefully until ctx ends) and then the stores.
func (s *Stack) Close(ctx context.Context) error {
	s.stopServers(ctx)
	s.closeStores()
	return nil
}

func (s *Stack) stopServers(ctx context.Context) {
	if s.stopHealth != nil {
		s.stopHealth()
		<-s.healthDone
	}
	if err := s.dp.Stop(); err != nil {
		s.log.Warn("data plane stopped with an error", "err", err)
	}
	s.cp.Stop()
	s.grpc.Shutdown(ctx)
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
	}
	<-s.served
	<-s.served
}

func (s *Stack) closeStores() {
	if s.geoip != nil {
		_ = s.geoip.Close()
	}
	if s.cpConn != nil {
		s.cpConn.Close()
	}
	if s.personsConn != nil {
		s.personsConn.Close()
	}
	if s.natsConn != nil {
		s.natsConn.Close()
	}
	if s.client != nil {
		s.client.Close()
	}
	if s.nats != nil {
		s.nats.Close()
	}
	if s.etcd != nil {
		s.etcd.Close()
	}
}

// newSecretsKey returns a base64 AES-256 key for encrypting secret inputs.
func newSecretsKey() string {
	k, err := secrets.GenerateKey()
	if err != nil {
		panic(fmt.Sprintf("devstack: %v", err))
	}
	return k
}

// ControlPlane is the stack's control-plane replica: stopping it ends its
// leadership (and the jobs only the leader runs) while its API goes on
// serving, which tests use to hand leadership to another replica.
func (s *Stack) ControlPlane() *controlplane.Replica { return s.cp }
