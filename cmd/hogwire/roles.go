package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/geoip"
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
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/credentials"

	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/bytesize"
	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/console"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/dataplane"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/etcdconn"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/gctune"
	"github.com/hogwire/hogwire/health"
	"github.com/hogwire/hogwire/invocations"
	"github.com/hogwire/hogwire/natsconn"
	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/rpcserver"
	"github.com/hogwire/hogwire/secrets"
	"github.com/hogwire/hogwire/templates"
	"github.com/hogwire/hogwire/tracing"
)

// shutdownGrace bounds a graceful stop after SIGINT/SIGTERM.
const shutdownGrace = 10 * time.Second

type logFlags struct{ level, format string }

func (l *logFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usagef("--log-level: %v", err)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usagef("--log-format: %q is not text or json", l.format)
}

type tlsFlags struct{ cert, key, clientCA string }

func (t *tlsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert-file", "", "serve gRPC over TLS with this certificate (PEM)")
	fs.StringVar(&t.key, "tls-key-file", "", "private key of --tls-cert-file (PEM)")
	fs.StringVar(&t.clientCA, "tls-client-ca-file", "", "require client certificates signed by this CA (PEM)")
}

// creds returns nil (plaintext) when no certificate is configured.
func (t *tlsFlags) creds() (credentials.TransportCredentials, error) {
	if t.cert == "" && t.key == "" {
		if t.clientCA != "" {
			return nil, usagef("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.clientCA != "" {
		pool, err := readCertPool(t.clientCA, "--tls-client-ca-file")
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(cfg), nil
}

// readCertPool reads a PEM file of CA certificates.
func readCertPool(path, flag string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate in %s", flag, path)
	}
	return pool, nil
}

// registerHealthFlags adds the health manager's flags, the same for
// `hogwire dev` and `hogwire controlplane`.
func registerHealthFlags(fs *pflag.FlagSet, hc *controlplane.HealthConfig) {
	fs.BoolVar(&hc.Off, "health-off", false, "never quarantine destinations")
	fs.Float64Var(&hc.BucketSize, "health-bucket", 10000, "health token bucket size per destination")
	fs.Float64Var(&hc.RefillPerSecond, "health-refill", 10, "health tokens refilled per second")
	fs.Float64Var(&hc.ErrorCost, "health-error-cost", 100, "tokens an error (thrown, 5xx after retries, timeout) costs")
	fs.DurationVar(&hc.SlowThreshold, "health-slow", 5*time.Second, "invocations at least this slow cost tokens by duration")
	fs.DurationVar(&hc.CPUAllowance, "health-cpu-allowance", 100*time.Millisecond, "VM time per invocation that costs no tokens")
	fs.Float64Var(&hc.CPUCost, "health-cpu-cost", 500, "tokens each second of VM time beyond the allowance costs")
	fs.DurationVar(&hc.QuarantineFor, "health-quarantine", 10*time.Minute, "how long a quarantine lasts")
	fs.IntVar(&hc.MaxQuarantines, "health-max-quarantines", 3, "quarantines within --health-window that disable a destination indefinitely")
	fs.DurationVar(&hc.QuarantineWindow, "health-window", 24*time.Hour, "window for --health-max-quarantines")
}

// roleCommand is dev, controlplane or dataplane: every flag may also be
// set as HOGWIRE_<FLAG>.
func (a *app) roleCommand(use, short, long string, run func(ctx context.Context) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Long: long, Args: noArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd.Flags(), a.getenv, nil) },
		RunE:    func(cmd *cobra.Command, _ []string) error { return run(cmd.Context()) }}
}

func (a *app) devCommand() *cobra.Command {
	var cfg devstack.Config
	var lf logFlags
	var metricsAddr string
	cmd := a.roleCommand("dev", "Run everything in one process on embedded etcd and NATS",
		"Runs the control plane, a data-plane node, etcd and NATS in one process, keeping data in --data-dir.\n"+
			"It prints the admin token (also in <data-dir>/admin.token, where the other commands find it).\n"+
			"Destinations may reach loopback addresses. Every flag may also be set as HOGWIRE_<FLAG>.",
		func(ctx context.Context) error { return a.runDev(ctx, cfg, lf, metricsAddr) })
	fs := cmd.Flags()
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "directory for etcd and NATS data, tokens and keys")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", defaultServer, "gRPC API and ingest address")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "PostHog-compatible HTTP capture address; also serves the web console at /console/")
	fs.StringVar(&metricsAddr, "metrics-addr", "", metricsAddrUsage)
	registerHealthFlags(fs, &cfg.Health)
	cfg.Capture.RegisterFlags(fs)
	fs.Var((*bytesize.Int64)(&cfg.HogMemory), "hog-memory", hogMemoryUsage)
	fs.IntVar(&cfg.HogSlots, "hog-slots", 0, hogSlotsUsage)
	fs.BoolVar(&cfg.Persons, "persons", true, personsUsage)
	fs.StringVar(&cfg.SourceURL, "source-url", "", sourceURLUsage)
	fs.StringVar(&cfg.GeoIPDB, "geoip-db", "", geoipUsage)
	lf.register(fs)
	return cmd
}

const (
	personsUsage = "keep person profiles from events' $set, $set_once, $unset, $identify and aliases, and give destinations the stored person " +
		"(--persons=false: person is made from each event alone)"
	sourceURLUsage = "base `URL` of the links in Hog globals: person.url is <URL>/projects/<project>/person/<distinct_id> (empty: no links)"
	geoipUsage     = "MaxMind-format city or country database (`path` to an .mmdb: GeoLite2-City, DB-IP City Lite…) that transformations' geoipLookup() reads (empty: the country database built in; none: geoipLookup() returns null)"
)

func (a *app) runDev(ctx context.Context, cfg devstack.Config, lf logFlags, metricsAddr string) error {
	log, err := lf.logger(a.stderr)
	if err != nil {
		return err
	}
	gctune.Apply(log)
	tp, err := tracing.FromEnv(ctx, a.getenv, "hogwire")
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)
	pm, err := a.startMetrics(ctx, "hogwire")
	if err != nil {
		return err
	}
	defer pm.shutdown(log)
	cfg.Logger, cfg.Tracing, cfg.Meters = log, tp, pm.Meters
	var ml net.Listener
	if metricsAddr != "" {
		// Listen before starting, so a taken port fails fast.
		if ml, err = net.Listen("tcp", metricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		defer ml.Close()
	}

	st, err := devstack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if ml != nil {
		ms := &http.Server{Handler: opsHandler(pm.gatherer(), st.Health), ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(ml)
		defer ms.Close()
	}
	fmt.Fprintf(a.stdout, `hogwire dev is running (data in %s)
  gRPC API and ingest:  %s
  HTTP capture API:     http://%s  (point PostHog SDKs here)
  web console:          http://%s/console/  (sign in with the admin token)
  admin token:          %s  (also in %s)
  embedded etcd:        %s
  embedded NATS:        %s
The other commands (e.g. 'hogwire projects list') find this server and its token by default.
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

type controlPlaneFlags struct {
	lf                                   logFlags
	tf                                   tlsFlags
	etcd                                 etcdconn.Config
	nats                                 natsconn.Config
	grpcAddr, httpAddr, prefix           string
	adminTokenFile, nodeTokenFile        string
	secretsKey, metricsAddr, allowEgress string
	health                               controlplane.HealthConfig
	telemetryMaxAge                      time.Duration
	invocationMaxAge                     time.Duration
	logsPerDestination                   int64
}

func (a *app) controlPlaneCommand() *cobra.Command {
	var f controlPlaneFlags
	cmd := a.roleCommand("controlplane", "Run a control-plane replica against external etcd and NATS",
		"Runs one control-plane replica: the admin API, the configuration and telemetry streams of the nodes,\n"+
			"and, on the elected leader, the health manager. Every flag may also be set as HOGWIRE_<FLAG>.",
		func(ctx context.Context) error { return a.runControlPlane(ctx, &f) })
	fs := cmd.Flags()
	fs.StringVar(&f.grpcAddr, "grpc-addr", ":7070", "gRPC API address")
	fs.StringVar(&f.httpAddr, "http-addr", ":7080", "web console address, at /console/, and GET /livez and /readyz (off when empty)")
	f.etcd.RegisterFlags(fs, "http://127.0.0.1:2379")
	fs.StringVar(&f.prefix, "etcd-prefix", "/hogwire/", "prefix of every etcd key")
	f.nats.RegisterFlags(fs, "nats://127.0.0.1:4222")
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the admin token (or set HOGWIRE_ADMIN_TOKEN)")
	fs.StringVar(&f.nodeTokenFile, "node-token-file", "", "file holding the node token (or set HOGWIRE_NODE_TOKEN)")
	fs.StringVar(&f.secretsKey, "secrets-key-file", "", "file of base64 AES-256 keys for secret inputs, newest first (or set HOGWIRE_SECRETS_KEY to one key)")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", metricsAddrUsage)
	fs.StringVar(&f.allowEgress, "allow-egress", "", "comma-separated CIDRs that a destination test with real fetch may reach although private or loopback")
	fs.DurationVar(&f.telemetryMaxAge, "telemetry-retention", 7*24*time.Hour, "keep destination metrics and logs this long")
	fs.Int64Var(&f.logsPerDestination, "logs-per-destination", 10000, "keep at most this many log entries per destination")
	fs.DurationVar(&f.invocationMaxAge, "invocation-retention", invocations.DefaultMaxAge, "keep the record of every invocation, and the events they ran on, this long")
	registerHealthFlags(fs, &f.health)
	f.lf.register(fs)
	f.tf.register(fs)
	return cmd
}

func (a *app) runControlPlane(ctx context.Context, f *controlPlaneFlags) error {
	log, err := f.lf.logger(a.stderr)
	if err != nil {
		return err
	}
	egress, err := parseCIDRs(f.allowEgress)
	if err != nil {
		return usagef("--allow-egress: %v", err)
	}
	adminToken, err := a.secretFromFileOrEnv(f.adminTokenFile, "HOGWIRE_ADMIN_TOKEN", "--admin-token-file")
	if err != nil {
		return err
	}
	nodeToken, err := a.secretFromFileOrEnv(f.nodeTokenFile, "HOGWIRE_NODE_TOKEN", "--node-token-file")
	if err != nil {
		return err
	}
	keyring, err := a.loadKeyring(f.secretsKey)
	if err != nil {
		return err
	}
	creds, err := f.tf.creds()
	if err != nil {
		return err
	}
	tp, err := tracing.FromEnv(ctx, a.getenv, "hogwire-controlplane")
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)

	catalog, err := templates.Load()
	if err != nil {
		return err
	}
	etcd, nc, err := a.connectStores(ctx, log, &f.etcd, &f.nats, "hogwire-controlplane")
	if err != nil {
		return err
	}
	defer etcd.Close()
	defer nc.Close()
	hcfg := f.health
	hcfg.TracerProvider = tp
	cp, err := controlplane.Start(ctx, controlplane.Config{
		Etcd: etcd, Prefix: f.prefix, Logger: log, Sealer: keyring, CompileFilters: filters.Compile, Templates: catalog,
		Telemetry: controlplane.TelemetryConfig{Conn: nc, MaxAge: f.telemetryMaxAge, MaxLogsPerDestination: f.logsPerDestination,
			Replicas: f.nats.Replicas, InvocationMaxAge: f.invocationMaxAge},
		Test:   controlplane.TestConfig{FetchClient: fetch.New(fetch.Options{AllowCIDRs: egress})},
		Health: hcfg,
	})
	if err != nil {
		return err
	}
	defer cp.Stop()
	gs := rpcserver.New(rpcserver.Options{
		Logger: log, TracerProvider: tp, Propagator: tp.Propagator, Creds: creds,
		Policy: &auth.Policy{Services: controlplane.Roles(), AdminToken: adminToken, NodeToken: nodeToken},
	})
	cp.Register(gs)
	hc := health.New(log.With("component", "health"), 0)
	hc.Add("etcd", cp.Ready)
	hc.Add("nats", natsconn.Check(nc))
	hc.OnChange(gs.SetServing)
	go hc.Run(ctx, healthInterval)
	log.Info("control plane starting", "grpc_addr", f.grpcAddr, "console_addr", f.httpAddr,
		"etcd", strings.Join(etcd.Endpoints(), ","), "nats", nc.ConnectedUrlRedacted(), "tls", creds != nil)
	pm, err := a.startMetrics(ctx, "hogwire-controlplane")
	if err != nil {
		return err
	}
	defer pm.shutdown(log)
	var hs *http.Server
	if f.httpAddr != "" {
		ui, err := console.New(console.Options{GRPC: gs.Server, Roles: controlplane.Roles(), AdminToken: adminToken, Logger: log.With("component", "console")})
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle(console.Prefix, ui)
		mux.Handle("/", hc.Handler())
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	return serve(ctx, log, gs, f.grpcAddr, hs, f.httpAddr, f.metricsAddr, opsHandler(pm.gatherer(), hc))
}

type dataPlaneFlags struct {
	lf                                      logFlags
	tf                                      tlsFlags
	nats                                    natsconn.Config
	grpcAddr, httpAddr, cpAddr, nodeID      string
	nodeTokenFile, metricsAddr, allowEgress string
	storage, cpCA, sourceURL, geoipDB       string
	cpTLS, anonymizeIPs, persons            bool
	noRecords                               bool
	ackWait, dupWindow                      time.Duration
	retry                                   dataplane.RetrySchedule
	backlog                                 dataplane.BacklogLimits
	breakerFailures                         int
	maxInflight, perMessage, hogSlots       int
	hogMemory                               int64
	capture                                 capture.Config
}

func (a *app) dataPlaneCommand() *cobra.Command {
	var f dataPlaneFlags
	cmd := a.roleCommand("dataplane", "Run a data-plane node",
		"Runs one data-plane node: capture (HTTP and gRPC ingest) into the durable event log on NATS, and the\n"+
			"destinations' Hog code on every event, with the configuration it follows from the control plane.\n"+
			"Every flag may also be set as HOGWIRE_<FLAG>.",
		func(ctx context.Context) error { return a.runDataPlane(ctx, &f) })
	fs := cmd.Flags()
	fs.StringVar(&f.grpcAddr, "grpc-addr", ":7071", "gRPC ingest address")
	fs.StringVar(&f.httpAddr, "http-addr", ":8080", "PostHog-compatible HTTP capture address")
	fs.StringVar(&f.cpAddr, "controlplane-addr", defaultServer, "control plane gRPC addresses: host:port, a comma-separated list of them, or a dns:///host:port target whose every address is used (load-balanced, with failover)")
	fs.BoolVar(&f.cpTLS, "controlplane-tls", false, "connect to the control plane over TLS")
	fs.StringVar(&f.cpCA, "controlplane-ca-file", "", "CA certificate (PEM) to verify the control plane with (default: system roots)")
	fs.StringVar(&f.nodeTokenFile, "node-token-file", "", "file holding the node token (or set HOGWIRE_NODE_TOKEN)")
	f.nats.RegisterFlags(fs, "nats://127.0.0.1:4222")
	fs.StringVar(&f.storage, "event-storage", "file", "JetStream storage of the event log: file or memory")
	fs.DurationVar(&f.ackWait, "ack-wait", time.Minute, "redeliver an event held this long by a node that stopped answering")
	fs.BoolVar(&f.anonymizeIPs, "anonymize-ips", false, "do not record the sender's address as $ip on captured events")
	fs.DurationVar(&f.retry.Base, "retry-base", dataplane.DefaultRetryBase, "first wait before retrying a parked invocation (a fetch still failing with a 5xx, 408, 429, timeout or connection error after its own retries); doubles per retry, with full jitter")
	fs.DurationVar(&f.retry.Max, "retry-max", dataplane.DefaultRetryMax, "longest wait between retries of a parked invocation")
	fs.DurationVar(&f.retry.GiveUp, "retry-give-up", dataplane.DefaultRetryGiveUp, "fail a parked invocation still failing this long after it was first parked")
	fs.DurationVar(&f.retry.MaxRetryAfter, "max-retry-after", dataplane.DefaultRetryMaxRetryAfter, "clamp a destination's Retry-After (the pause of the whole destination it causes) to this")
	fs.BoolVar(&f.retry.Off, "no-durable-retries", false, "fail invocations after fetch's own retries instead of parking them for later")
	fs.Int64Var(&f.backlog.MaxEvents, "max-backlog", dataplane.DefaultMaxBacklog, "a destination's parked invocations at most (its limits.max_backlog overrides); past it, its further events are dropped, counted and logged")
	f.backlog.MaxBytes = dataplane.DefaultMaxBacklogBytes
	fs.Var((*bytesize.Int64)(&f.backlog.MaxBytes), "max-backlog-bytes", "about how many bytes a destination's parked invocations hold at most (its limits.max_backlog_bytes overrides)")
	fs.DurationVar(&f.backlog.MaxAge, "max-backlog-age", dataplane.DefaultMaxBacklogAge, "drop a parked invocation waiting this long since it was first parked (its limits.max_backlog_age overrides)")
	fs.IntVar(&f.breakerFailures, "breaker-failures", dataplane.DefaultBreakerFailures, "failed requests in a row that open a destination's circuit breaker (a pause of it on every node; -1: never)")
	fs.DurationVar(&f.dupWindow, "duplicate-window", 2*time.Minute, "store nothing for a re-sent request (same events, same uuids) stored this recently (costs NATS memory per request in the window)")
	fs.IntVar(&f.maxInflight, "max-inflight-events", 20000, "events this node holds at once; past it, events wait in the log")
	fs.IntVar(&f.perMessage, "events-per-message", 100, "events of one capture batch stored per JetStream message (1: each alone)")
	fs.StringVar(&f.nodeID, "node-id", "", "unique id of this node (default: the host name)")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", metricsAddrUsage)
	fs.StringVar(&f.allowEgress, "allow-egress", "", "comma-separated CIDRs that fetch may reach although private or loopback")
	f.capture.RegisterFlags(fs)
	fs.Var((*bytesize.Int64)(&f.hogMemory), "hog-memory", hogMemoryUsage)
	fs.IntVar(&f.hogSlots, "hog-slots", 0, hogSlotsUsage)
	fs.BoolVar(&f.persons, "persons", true, personsUsage)
	fs.BoolVar(&f.noRecords, "no-invocation-records", false, "keep no record of invocations and their events (InvocationService then finds none from this node)")
	fs.StringVar(&f.sourceURL, "source-url", "", sourceURLUsage)
	fs.StringVar(&f.geoipDB, "geoip-db", "", geoipUsage)
	f.lf.register(fs)
	f.tf.register(fs)
	return cmd
}

func (a *app) runDataPlane(ctx context.Context, f *dataPlaneFlags) error {
	log, err := f.lf.logger(a.stderr)
	if err != nil {
		return err
	}
	gctune.Apply(log)
	nodeToken, err := a.secretFromFileOrEnv(f.nodeTokenFile, "HOGWIRE_NODE_TOKEN", "--node-token-file")
	if err != nil {
		return err
	}
	nodeID := f.nodeID
	if nodeID == "" {
		if nodeID, err = os.Hostname(); err != nil {
			return fmt.Errorf("--node-id: %w", err)
		}
	}
	egress, err := parseCIDRs(f.allowEgress)
	if err != nil {
		return usagef("--allow-egress: %v", err)
	}
	if f.storage != "file" && f.storage != "memory" {
		return usagef("--event-storage: %q is not file or memory", f.storage)
	}
	creds, err := f.tf.creds()
	if err != nil {
		return err
	}
	tp, err := tracing.FromEnv(ctx, a.getenv, "hogwire-dataplane")
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)

	copts := rpcclient.Options{Token: nodeToken, TracerProvider: tp, Propagator: tp.Propagator}
	if f.cpTLS || f.cpCA != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if f.cpCA != "" {
			if tc.RootCAs, err = readCertPool(f.cpCA, "--controlplane-ca-file"); err != nil {
				return err
			}
		}
		copts.Creds = credentials.NewTLS(tc)
	}
	cpConn, err := rpcclient.Dial(f.cpAddr, copts)
	if err != nil {
		return err
	}
	defer cpConn.Close()
	_, nc, err := a.connectStores(ctx, log, nil, &f.nats, "hogwire-dataplane-"+nodeID)
	if err != nil {
		return err
	}
	defer nc.Close()

	pm, err := a.startMetrics(ctx, "hogwire-dataplane")
	if err != nil {
		return err
	}
	defer pm.shutdown(log)
	f.capture.AnonymizeIPs = f.anonymizeIPs
	geo, err := geoip.Load(f.geoipDB, log)
	if err != nil {
		return err
	}
	if geo != nil {
		defer geo.Close()
	}
	node, err := dataplane.Start(ctx, dataplane.Config{
		GeoIP:  geoIP(geo),
		Meters: pm.Meters,
		NodeID: nodeID, Address: f.grpcAddr, ControlPlane: cpConn, NATS: nc,
		EventLog: eventlog.Config{Memory: f.storage == "memory", AckWait: f.ackWait, DuplicateWindow: f.dupWindow,
			MaxEventsPerMessage: f.perMessage, Replicas: f.nats.Replicas},
		MaxInflightEvents: f.maxInflight, HogMemory: f.hogMemory, HogSlots: f.hogSlots, Retry: f.retry,
		Backlog: f.backlog, BreakerFailures: f.breakerFailures,
		AllowEgress: egress, Logger: log, TracerProvider: tp, Propagator: tp.Propagator,
		Capture: f.capture, Persons: f.persons, SourceURL: f.sourceURL, NoRecords: f.noRecords,
	}, shutdownGrace)
	if err != nil {
		return err
	}
	gs := rpcserver.New(rpcserver.Options{
		Logger: log, TracerProvider: tp, Propagator: tp.Propagator, Creds: creds,
		Policy: &auth.Policy{Services: dataplane.Roles()},
	})
	node.Register(gs)
	hc := health.New(log.With("component", "health"), 0)
	hc.Add("nats", natsconn.Check(nc))
	hc.Add("config", nodeCheck(node))
	hc.OnChange(gs.SetServing)
	sctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	go hc.Run(sctx, healthInterval)
	go func() {
		select {
		case <-node.Ready():
			hc.CheckNow(sctx) // ready now, not at the next tick
		case <-node.Exited():
			stopServing() // the node failed: stop serving, and say why below
		case <-sctx.Done():
		}
	}()
	log.Info("data plane starting", "node_id", nodeID, "grpc_addr", f.grpcAddr, "http_addr", f.httpAddr,
		"controlplane", f.cpAddr, "nats", nc.ConnectedUrlRedacted(), "allow_egress", f.allowEgress)
	err = serve(sctx, log, gs, f.grpcAddr, capture.NewServer(node.Handler(), f.capture.Server), f.httpAddr, f.metricsAddr, opsHandler(pm.gatherer(), hc))
	if nerr := node.Stop(); err == nil {
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
func serve(ctx context.Context, log *slog.Logger, gs *rpcserver.Server, grpcAddr string, hs *http.Server, httpAddr, metricsAddr string, ops http.Handler) error {
	errc := make(chan error, 3)
	n := 0
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return err
	}
	n++
	go func() { errc <- gs.Serve(gl) }()

	var servers []*http.Server
	start := func(addr string, srv *http.Server) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
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
	if hs != nil {
		startErr = start(httpAddr, hs)
	}
	if startErr == nil && metricsAddr != "" {
		startErr = start(metricsAddr, &http.Server{Handler: ops, ReadHeaderTimeout: 10 * time.Second})
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

// processMetrics are a process's metrics: hogwire's, OpenTelemetry
// instruments served on /metrics and pushed over OTLP when the OTEL_*
// variables ask for it; and the Go runtime's and process's, Prometheus
// collectors pushed through the Prometheus bridge. Each series goes out
// once each way.
type processMetrics struct {
	*tracing.Meters
	legacy, native *prometheus.Registry
	stopBridge     func(context.Context) error
}

func (a *app) startMetrics(ctx context.Context, service string) (*processMetrics, error) {
	pm := &processMetrics{legacy: prometheus.NewRegistry(), native: prometheus.NewRegistry()}
	pm.legacy.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var err error
	if pm.Meters, err = tracing.NewMeters(ctx, a.getenv, service, pm.native); err != nil {
		return nil, err
	}
	if pm.stopBridge, err = tracing.Metrics(ctx, a.getenv, service, pm.legacy); err != nil {
		pm.Meters.Shutdown(ctx)
		return nil, err
	}
	return pm, nil
}

// gatherer is what /metrics serves: both kinds.
func (pm *processMetrics) gatherer() prometheus.Gatherer {
	return prometheus.Gatherers{pm.legacy, pm.native}
}

// shutdown pushes the last collection and stops the exporters.
func (pm *processMetrics) shutdown(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := errors.Join(pm.stopBridge(ctx), pm.Meters.Shutdown(ctx)); err != nil {
		log.Warn("flushing metrics", "err", err)
	}
}

// opsHandler serves what operators and orchestrators poll on the metrics
// port: GET /metrics for scrapes, GET /livez and /readyz for probes (hc
// nil: /metrics alone).
func opsHandler(reg prometheus.Gatherer, hc *health.Checker) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if hc != nil {
		h := hc.Handler()
		mux.Handle("GET /livez", h)
		mux.Handle("GET /readyz", h)
	}
	return mux
}

// healthInterval is how often a role checks what it depends on; a probe
// sees the last result, so it never waits on a store that hangs.
const healthInterval = 5 * time.Second

// nodeCheck makes a data-plane node ready once it has its configuration
// and the event log is open, and unready for good if it stops.
func nodeCheck(node *dataplane.Running) health.Check {
	return func(context.Context) error {
		select {
		case <-node.Exited():
			return fmt.Errorf("data plane stopped: %w", node.Err())
		default:
		}
		select {
		case <-node.Ready():
			return nil
		default:
			return errors.New("waiting for the configuration from the control plane")
		}
	}
}

// connectStores connects to etcd (when ec is not nil) and NATS with the
// operator's TLS and authentication settings; passwords not given in a file
// come from HOGWIRE_ETCD_PASSWORD and HOGWIRE_NATS_PASSWORD.
func (a *app) connectStores(ctx context.Context, log *slog.Logger, ec *etcdconn.Config, nc *natsconn.Config, name string) (*clientv3.Client, *nats.Conn, error) {
	var etcd *clientv3.Client
	if ec != nil {
		if ec.Password == "" {
			ec.Password = a.getenv(etcdconn.PasswordEnv)
		}
		cctx, cancel := context.WithTimeout(ctx, max(ec.DialTimeout, 5*time.Second))
		var err error
		etcd, err = etcdconn.Client(cctx, *ec, log)
		cancel()
		if err != nil {
			return nil, nil, err
		}
	}
	if nc.Password == "" {
		nc.Password = a.getenv(natsconn.PasswordEnv)
	}
	nc.Name = name
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := natsconn.Connect(cctx, *nc, log)
	if err != nil {
		if etcd != nil {
			etcd.Close()
		}
		return nil, nil, err
	}
	return etcd, conn, nil
}

func (a *app) secretFromFileOrEnv(path, env, flagName string) (string, error) {
	if path != "" {
		return auth.ReadSecretFile(path)
	}
	if v := strings.TrimSpace(a.getenv(env)); v != "" {
		return v, nil
	}
	return "", usagef("%s or %s is required", flagName, env)
}

// loadKeyring reads the secrets keys: the file (primary key first, older
// keys after it, for rotation), or the single key in HOGWIRE_SECRETS_KEY.
func (a *app) loadKeyring(path string) (*secrets.Keyring, error) {
	var keys []string
	if path != "" {
		var err error
		if keys, err = secrets.ReadKeyFile(path); err != nil {
			return nil, err
		}
	} else if k := strings.TrimSpace(a.getenv("HOGWIRE_SECRETS_KEY")); k != "" {
		keys = []string{k}
	} else {
		return nil, usagef("--secrets-key-file or HOGWIRE_SECRETS_KEY is required (generate a key with: openssl rand -base64 32)")
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

func shutdownTracing(tp *tracing.Provider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("flushing traces", "err", err)
	}
}

const (
	metricsAddrUsage = "serve GET /metrics (Prometheus), /livez (the process runs) and /readyz (it can serve: stores reachable, configuration loaded) here (off when empty)"
	hogMemoryUsage   = "Hog memory budget of this node: what all running destinations may allocate together, e.g. 512MiB (default: a quarter of the container's memory limit, or 256MiB)"
	hogSlotsUsage    = "invocations running Hog past their first check-in at once, shared fairly (default: the number of CPUs)"
)

// geoIP is db as the data plane takes it: a nil interface without one.
func geoIP(db *geoip.DB) executor.GeoIP {
	if db == nil {
		return nil
	}
	return db
}
