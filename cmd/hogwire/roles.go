package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/credentials"

	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/console"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/dataplane"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/rpcserver"
	"github.com/hogwire/hogwire/secrets"
	"github.com/hogwire/hogwire/templates"
	"github.com/hogwire/hogwire/tracing"
	"github.com/hogwire/hogwire/zapslog"
)

// shutdownGrace bounds a graceful stop after SIGINT/SIGTERM.
const shutdownGrace = 10 * time.Second

type logFlags struct{ level, format string }

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level: %v", err)}
	}
	o := &slog.HandlerOptions{Level: lv}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format: %q is not text or json", l.format)}
}

type tlsFlags struct{ cert, key, clientCA string }

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert-file", "", "serve gRPC over TLS with this certificate (PEM)")
	fs.StringVar(&t.key, "tls-key-file", "", "private key of --tls-cert-file (PEM)")
	fs.StringVar(&t.clientCA, "tls-client-ca-file", "", "require client certificates signed by this CA (PEM)")
}

// creds returns nil (plaintext) when no certificate is configured.
func (t *tlsFlags) creds() (credentials.TransportCredentials, error) {
	if t.cert == "" && t.key == "" {
		if t.clientCA != "" {
			return nil, usageError{"--tls-client-ca-file needs --tls-cert-file and --tls-key-file"}
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.clientCA != "" {
		pem, err := os.ReadFile(t.clientCA)
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS: no certificate in %s", t.clientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(cfg), nil
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg devstack.Config
	var lf logFlags
	fs.StringVar(&cfg.DataDir, "data-dir", ".hogwire", "directory for etcd and NATS data, tokens and keys")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:7070", "gRPC API and ingest address")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "PostHog-compatible HTTP capture address; also serves the web console at /console/")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics here (off when empty)")
	lf.register(fs)
	if err := parseFlags(fs, args, os.Getenv); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	tp, err := tracing.FromEnv(ctx, os.Getenv, "hogwire")
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)
	reg := newRegistry()
	stopMetrics, err := tracing.Metrics(ctx, os.Getenv, "hogwire", reg)
	if err != nil {
		return err
	}
	defer shutdownMetrics(stopMetrics, log)
	cfg.Logger, cfg.Tracing, cfg.Metrics = log, tp, reg
	if *metricsAddr != "" {
		ml, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		ms := &http.Server{Handler: metricsHandler(reg), ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(ml)
		defer ms.Close()
	}

	st, err := devstack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `hogwire dev is running (data in %s)
  gRPC API and ingest:  %s
  HTTP capture API:     http://%s  (point PostHog SDKs here)
  web console:          http://%s/console/  (sign in with the admin token)
  admin token:          %s  (also in %s)
  embedded etcd:        %s
  embedded NATS:        %s
Press Ctrl-C to stop.
`, cfg.DataDir, st.GRPCAddr, st.HTTPAddr, st.HTTPAddr, st.AdminToken, st.AdminTokenFile, st.EtcdURL, st.NATSURL)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-st.Err():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := st.Close(sctx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func runControlPlane(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		lf                                        logFlags
		tf                                        tlsFlags
		grpcAddr, endpoints, prefix, natsURL      string
		adminTokenFile, nodeTokenFile, secretsKey string
		metricsAddr, allowEgress, consoleAddr     string
	)
	fs.StringVar(&grpcAddr, "grpc-addr", ":7070", "gRPC API address")
	fs.StringVar(&consoleAddr, "http-addr", ":7080", "web console address, at /console/ (off when empty)")
	fs.StringVar(&endpoints, "etcd-endpoints", "http://127.0.0.1:2379", "comma-separated etcd client URLs")
	fs.StringVar(&prefix, "etcd-prefix", "/hogwire/", "prefix of every etcd key")
	fs.StringVar(&natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL (telemetry storage)")
	fs.StringVar(&adminTokenFile, "admin-token-file", "", "file holding the admin token (or set HOGWIRE_ADMIN_TOKEN)")
	fs.StringVar(&nodeTokenFile, "node-token-file", "", "file holding the node token (or set HOGWIRE_NODE_TOKEN)")
	fs.StringVar(&secretsKey, "secrets-key-file", "", "file of base64 AES-256 keys for secret inputs, newest first (or set HOGWIRE_SECRETS_KEY to one key)")
	fs.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus /metrics here (off when empty)")
	fs.StringVar(&allowEgress, "allow-egress", "", "comma-separated CIDRs that a destination test with real fetch may reach although private or loopback")
	var hc controlplane.HealthConfig
	var tc controlplane.TelemetryConfig
	fs.DurationVar(&tc.MaxAge, "telemetry-retention", 7*24*time.Hour, "keep destination metrics and logs this long")
	fs.Int64Var(&tc.MaxLogsPerDestination, "logs-per-destination", 10000, "keep at most this many log entries per destination")
	fs.BoolVar(&hc.Off, "health-off", false, "never quarantine destinations")
	fs.Float64Var(&hc.BucketSize, "health-bucket", 10000, "health token bucket size per destination")
	fs.Float64Var(&hc.RefillPerSecond, "health-refill", 10, "health tokens refilled per second")
	fs.Float64Var(&hc.ErrorCost, "health-error-cost", 100, "tokens an error (thrown, 5xx after retries, timeout) costs")
	fs.DurationVar(&hc.SlowThreshold, "health-slow", 5*time.Second, "invocations at least this slow cost tokens by duration")
	fs.DurationVar(&hc.QuarantineFor, "health-quarantine", 10*time.Minute, "how long a quarantine lasts")
	fs.IntVar(&hc.MaxQuarantines, "health-max-quarantines", 3, "quarantines within --health-window that disable a destination indefinitely")
	fs.DurationVar(&hc.QuarantineWindow, "health-window", 24*time.Hour, "window for --health-max-quarantines")
	lf.register(fs)
	tf.register(fs)
	if err := parseFlags(fs, args, os.Getenv); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	egress, err := parseCIDRs(allowEgress)
	if err != nil {
		return usageError{fmt.Sprintf("--allow-egress: %v", err)}
	}
	adminToken, err := secretFromFileOrEnv(adminTokenFile, "HOGWIRE_ADMIN_TOKEN", "--admin-token-file")
	if err != nil {
		return err
	}
	nodeToken, err := secretFromFileOrEnv(nodeTokenFile, "HOGWIRE_NODE_TOKEN", "--node-token-file")
	if err != nil {
		return err
	}
	keyring, err := loadKeyring(secretsKey)
	if err != nil {
		return err
	}
	creds, err := tf.creds()
	if err != nil {
		return err
	}
	tp, err := tracing.FromEnv(ctx, os.Getenv, "hogwire-controlplane")
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)

	etcd, err := clientv3.New(clientv3.Config{
		Endpoints: splitList(endpoints), DialTimeout: 5 * time.Second,
		Logger: zapslog.New(log.With("component", "etcd-client"), zapcore.ErrorLevel, nil),
	})
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()
	catalog, err := templates.Load()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(natsURL, nats.Name("hogwire-controlplane"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()
	cp, err := controlplane.NewContext(ctx, controlplane.Config{
		Etcd: etcd, Prefix: prefix, Logger: log, Sealer: keyring, CompileFilters: filters.Compile, Templates: catalog,
		Telemetry: controlplane.TelemetryConfig{Conn: nc, MaxAge: tc.MaxAge, MaxLogsPerDestination: tc.MaxLogsPerDestination},
		Test:      controlplane.TestConfig{FetchClient: fetch.New(fetch.Options{AllowCIDRs: egress})},
		Health: controlplane.HealthConfig{TracerProvider: tp, Off: hc.Off, BucketSize: hc.BucketSize, RefillPerSecond: hc.RefillPerSecond,
			ErrorCost: hc.ErrorCost, SlowThreshold: hc.SlowThreshold, QuarantineFor: hc.QuarantineFor,
			MaxQuarantines: hc.MaxQuarantines, QuarantineWindow: hc.QuarantineWindow},
	})
	if err != nil {
		return err
	}
	electionDone := make(chan struct{})
	go func() {
		defer close(electionDone)
		_ = cp.RunElection(ctx, cp.ResealJob, cp.HealthJob)
	}()
	defer func() { <-electionDone }()
	gs := rpcserver.New(rpcserver.Options{
		Logger: log, TracerProvider: tp, Propagator: tp.Propagator, Creds: creds,
		Policy: &auth.Policy{Services: controlplane.Roles(), AdminToken: adminToken, NodeToken: nodeToken},
	})
	cp.Register(gs)
	var ui http.Handler
	if consoleAddr != "" {
		if ui, err = console.New(console.Options{GRPC: gs.Server, Roles: controlplane.Roles(), AdminToken: adminToken, Logger: log.With("component", "console")}); err != nil {
			return err
		}
	}
	go watchReady(ctx, gs, cp.Ready, log)
	log.Info("control plane starting", "grpc_addr", grpcAddr, "console_addr", consoleAddr, "etcd", endpoints, "nats", natsURL, "tls", creds != nil)
	reg := newRegistry()
	stopMetrics, err := tracing.Metrics(ctx, os.Getenv, "hogwire-controlplane", reg)
	if err != nil {
		return err
	}
	defer shutdownMetrics(stopMetrics, log)
	return serve(ctx, log, gs, grpcAddr, ui, consoleAddr, metricsAddr, reg)
}

func runDataPlane(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("dataplane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		lf                                          logFlags
		tf                                          tlsFlags
		grpcAddr, httpAddr, cpAddr, natsURL, nodeID string
		nodeTokenFile, metricsAddr, allowEgress     string
		storage, cpCA                               string
		cpTLS, anonymizeIPs                         bool
		ackWait, dupWindow                          time.Duration
		maxInflight, perMessage                     int
	)
	fs.StringVar(&grpcAddr, "grpc-addr", ":7071", "gRPC ingest address")
	fs.StringVar(&httpAddr, "http-addr", ":8080", "PostHog-compatible HTTP capture address")
	fs.StringVar(&cpAddr, "controlplane-addr", "127.0.0.1:7070", "control plane gRPC address")
	fs.BoolVar(&cpTLS, "controlplane-tls", false, "connect to the control plane over TLS")
	fs.StringVar(&cpCA, "controlplane-ca-file", "", "CA certificate (PEM) to verify the control plane with (default: system roots)")
	fs.StringVar(&nodeTokenFile, "node-token-file", "", "file holding the node token (or set HOGWIRE_NODE_TOKEN)")
	fs.StringVar(&natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL (durable event log)")
	fs.StringVar(&storage, "event-storage", "file", "JetStream storage of the event log: file or memory")
	fs.DurationVar(&ackWait, "ack-wait", time.Minute, "redeliver an event held this long by a node that stopped answering")
	fs.BoolVar(&anonymizeIPs, "anonymize-ips", false, "do not record the sender's address as $ip on captured events")
	fs.DurationVar(&dupWindow, "duplicate-window", 2*time.Minute, "drop a re-sent event whose uuid was stored this recently (costs NATS memory per event in the window)")
	fs.IntVar(&maxInflight, "max-inflight-events", 20000, "events this node holds at once; past it, events wait in the log")
	fs.IntVar(&perMessage, "events-per-message", 100, "events of one capture batch stored per JetStream message (1: each alone)")
	fs.StringVar(&nodeID, "node-id", "", "unique id of this node (default: the host name)")
	fs.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus /metrics here (off when empty)")
	fs.StringVar(&allowEgress, "allow-egress", "", "comma-separated CIDRs that fetch may reach although private or loopback")
	lf.register(fs)
	tf.register(fs)
	if err := parseFlags(fs, args, os.Getenv); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	nodeToken, err := secretFromFileOrEnv(nodeTokenFile, "HOGWIRE_NODE_TOKEN", "--node-token-file")
	if err != nil {
		return err
	}
	if nodeID == "" {
		if nodeID, err = os.Hostname(); err != nil {
			return fmt.Errorf("--node-id: %w", err)
		}
	}
	egress, err := parseCIDRs(allowEgress)
	if err != nil {
		return usageError{fmt.Sprintf("--allow-egress: %v", err)}
	}
	if storage != "file" && storage != "memory" {
		return usageError{fmt.Sprintf("--event-storage: %q is not file or memory", storage)}
	}
	creds, err := tf.creds()
	if err != nil {
		return err
	}
	tp, err := tracing.FromEnv(ctx, os.Getenv, "hogwire-dataplane")
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)

	copts := rpcclient.Options{Token: nodeToken, TracerProvider: tp, Propagator: tp.Propagator}
	if cpTLS || cpCA != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cpCA != "" {
			pem, err := os.ReadFile(cpCA)
			if err != nil {
				return fmt.Errorf("--controlplane-ca-file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("--controlplane-ca-file: no certificate in %s", cpCA)
			}
		}
		copts.Creds = credentials.NewTLS(tc)
	}
	cp, err := rpcclient.Dial(cpAddr, copts)
	if err != nil {
		return err
	}
	defer cp.Close()
	nc, err := nats.Connect(natsURL, nats.Name("hogwire-dataplane-"+nodeID), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()

	reg := newRegistry()
	stopMetrics, err := tracing.Metrics(ctx, os.Getenv, "hogwire-dataplane", reg)
	if err != nil {
		return err
	}
	defer shutdownMetrics(stopMetrics, log)
	node, err := dataplane.New(dataplane.Config{
		Metrics: reg,
		NodeID:  nodeID, Address: grpcAddr, ControlPlane: cp, NATS: nc,
		EventLog: eventlog.Config{Memory: storage == "memory", AckWait: ackWait, DuplicateWindow: dupWindow,
			MaxEventsPerMessage: perMessage},
		MaxInflightEvents: maxInflight,
		AllowEgress:       egress, Logger: log, TracerProvider: tp, Propagator: tp.Propagator,
		Capture: capture.Config{AnonymizeIPs: anonymizeIPs},
	})
	if err != nil {
		return err
	}
	gs := rpcserver.New(rpcserver.Options{
		Logger: log, TracerProvider: tp, Propagator: tp.Propagator, Creds: creds,
		Policy: &auth.Policy{Services: dataplane.Roles()},
	})
	node.Register(gs)
	nctx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- node.Run(nctx, shutdownGrace) }()
	go func() {
		select {
		case <-node.Ready():
			gs.SetServing(true)
		case <-ctx.Done():
		}
	}()
	log.Info("data plane starting", "node_id", nodeID, "grpc_addr", grpcAddr, "http_addr", httpAddr,
		"controlplane", cpAddr, "nats", natsURL, "allow_egress", allowEgress)
	err = serve(ctx, log, gs, grpcAddr, node.Handler(), httpAddr, metricsAddr, reg)
	stopNode()
	if nerr := <-nodeDone; err == nil {
		err = nerr
	}
	return err
}

func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range splitList(s) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// serve runs the gRPC server and the optional HTTP and metrics servers
// until ctx ends or one of them fails, then stops all of them.
func serve(ctx context.Context, log *slog.Logger, gs *rpcserver.Server, grpcAddr string, h http.Handler, httpAddr, metricsAddr string, reg *prometheus.Registry) error {
	errc := make(chan error, 3)
	n := 0
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return err
	}
	n++
	go func() { errc <- gs.Serve(gl) }()

	var servers []*http.Server
	start := func(addr string, h http.Handler) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		n++
		go func() {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
		return nil
	}
	var startErr error
	if h != nil {
		startErr = start(httpAddr, h)
	}
	if startErr == nil && metricsAddr != "" {
		startErr = start(metricsAddr, metricsHandler(reg))
	}

	var runErr error
	if startErr != nil {
		runErr = startErr
	} else {
		select {
		case <-ctx.Done():
		case runErr = <-errc:
			n--
		}
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	gs.Shutdown(sctx)
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			s.Close()
		}
	}
	for ; n > 0; n-- {
		<-errc
	}
	return runErr
}

// newRegistry returns a Prometheus registry with the Go and process
// collectors, for one process's /metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// watchReady keeps the health status in step with a readiness check.
func watchReady(ctx context.Context, gs *rpcserver.Server, ready func(context.Context) error, log *slog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	was := false
	for {
		err := ready(ctx)
		if now := err == nil; now != was {
			gs.SetServing(now)
			if !now {
				log.Warn("not ready", "err", err)
			}
			was = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func secretFromFileOrEnv(path, env, flagName string) (string, error) {
	if path != "" {
		return auth.ReadSecretFile(path)
	}
	if v := strings.TrimSpace(os.Getenv(env)); v != "" {
		return v, nil
	}
	return "", usageError{fmt.Sprintf("%s or %s is required", flagName, env)}
}

// loadKeyring reads the secrets keys: the file (primary key first, older
// keys after it, for rotation), or the single key in HOGWIRE_SECRETS_KEY.
func loadKeyring(path string) (*secrets.Keyring, error) {
	var keys []string
	if path != "" {
		var err error
		if keys, err = secrets.ReadKeyFile(path); err != nil {
			return nil, err
		}
	} else if k := strings.TrimSpace(os.Getenv("HOGWIRE_SECRETS_KEY")); k != "" {
		keys = []string{k}
	} else {
		return nil, usageError{"--secrets-key-file or HOGWIRE_SECRETS_KEY is required (generate a key with: openssl rand -base64 32)"}
	}
	kr, err := secrets.ParseKeyring(keys[0], keys[1:]...)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return kr, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func shutdownMetrics(stop func(context.Context) error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		log.Warn("flushing metrics", "err", err)
	}
}

func shutdownTracing(tp *tracing.Provider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("flushing traces", "err", err)
	}
}
