// Package controlplane serves hogwire's admin API and the streams that
// data-plane nodes use: configuration out, telemetry in. State lives in
// etcd, so any number of replicas can serve side by side.
//
// Each gRPC service is one type, declared in the file that holds its
// methods (projectServer in projects.go, destinationServer in
// destinations.go, …); they share the storage layer, package store, and
// the request errors of errors.go. Server builds them and registers them,
// and runs the leader's jobs: re-sealing secrets and the health manager.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/configcache"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/controlplane/testrun"
	"github.com/hogwire/hogwire/persons"
)

// Config configures a control-plane replica.
type Config struct {
	// Etcd is the client for all state; the caller owns it.
	Etcd *clientv3.Client
	// Prefix of every key hogwire writes (default "/hogwire/").
	Prefix string
	Logger *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// ReplicaID names this replica in ListNodes and leader election
	// (default: host name and process id).
	ReplicaID string
	// LeaderTTL is the leader's etcd session TTL: a new leader takes over
	// within about this long after the leader dies (default 3s).
	LeaderTTL time.Duration
	// Sealer encrypts secret input values at rest; required.
	Sealer Sealer
	// Templates is the catalogue of shipped templates; nil serves none.
	Templates Templates
	// CompileFilters compiles destination filters; required.
	CompileFilters FilterCompiler
	// Telemetry stores what nodes report; without a NATS connection
	// TelemetryService answers UNIMPLEMENTED.
	Telemetry TelemetryConfig
	// Persons is the person store PersonService serves; nil makes one on
	// the Telemetry connection (without one, PersonService answers
	// UNIMPLEMENTED).
	Persons PersonStore
	// Test configures TestService.Test: the fetch client and retry policy
	// of its real fetch mode.
	Test TestConfig
	// Health tunes the health manager (HealthJob), which quarantines
	// failing destinations; zero fields take PostHog's values.
	Health HealthConfig
}

// Sealer encrypts secret input values at rest. aad binds a sealed value to
// its place (destination and input), so it cannot be moved elsewhere.
type Sealer = store.Sealer

// Templates is the catalogue of shipped destination templates.
type Templates interface {
	// List returns every template, in display order.
	List() []*hogwirev1.Template
	// Get returns the template with the given id ("webhook").
	Get(id string) (*hogwirev1.Template, bool)
}

// Server is one control-plane replica: it builds the services over one
// store and registers them (Register); the leader's jobs (leader.go,
// reseal.go, health.go) run on it too.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	now   func() time.Time

	replicaID string
	leader    atomic.Bool
	// telemetry is nil without NATS; the services reading it answer
	// UNIMPLEMENTED then.
	telemetry *telemetryStore

	projects     *projectServer
	destinations *destinationServer
	templates    *templateServer
	tests        *testServer
	logs         *logServer
	metrics      *metricsServer
	config       *configServer
	reports      *telemetryServer
	nodes        *nodeServer
	persons      *personServer
	invocations  *invocationServer
}

// NewContext returns a replica for cfg; ctx bounds the set-up calls
// (creating the telemetry streams). Start also runs its background work.
func NewContext(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Etcd == nil {
		return nil, errors.New("controlplane: an etcd client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/hogwire/"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Sealer == nil {
		return nil, errors.New("controlplane: a Sealer for secret inputs is required")
	}
	if cfg.CompileFilters == nil {
		return nil, errors.New("controlplane: a filter compiler is required")
	}
	if cfg.ReplicaID == "" {
		host, _ := os.Hostname()
		cfg.ReplicaID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.LeaderTTL <= 0 {
		cfg.LeaderTTL = 3 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: store.New(cfg.Etcd, cfg.Prefix, cfg.Sealer), now: cfg.Now,
		replicaID: cfg.ReplicaID}
	if cfg.Telemetry.Conn != nil {
		t, err := openTelemetry(ctx, cfg.Telemetry)
		if err != nil {
			return nil, err
		}
		s.telemetry = t
	}
	people := cfg.Persons
	if people == nil && cfg.Telemetry.Conn != nil {
		ps, err := persons.New(persons.Config{Conn: cfg.Telemetry.Conn, Memory: cfg.Telemetry.Memory, Logger: cfg.Logger.With("component", "persons")})
		if err != nil {
			return nil, err
		}
		people = ps
	}
	reader := telemetryReader{store: s.store, telemetry: s.telemetry}
	s.projects = &projectServer{store: s.store, log: s.log, now: s.now}
	s.destinations = &destinationServer{store: s.store, log: s.log, now: s.now, templates: cfg.Templates,
		compileFilters: cfg.CompileFilters, telemetry: s.telemetry}
	s.templates = &templateServer{templates: cfg.Templates}
	s.tests = &testServer{store: s.store, dests: s.destinations, run: testrun.New(cfg.Test, s.now)}
	s.logs = &logServer{telemetryReader: reader}
	s.metrics = &metricsServer{telemetryReader: reader, now: s.now}
	s.config = &configServer{store: s.store, log: s.log, now: s.now, replicaID: cfg.ReplicaID, cache: configcache.NewCache(0),
		dests: s.destinations}
	s.reports = &telemetryServer{telemetry: s.telemetry, log: s.log}
	s.nodes = &nodeServer{store: s.store}
	s.persons = &personServer{store: s.store, log: s.log, people: people}
	is, err := newInvocationServer(ctx, reader, s.log, cfg.Telemetry)
	if err != nil {
		return nil, err
	}
	s.invocations = is
	if is.records != nil {
		s.tests.events = is.records
	}
	return s, nil
}

// Register adds the control plane's services to gs.
func (s *Server) Register(gs grpc.ServiceRegistrar) {
	hogwirev1.RegisterProjectServiceServer(gs, s.projects)
	hogwirev1.RegisterDestinationServiceServer(gs, s.destinations)
	hogwirev1.RegisterTemplateServiceServer(gs, s.templates)
	hogwirev1.RegisterTestServiceServer(gs, s.tests)
	hogwirev1.RegisterLogServiceServer(gs, s.logs)
	hogwirev1.RegisterMetricsServiceServer(gs, s.metrics)
	hogwirev1.RegisterConfigServiceServer(gs, s.config)
	hogwirev1.RegisterTelemetryServiceServer(gs, s.reports)
	hogwirev1.RegisterNodeServiceServer(gs, s.nodes)
	hogwirev1.RegisterPersonServiceServer(gs, s.persons)
	hogwirev1.RegisterInvocationServiceServer(gs, s.invocations)
}

// Roles says which token each control-plane service requires.
func Roles() map[string]auth.Role {
	return map[string]auth.Role{
		hogwirev1.ProjectService_ServiceDesc.ServiceName:     auth.Admin,
		hogwirev1.DestinationService_ServiceDesc.ServiceName: auth.Admin,
		hogwirev1.TemplateService_ServiceDesc.ServiceName:    auth.Admin,
		hogwirev1.TestService_ServiceDesc.ServiceName:        auth.Admin,
		hogwirev1.LogService_ServiceDesc.ServiceName:         auth.Admin,
		hogwirev1.MetricsService_ServiceDesc.ServiceName:     auth.Admin,
		hogwirev1.NodeService_ServiceDesc.ServiceName:        auth.Admin,
		hogwirev1.PersonService_ServiceDesc.ServiceName:      auth.Admin,
		hogwirev1.InvocationService_ServiceDesc.ServiceName:  auth.Admin,
		hogwirev1.ConfigService_ServiceDesc.ServiceName:      auth.NodeRole,
		hogwirev1.TelemetryService_ServiceDesc.ServiceName:   auth.NodeRole,
	}
}

// Ready reports whether etcd answers, for readiness.
func (s *Server) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.cfg.Etcd.Get(ctx, s.cfg.Prefix+"ready", clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("controlplane: etcd: %w", err)
	}
	return nil
}
