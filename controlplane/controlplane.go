// Package controlplane serves hogwire's admin API and the streams that
// data-plane nodes use: configuration out, telemetry in. State lives in
// etcd, so any number of replicas can serve side by side.
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
type Sealer interface {
	Seal(plaintext, aad []byte) (string, error)
	Open(sealed string, aad []byte) ([]byte, error)
}

// Templates is the catalogue of shipped destination templates.
type Templates interface {
	// List returns every template, in display order.
	List() []*hogwirev1.Template
	// Get returns the template with the given id ("webhook").
	Get(id string) (*hogwirev1.Template, bool)
}

// Server is one control-plane replica.
type Server struct {
	cfg  Config
	log  *slog.Logger
	etcd *clientv3.Client
	keys keys
	now  func() time.Time

	replicaID      string
	sealer         Sealer
	leader         atomic.Bool
	templates      Templates
	compileFilters FilterCompiler

	hogwirev1.UnimplementedProjectServiceServer
	hogwirev1.UnimplementedDestinationServiceServer
	hogwirev1.UnimplementedTemplateServiceServer
	hogwirev1.UnimplementedTestServiceServer
	hogwirev1.UnimplementedLogServiceServer
	hogwirev1.UnimplementedMetricsServiceServer
	hogwirev1.UnimplementedConfigServiceServer
	hogwirev1.UnimplementedTelemetryServiceServer

	telemetry   *telemetryStore
	persons     personServer
	invocations *invocationServer
	hogwirev1.UnimplementedNodeServiceServer

	// cache is the configuration every Watch stream reads; feed keeps it
	// current while any stream is open.
	cache *configcache.Cache
	feed  configFeed
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
	s := &Server{cfg: cfg, log: cfg.Logger, etcd: cfg.Etcd, keys: keys{cfg.Prefix}, now: cfg.Now,
		replicaID: cfg.ReplicaID, sealer: cfg.Sealer, templates: cfg.Templates, compileFilters: cfg.CompileFilters,
		cache: configcache.NewCache(0)}
	if cfg.Telemetry.Conn != nil {
		t, err := openTelemetry(ctx, cfg.Telemetry)
		if err != nil {
			return nil, err
		}
		s.telemetry = t
	}
	is, err := newInvocationServer(ctx, s, cfg.Telemetry)
	if err != nil {
		return nil, err
	}
	s.invocations = is
	s.persons = personServer{s: s, store: cfg.Persons}
	if cfg.Persons == nil && cfg.Telemetry.Conn != nil {
		ps, err := persons.New(persons.Config{Conn: cfg.Telemetry.Conn, Memory: cfg.Telemetry.Memory, Logger: cfg.Logger.With("component", "persons")})
		if err != nil {
			return nil, err
		}
		s.persons.store = ps
	}
	return s, nil
}

// Register adds the control plane's services to gs.
func (s *Server) Register(gs grpc.ServiceRegistrar) {
	hogwirev1.RegisterProjectServiceServer(gs, s)
	hogwirev1.RegisterDestinationServiceServer(gs, s)
	hogwirev1.RegisterTemplateServiceServer(gs, s)
	hogwirev1.RegisterTestServiceServer(gs, s)
	hogwirev1.RegisterLogServiceServer(gs, s)
	hogwirev1.RegisterMetricsServiceServer(gs, s)
	hogwirev1.RegisterConfigServiceServer(gs, s)
	hogwirev1.RegisterTelemetryServiceServer(gs, s)
	hogwirev1.RegisterNodeServiceServer(gs, s)
	hogwirev1.RegisterPersonServiceServer(gs, &s.persons)
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
