// Package dataplane is a stateless node that ingests events, runs the
// matching destinations' Hog code and delivers what it fetches.
//
// The flow of one event: the capture API or EventService stores it in the
// durable event log (package eventlog), together with the other events of
// its request, and only then answers the sender; a node pulls the stored
// message from the log (all nodes share one work queue), reads each
// event's name, selects the project's destinations by that name, builds
// the Hog globals once, and runs the selected destinations' filters right
// there. Only the destinations whose filters match are queued, each in its
// own lane — a concurrency-limited queue per destination, so a slow or
// dead destination delays only its own work. Hog runs in turns shared
// fairly between destinations (see cpu) and under a node-wide memory
// budget (see memory); before and while it runs, an invocation obeys its
// destination's current state. When every destination is done with every
// event of the message (delivered, parked to be retried later — see
// RetrySchedule — failed for good, filtered out, or skipped as disabled)
// the node acknowledges it and it leaves the log.
package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/dataplane/configsync"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/dataplane/telemetry"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/invocations"
	"github.com/hogwire/hogwire/metrics"
)

// Config configures a node.
type Config struct {
	// NodeID names the node to the control plane; unique per process.
	NodeID string
	// Address is where the node serves ingest, shown by ListNodes.
	Address string
	// ControlPlane is a connection to the control plane with the node token.
	ControlPlane grpc.ClientConnInterface
	// NATS is the connection to the event log's NATS server.
	NATS *nats.Conn
	// EventLog configures the stream and consumer (Conn is filled in).
	EventLog eventlog.Config
	// AllowEgress lists address ranges fetch may reach although they are
	// private, loopback or link-local.
	AllowEgress []netip.Prefix
	// SourceURL is the base address links in the Hog globals point at.
	SourceURL string
	// DefaultConcurrency caps a destination's invocations in flight on this
	// node when its limits do not say (default 32).
	DefaultConcurrency int
	// HogMemory is the node's Hog memory budget in bytes: what all
	// invocations running at once may allocate together. Zero derives it
	// from the memory limit of the process's cgroup (a quarter of it), or
	// 256 MiB without one.
	HogMemory int64
	// HogSlots is how many invocations run Hog past their first
	// checkpoint at once (default GOMAXPROCS); destinations share these
	// turns fairly (see cpu).
	HogSlots int
	// HogQuantum is how long a turn lasts at most while other
	// destinations wait for one (default 250µs).
	HogQuantum time.Duration
	// FetchPolicy is the retry policy of fetch (zero: the fetch defaults).
	FetchPolicy fetch.Policy
	// Retry is the durable retry schedule of invocations whose fetch
	// still fails after fetch's own retries (zero: the defaults).
	Retry RetrySchedule
	// ConsumeBatch is how many messages are pulled from the log at once.
	ConsumeBatch int
	// MaxInflightEvents bounds the events this node holds at once (default
	// 20000); past it, messages go back to the log for BusyRetry (default
	// 1s), so a destination that stops answering cannot make the node
	// queue events without bound.
	MaxInflightEvents int
	BusyRetry         time.Duration
	// MaxQueuedPerDestination bounds the events one destination holds on
	// this node (default half of MaxInflightEvents). Past it, its further
	// events are stored in the event log again, for it alone, and come
	// back when it has caught up: a destination that cannot keep up (an
	// infinite loop, a dead endpoint) holds at most this much of the node,
	// and the others keep flowing.
	MaxQueuedPerDestination int
	// ShipDebugLogs also ships debug-level log entries (such as PostHog's
	// per-invocation "Function completed in …" line) to the control plane.
	// Backlog bounds each destination's parked invocations (zero: the
	// defaults); a destination's limits override it.
	Backlog BacklogLimits
	// BreakerFailures is how many failed requests in a row to a
	// destination open its circuit breaker (default
	// DefaultBreakerFailures; negative: never).
	BreakerFailures int
	// Off by default: at high rates they would cost a stored entry per
	// invocation.
	ShipDebugLogs bool
	// Persons keeps person and group profiles (package persons) in
	// JetStream and gives destinations the stored person; off, the person
	// is made from each event alone.
	Persons bool
	// PersonsNATS is the connection of the person store (default NATS).
	PersonsNATS *nats.Conn
	// Records configures the record kept of every invocation, and of the
	// events they ran on, in the event log's NATS (package invocations);
	// NoRecords keeps none. The control plane sets their retention.
	Records   invocations.WriterConfig
	NoRecords bool
	// Capture configures ingest limits (Tokens and Publisher are filled in).
	Capture capture.Config
	// GeoIP answers transformations' geoipLookup() (nil: it returns null).
	GeoIP executor.GeoIP
	// Meters makes the node's OpenTelemetry instruments: ingest, in-flight
	// invocations, outcomes apart from delivery attempts, the event log's
	// lag (package metrics), and the per-destination counts (package
	// telemetry). Nil: none (Node.Stat still counts).
	Meters         metric.MeterProvider
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// Node is one data-plane process.
type Node struct {
	cfg    Config
	log    *slog.Logger
	tracer trace.Tracer
	prop   propagation.TextMapPropagator

	sync   *configsync.Syncer
	routes atomic.Pointer[routing]
	rt     registry
	cpu    *cpu
	memory *memory
	events *eventlog.Log
	// records is nil when Config.NoRecords is set.
	records *invocations.Writer
	masks   *masker
	pauses  *pauses
	rates   *rates
	persons personStore
	gauges  *backlogGauges
	// backlogKV is where the backlogs are published; backlogs holds what
	// the node knows of each destination's (name to *backlog).
	backlogKV jetstream.KeyValue
	backlogs  sync.Map
	// chores are background work Run waits for before it returns: backlogs
	// being dropped, backlog messages being put in order.
	chores  sync.WaitGroup
	tel     *telemetry.Recorder
	im      *metrics.Invocations
	fetcher *fetch.Client
	capture capture.Config
	mux     *http.ServeMux

	inflightMu     sync.Mutex
	inflight       map[*pending]struct{}
	inflightEvents int64
	work           sync.WaitGroup
	// handleMu and stopped keep handle from adding work once Run waits
	// for the work in flight.
	handleMu sync.RWMutex
	stopped  bool
	workers  *workers
	// runCtx ends invocations when the node stops for good; detached is
	// it without its cancellation, made once rather than per invocation
	// (see invocation.invoke).
	runCtx, detached context.Context
	// consumeCtx ends when the node stops pulling events (see
	// waitForRoom); roomless is set while no destination has had room
	// since a wait for it ran out.
	consumeCtx context.Context
	roomless   atomic.Bool
	// runInv is n.run as a func value, made once: a method value passed
	// on escapes, and queue would allocate one per event.
	runInv func(*invocation)
	ready  atomic.Bool
	// pins are the kept revisions reruns ran lately (see pinnedRoute).
	pinsMu sync.Mutex
	pins   map[pinKey]*route
}

// New returns a node for cfg; call Run to start it.
func New(cfg Config) (*Node, error) {
	if cfg.ControlPlane == nil || cfg.NATS == nil {
		return nil, errors.New("dataplane: a control-plane connection and a NATS connection are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = noop.NewTracerProvider()
	}
	if cfg.Propagator == nil {
		cfg.Propagator = propagation.TraceContext{}
	}
	if cfg.DefaultConcurrency <= 0 {
		cfg.DefaultConcurrency = 32
	}
	if cfg.MaxInflightEvents <= 0 {
		cfg.MaxInflightEvents = 20000
	}
	if cfg.BusyRetry <= 0 {
		cfg.BusyRetry = time.Second
	}
	if cfg.MaxQueuedPerDestination <= 0 {
		cfg.MaxQueuedPerDestination = max(cfg.MaxInflightEvents/2, 1)
	}
	if cfg.HogMemory <= 0 {
		cfg.HogMemory = defaultHogMemory()
	}
	if cfg.HogSlots <= 0 {
		cfg.HogSlots = goruntime.GOMAXPROCS(0)
	}
	if cfg.HogQuantum <= 0 {
		cfg.HogQuantum = 250 * time.Microsecond
	}
	cfg.Retry = cfg.Retry.withDefaults()
	cfg.Backlog = cfg.Backlog.withDefaults()
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = DefaultBreakerFailures
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, tracer: cfg.TracerProvider.Tracer("github.com/hogwire/hogwire/dataplane"),
		prop: cfg.Propagator, inflight: map[*pending]struct{}{},
		rt:         newRegistry(),
		cpu:        newCPU(cfg.HogSlots, cfg.HogQuantum),
		memory:     newMemory(cfg.HogMemory),
		fetcher:    fetch.New(fetch.Options{AllowCIDRs: cfg.AllowEgress}),
		mux:        http.NewServeMux(),
		runCtx:     context.Background(),
		detached:   context.Background(),
		consumeCtx: context.Background(),
		workers:    newWorkers(time.Second),
	}
	n.runInv = n.run
	var err error
	if n.persons, err = openPersons(cfg); err != nil {
		return nil, err
	}
	n.routes.Store(&routing{projects: map[string]*projectRoutes{}, tokens: map[string]string{}, prepared: map[string]*route{}})
	n.sync = configsync.New(configsync.Config{
		Conn: cfg.ControlPlane, NodeID: cfg.NodeID, Address: cfg.Address, Logger: cfg.Logger.With("component", "configsync"),
		Check: func(d *hogwirev1.Destination) error { _, err := executor.Prepare(d); return err },
		OnChange: func(_, next *configsync.Snapshot) {
			prev := n.routes.Load()
			r, stops := n.rt.buildRouting(prev, next, executor.Source{URL: cfg.SourceURL}, cfg.DefaultConcurrency, n.log)
			n.routes.Store(r)
			n.flushEdited(prev, r)
			for _, s := range stops {
				if s.resumed {
					n.chores.Add(1)
					go func() { defer n.chores.Done(); n.pauses.clearBreaker(n.runCtx, s.dest.name) }()
					continue
				}
				n.stop(s.dest, s.reason)
				if s.byUser {
					n.chores.Add(1)
					go func() { defer n.chores.Done(); n.purgeBacklog(s.dest.name, s.reason, next.Revision) }()
				}
			}
		},
	})
	n.tel = telemetry.New(telemetry.Config{NodeID: cfg.NodeID, Conn: cfg.ControlPlane, Logger: cfg.Logger.With("component", "telemetry"),
		Meters: cfg.Meters})
	if n.gauges, err = newBacklogGauges(cfg.Meters); err != nil {
		return nil, fmt.Errorf("dataplane: metrics: %w", err)
	}

	n.capture = cfg.Capture
	if cfg.Meters != nil {
		if n.im, err = metrics.NewInvocations(cfg.Meters); err != nil {
			return nil, fmt.Errorf("dataplane: metrics: %w", err)
		}
		if n.capture.Metrics == nil {
			if n.capture.Metrics, err = metrics.NewIngest(cfg.Meters); err != nil {
				return nil, fmt.Errorf("dataplane: metrics: %w", err)
			}
		}
	}
	n.capture.Tokens = tokens{n}
	n.capture.Publisher = publisher{n}
	n.capture.Webhooks = webhooks{n}
	if n.capture.Logger == nil {
		n.capture.Logger = cfg.Logger.With("component", "capture")
	}
	if n.capture.TracerProvider == nil {
		n.capture.TracerProvider = cfg.TracerProvider
	}
	n.mux.HandleFunc("GET /_health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !n.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"status":"starting"}`)
			return
		}
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	n.mux.Handle("/", capture.NewHandler(n.capture))
	return n, nil
}

// Handler serves the PostHog-compatible HTTP capture API and GET /_health.
func (n *Node) Handler() http.Handler { return n.mux }

// Register adds the node's gRPC ingest service to gs.
func (n *Node) Register(gs grpc.ServiceRegistrar) {
	hogwirev1.RegisterEventServiceServer(gs, capture.NewService(n.capture))
}

// Roles says which token each data-plane service requires.
func Roles() map[string]auth.Role {
	return map[string]auth.Role{hogwirev1.EventService_ServiceDesc.ServiceName: auth.Capture}
}

// Ready is closed once the node has its first configuration and the event
// log is open.
func (n *Node) Ready() <-chan struct{} { return n.sync.Ready() }

// Stat returns how many times metric (succeeded, failed, filtered,
// fetch_attempts, …) was counted for a destination since the node started.
func (n *Node) Stat(destination, metric string) float64 {
	n.flushFiltered()
	return n.tel.Total(destination, metric)
}

// Syncer exposes the configuration the node runs with.
func (n *Node) Syncer() *configsync.Syncer { return n.sync }

// Run opens the event log, follows the configuration, consumes events and
// ships telemetry until ctx ends. Then it stops pulling events, lets
// invocations in flight finish for up to grace, and returns; events not
// finished by then are redelivered (to this or another node) later.
func (n *Node) Run(ctx context.Context, grace time.Duration) error {
	logCfg := n.cfg.EventLog
	logCfg.Conn = n.cfg.NATS
	if logCfg.Logger == nil {
		logCfg.Logger = n.log.With("component", "eventlog")
	}
	var err error
	if n.events, err = eventlog.Open(ctx, logCfg); err != nil {
		return err
	}
	if n.masks, err = openMasker(ctx, logCfg); err != nil {
		return err
	}
	if n.pauses, n.backlogKV, err = openPauses(ctx, logCfg, n.log.With("component", "pauses")); err != nil {
		return err
	}
	if n.rates, err = openRates(ctx, n.cfg.NATS, n.log.With("component", "rates")); err != nil {
		return err
	}
	if !n.cfg.NoRecords {
		st, err := invocations.Open(ctx, invocations.Config{Conn: n.cfg.NATS, Memory: logCfg.Memory, Replicas: logCfg.Replicas,
			Attach: true, Logger: n.log.With("component", "invocations")})
		if err != nil {
			return err
		}
		n.records = st.NewWriter(n.cfg.Records)
	}
	if n.cfg.Meters != nil {
		js, err := jetstream.New(n.cfg.NATS)
		if err != nil {
			return err
		}
		reg, err := metrics.ObserveStreams(n.cfg.Meters, js, n.log.With("component", "metrics"), n.events.Streams()...)
		if err != nil {
			return fmt.Errorf("dataplane: stream metrics: %w", err)
		}
		defer reg.Unregister()
	}
	runCtx, stopRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRuns()
	n.runCtx, n.detached = runCtx, context.WithoutCancel(runCtx)
	n.consumeCtx = ctx

	var bg sync.WaitGroup
	telCtx, stopTel := context.WithCancel(context.WithoutCancel(ctx))
	bg.Add(8)
	go func() { defer bg.Done(); _ = n.sync.Run(ctx) }()
	go func() { defer bg.Done(); n.pauses.watch(ctx) }()
	go func() { defer bg.Done(); n.rates.heartbeat(ctx, n.cfg.NodeID) }()
	go func() { defer bg.Done(); every(telCtx, observeEvery, n.observeBacklog) }()
	go func() { defer bg.Done(); _ = n.tel.Run(telCtx) }()
	go func() {
		defer bg.Done()
		if n.records != nil {
			n.records.Run(telCtx)
		}
	}()
	go func() { defer bg.Done(); n.keepAlive(ctx) }()
	// The routing counts become the "filtered" metric every second.
	go func() { defer bg.Done(); every(telCtx, time.Second, n.flushFiltered) }()

	// Pull events only once the configuration is known, so that no event
	// meets an empty routing table after a restart.
	select {
	case <-n.sync.Ready():
	case <-ctx.Done():
	}
	var consumeErr error
	if ctx.Err() == nil {
		n.ready.Store(true)
		parkedDone := make(chan struct{})
		go func() {
			defer close(parkedDone)
			if err := n.events.ConsumeParked(ctx, n.cfg.ConsumeBatch, n.handleParked); err != nil {
				n.log.Error("consuming parked invocations", "err", err)
			}
		}()
		consumeErr = n.events.Consume(ctx, n.cfg.ConsumeBatch, n.handle)
		<-parkedDone
	}
	n.ready.Store(false)
	// The consumer may still be inside handle after Consume returns (a
	// connection that died under it): wait for it, and let later calls
	// hand their messages back, so no dispatch adds work past this point.
	n.handleMu.Lock()
	n.stopped = true
	n.handleMu.Unlock()
	n.flushBatches()

	done := make(chan struct{})
	go func() { n.work.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		n.log.Warn("stopping with invocations in flight; their events will be redelivered")
		stopRuns()
		n.cancelRunning()
		<-done
	}
	n.workers.Close()
	n.flushFiltered()
	n.chores.Wait()
	stopTel()
	bg.Wait()
	n.fetcher.CloseIdleConnections()
	return consumeErr
}

// destinations returns the node's destinations at this moment, for work
// over all of them that must not hold the routes' lock.
func (n *Node) destinations() []*destination {
	n.rt.mu.Lock()
	defer n.rt.mu.Unlock()
	dests := make([]*destination, 0, len(n.rt.dests))
	for _, d := range n.rt.dests {
		dests = append(dests, d)
	}
	return dests
}

// cancelRunning cancels every invocation running, once runCtx has
// ended: their contexts do not derive from it (see invocation.invoke).
func (n *Node) cancelRunning() {
	for _, d := range n.destinations() {
		d.runningMu.Lock()
		for _, inv := range d.running {
			inv.cancel(nil)
		}
		d.runningMu.Unlock()
	}
}

// pending is one message of the log in flight: acknowledged when the last
// destination is done with the last of its events.
type pending struct {
	msg       *eventlog.Message
	left      atomic.Int32
	events    int64
	abandoned atomic.Bool
	n         *Node
	// rerun is set for a rerun's message (see handleRerun).
	rerun rerunLink
	// overflow gathers, while the message is routed, the events of
	// destinations that hold as many as they may (see
	// MaxQueuedPerDestination).
	overflow map[*destination]*overflow
}

// overflow is one destination's events to store in the log again.
type overflow struct {
	data  [][]byte
	uuids []string
}

func (p *pending) done() {
	if p.left.Add(-1) != 0 || p.abandoned.Load() {
		return
	}
	p.n.untrack(p)
	if err := p.msg.Ack(); err != nil {
		p.n.log.Warn("acknowledging events", "seq", p.msg.Seq, "err", err)
	}
}

// abandon gives the event back to the log for redelivery, because the node
// is stopping before every destination finished with it. The destinations
// that did finish will run again: that is the at-least-once duplicate
// window.
func (p *pending) abandon() {
	if !p.abandoned.CompareAndSwap(false, true) {
		return
	}
	p.n.untrack(p)
	_ = p.msg.Nak(0)
}

// track counts p's events in flight; it reports false, leaving p
// untracked, when the node already holds MaxInflightEvents.
func (n *Node) track(p *pending) bool {
	n.inflightMu.Lock()
	defer n.inflightMu.Unlock()
	if n.inflightEvents > 0 && n.inflightEvents+p.events > int64(n.cfg.MaxInflightEvents) {
		return false
	}
	n.inflight[p] = struct{}{}
	n.inflightEvents += p.events
	return true
}

func (n *Node) untrack(p *pending) {
	n.inflightMu.Lock()
	if _, ok := n.inflight[p]; ok {
		delete(n.inflight, p)
		n.inflightEvents -= p.events
	}
	n.inflightMu.Unlock()
}

// keepAlive tells JetStream that events still in flight are being worked
// on, so only a dead node's events are redelivered.
func (n *Node) keepAlive(ctx context.Context) {
	wait := n.cfg.EventLog.AckWait
	if n.events != nil {
		wait = n.events.AckWait()
	}
	// Several chances per AckWait, so one late tick under load does not
	// make JetStream redeliver an event that is only slow.
	every(ctx, max(wait/5, 100*time.Millisecond), func() {
		n.inflightMu.Lock()
		msgs := make([]*eventlog.Message, 0, len(n.inflight))
		for p := range n.inflight {
			msgs = append(msgs, p.msg)
		}
		n.inflightMu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress()
		}
	})
}

// every calls f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// handle routes the events of one stored message to their destinations.
func (n *Node) handle(m *eventlog.Message) {
	n.handleMu.RLock()
	defer n.handleMu.RUnlock()
	if n.stopped {
		_ = m.Nak(0)
		return
	}
	rt := n.routes.Load()
	pr := rt.projects[m.Project]
	if pr == nil {
		_ = m.Ack() // the project is gone: nothing can run
		return
	}
	if dest := m.Header.Get(overflowHeader); dest != "" {
		if rerun, of, ok := invocations.ParseRerunHeader(m.Header.Get(invocations.RerunHeader)); ok {
			n.handleRerun(m, pr, rt.prepared[dest], rerun, of)
			return
		}
		n.handleOverflow(m, pr, rt, []string{dest})
		return
	}
	if dests := m.Header.Values(overflowGroupHeader); len(dests) > 0 {
		n.handleOverflow(m, pr, rt, dests)
		return
	}
	if len(pr.routed) > 0 {
		n.waitForRoom(rt, len(m.Data))
	}
	p := &pending{msg: m, n: n, events: int64(len(m.Data))}
	if !n.track(p) {
		// The node holds as many events as it may: hand the message back
		// for later, here or on a less busy node, rather than queue
		// without bound behind a slow destination.
		_ = m.Nak(n.cfg.BusyRetry)
		return
	}
	if m.Redelivered > 0 {
		n.log.Debug("events redelivered", "seq", m.Seq, "events", len(m.Data), "times", m.Redelivered)
	}
	if len(pr.transforms) > 0 {
		n.transformMessage(m, pr)
	}
	evs, ok := n.parseMessage(m, pr)
	if !ok {
		n.untrack(p)
		_ = m.Nak(n.cfg.BusyRetry)
		return
	}
	link := trace.SpanContextFromContext(n.prop.Extract(context.Background(), propagation.HeaderCarrier(m.Header)))
	// One count for handle itself, so the message cannot be acknowledged
	// before every event is dispatched.
	p.left.Store(1)
	// The project's lock keeps the flush of filtered counts from seeing an
	// event without its selections.
	pr.rt.mu.Lock()
	defer pr.rt.mu.Unlock()
	// Each destination's filter runs on all the message's events it may
	// want, one after the other, rather than every filter on each event in
	// turn: a project with thousands of filters then reads each filter's
	// code and state from memory once per message, not once per event.
	// Each destination still sees the events in their order.
	gs := make([]*executor.Globals, len(m.Data))
	var cands, touched []*route
	for i := range m.Data {
		// Only the name (and what the person store reads) is read before
		// routing: the rest of an event no destination wants is never
		// decoded.
		ev := evs[i]
		if ev == nil {
			continue
		}
		pr.rt.events++
		if !pr.wants(ev.Name) {
			continue
		}
		g, err := executor.NewEventFromWire(ev, pr.globals)
		if err != nil {
			n.log.Error("dropping an unreadable event", "seq", m.Seq, "index", i, "err", err)
			continue
		}
		gs[i] = g
		cands = pr.candidates(cands[:0], g)
		for _, r := range cands {
			if len(r.events) == 0 {
				touched = append(touched, r)
			}
			r.events = append(r.events, int32(i))
		}
	}
	matchAll(touched, gs)
	var wanted []bool
	for _, r := range touched {
		for j, i := range r.events {
			if n.route(r, gs[i], r.results[j], p, link, m.Data[i]) {
				if wanted == nil {
					wanted = make([]bool, len(m.Data))
				}
				wanted[i] = true
			}
		}
		r.events, r.results = r.events[:0], r.results[:0]
	}
	for i, w := range wanted {
		if w {
			// Kept once, whatever the number of its destinations, for as
			// long as their records (see package invocations).
			n.records.Event(m.Project, gs[i].UUID(), m.Data[i])
		}
	}
	n.storeOverflow(p)
	p.done()
}

// overflowHeader marks a message of events stored again for the one
// destination it names; overflowGroupHeader, for each of several (one
// value each). A node that knows no group header (an older one, during
// an upgrade) routes such a message as new: its events may then reach
// other destinations a second time, but none is lost.
const (
	overflowHeader      = invocations.DestinationHeader
	overflowGroupHeader = "Hogwire-Destinations"
)

// storeOverflow stores the events of destinations that hold as many as
// they may in the event log again, off the goroutine that reads the log;
// the message is done for them once they are stored. Destinations that
// overflowed with the same events share one message: when a node is
// behind, every destination of a project usually is, and a copy each
// multiplied the log's work by the number of destinations (with ten, the
// copies were most of what the log stored and delivered). If the log
// cannot take them, the whole message goes back to the log.
func (n *Node) storeOverflow(p *pending) {
	if len(p.overflow) == 0 {
		return
	}
	type group struct {
		names []string
		o     *overflow
	}
	var groups []*group
	byEvents := make(map[string]*group, 1)
	for d, o := range p.overflow {
		key := strings.Join(o.uuids, "\x00")
		g := byEvents[key]
		if g == nil {
			g = &group{o: o}
			byEvents[key] = g
			groups = append(groups, g)
		}
		g.names = append(g.names, d.name)
	}
	p.overflow = nil
	for _, g := range groups {
		// The same events for the same destinations make the same id, so
		// that the log stores them once if the message is handled twice.
		slices.Sort(g.names)
		h := sha256.New()
		for _, name := range g.names {
			h.Write([]byte(name))
			h.Write([]byte{1})
		}
		for _, u := range g.o.uuids {
			h.Write([]byte{0})
			h.Write([]byte(u))
		}
		id := "overflow-" + hex.EncodeToString(h.Sum(nil)[:16])
		header := nats.Header{overflowHeader: g.names}
		if len(g.names) > 1 {
			header = nats.Header{overflowGroupHeader: g.names}
		}
		p.left.Add(1)
		n.work.Add(1)
		go func() {
			defer n.work.Done()
			ctx, cancel := context.WithTimeout(n.runCtx, 10*time.Second)
			err := n.events.Republish(ctx, p.msg.Project, g.o.data, header, id)
			cancel()
			if err != nil {
				n.log.Warn("storing a slow destination's events in the log again; the message will be redelivered", "destinations", g.names, "err", err)
				p.abandon()
				return
			}
			for _, name := range g.names {
				n.tel.Count(name, "overflowed", int64(len(g.o.data)))
			}
			p.done()
		}()
	}
}

// handleOverflow runs a message of events stored again for the
// destinations named, for those that have room for them now; their
// filters matched already. When none has room, the message waits in the
// log until the one that drains last would have; when some have, those
// that do not get a message of their own again.
func (n *Node) handleOverflow(m *eventlog.Message, pr *projectRoutes, rt *routing, names []string) {
	k := int64(len(m.Data))
	var ready, full []*route
	for _, name := range names {
		r := rt.prepared[name]
		if r != nil && m.Redelivered > 0 {
			r.dest.drain.returned(k)
		}
		switch {
		case r == nil:
			for range m.Data {
				n.skip(name, skipDeleted, nil)
			}
		case r.skip != "" && !n.keeps(r.skip):
			for range m.Data {
				n.skip(r.dest.name, r.skip, nil)
			}
		case n.full(r.dest):
			full = append(full, r)
		default:
			ready = append(ready, r)
		}
	}
	if len(ready) == 0 {
		if len(full) > 0 {
			_ = m.Nak(n.overflowWait(full, m))
			return
		}
		_ = m.Ack()
		return
	}
	p := &pending{msg: m, n: n, events: k}
	if !n.track(p) {
		_ = m.Nak(n.cfg.BusyRetry)
		return
	}
	link := trace.SpanContextFromContext(n.prop.Extract(context.Background(), propagation.HeaderCarrier(m.Header)))
	p.left.Store(1)
	for i, data := range m.Data {
		ev, err := executor.ParseEvent(data)
		if err == nil {
			n.storedPerson(m.Project, ev)
			var g *executor.Globals
			if g, err = executor.NewEventFromWire(ev, pr.globals); err == nil {
				for _, r := range ready {
					// Its mappings' filters run here: only the
					// destination's ran before it was stored again.
					mappings, merr := r.mappings(g)
					if merr != nil {
						n.log.Error("dropping an event whose mapping filters failed", "destination", r.dest.name, "seq", m.Seq, "index", i, "err", merr)
						continue
					}
					n.queueMappings(r, g, p, link, data, mappings)
				}
				for _, r := range full {
					p.addOverflow(r.dest, data, g.UUID())
				}
				continue
			}
		}
		n.log.Error("dropping an unreadable event", "seq", m.Seq, "index", i, "err", err)
	}
	n.storeOverflow(p)
	p.done()
}

// full reports whether d holds as many events as it may on this node
// (MaxQueuedPerDestination): its further events wait in the log.
func (n *Node) full(d *destination) bool {
	return d.held.Load() >= int64(n.cfg.MaxQueuedPerDestination)
}

// Bounds of waitForRoom: how long one message may wait, and how often
// the destinations are looked at meanwhile.
const (
	maxRoomWait = 500 * time.Millisecond
	roomPollMin = 200 * time.Microsecond
	roomPollMax = 5 * time.Millisecond
)

// waitForRoom holds the reader of the log, briefly, while every
// destination on the node is too full to take a message of this many
// events more. Reading on would only store the events in the log again,
// for each full destination, to read and parse them a second time later:
// work for nothing while no destination can take more, and when a node
// is behind (every destination full, as under a steady load above what
// they deliver) those copies were a third of what it did. No destination
// waits for another: the reader waits only when none has room. A wait
// lasts at most maxRoomWait (a tenth of the ack wait with a short one),
// and once one runs out (destinations stuck rather than busy), messages
// are not held again until some destination has had room, so that the
// messages the reader has already pulled do not sit near their ack
// wait.
func (n *Node) waitForRoom(rt *routing, events int) {
	limit := int64(n.cfg.MaxQueuedPerDestination)
	// Room for the message's events: a destination takes events while it
	// holds fewer than the limit.
	most := limit - min(int64(events), limit/2)
	if !rt.noRoom(most) {
		n.roomless.Store(false)
		return
	}
	if n.roomless.Load() {
		return
	}
	wait := maxRoomWait
	if n.events != nil {
		wait = min(wait, n.events.AckWait()/10)
	}
	deadline := time.Now().Add(wait)
	t := time.NewTimer(roomPollMin)
	defer t.Stop()
	for delay := roomPollMin; ; delay = min(2*delay, roomPollMax) {
		select {
		case <-n.consumeCtx.Done():
			return
		case <-t.C:
		}
		if !rt.noRoom(most) {
			return
		}
		if !time.Now().Before(deadline) {
			n.roomless.Store(true)
			n.log.Debug("every destination is still full; reading on, storing their events in the log again", "waited", wait)
			return
		}
		t.Reset(delay)
	}
}

// addOverflow adds an event for d to store in the log again, and reports
// whether it is d's first of the message.
func (p *pending) addOverflow(d *destination, data []byte, uuid string) (first bool) {
	if p.overflow == nil {
		p.overflow = map[*destination]*overflow{}
	}
	o := p.overflow[d]
	if o == nil {
		o = &overflow{}
		p.overflow[d] = o
		first = true
	}
	o.data, o.uuids = append(o.data, data), append(o.uuids, uuid)
	return first
}

// overflowWait is how long a message of events stored again for full
// destinations waits in the log: as long as the destination that drains
// last takes to work off what it holds at the rate it goes, and, when it
// does not go (a stuck destination, or no rate yet), longer each time m
// comes back, so that its events cost the log little.
func (n *Node) overflowWait(full []*route, m *eventlog.Message) time.Duration {
	now, limit := time.Now(), int64(n.cfg.MaxQueuedPerDestination)
	longest := min(n.cfg.BusyRetry<<min(m.Redelivered, 3), 10*time.Second)
	var wait time.Duration
	for _, r := range full {
		wait = max(wait, r.dest.drain.wait(now, int64(len(m.Data)), r.dest.held.Load(), limit, longest))
	}
	return wait
}

// minMatchesPerWorker is the number of filter runs of a message below
// which matchAll does not spread them over several goroutines.
const minMatchesPerWorker = 512

// matchAll runs the filters of the routes on the events each lists,
// before anything is queued, and keeps in each route's list only the
// events its filters matched or failed on, with their results: most
// candidates do not match, and routing then walks only those that do.
// The runs are spread over the machine's CPUs when there are many, as a
// project with thousands of filters would otherwise route on one CPU
// only. pr.rt.mu is held.
func matchAll(routes []*route, gs []*executor.Globals) {
	total := 0
	for _, r := range routes {
		total += len(r.events)
	}
	var next atomic.Int64
	work := func() {
		// One run state for all the filters this goroutine runs.
		var mt executor.Matcher
		for k := next.Add(1) - 1; k < int64(len(routes)); k = next.Add(1) - 1 {
			r := routes[k]
			kept := r.events[:0]
			for _, i := range r.events {
				if ok, err := mt.Match(r.prep, gs[i]); ok || err != nil {
					kept = append(kept, i)
					r.results = append(r.results, filterResult{match: ok, err: err})
				}
			}
			r.events = kept
		}
	}
	workers := min(goruntime.GOMAXPROCS(0), len(routes), total/minMatchesPerWorker)
	inParallel(workers, work)
}

// inParallel runs work on n goroutines, this one among them, and returns
// when every one has returned.
func inParallel(n int, work func()) {
	var wg sync.WaitGroup
	for range n - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// filterResult is what a destination's filters said of one event.
type filterResult struct {
	match bool
	err   error
}

// route queues an invocation in r's lane for the event when its filters
// matched (res). Destinations whose filters do not match cost nothing
// more: they are counted as filtered in bulk (see flushFiltered).
// pr.rt.mu is held. It reports whether the event is for r: its filters
// matched, or failed.
func (n *Node) route(r *route, g *executor.Globals, res filterResult, p *pending, link trace.SpanContext, data []byte) bool {
	match, err := res.match, res.err
	var mappings []string
	if match && err == nil {
		mappings, err = r.mappings(g)
		match = err == nil && (mappings == nil || len(mappings) > 0)
	}
	if err != nil {
		r.dest.selected++
		n.tel.Record(r.dest.name, []telemetry.Metric{{Name: "filtering_failed", N: 1}, {Name: "health_errors", N: 1}}, -1)
		id := newInvocationID()
		n.tel.Log(&hogwirev1.LogEntry{Time: timestamppb.Now(), Level: hogwirev1.LogLevel_LOG_LEVEL_ERROR,
			Message: "Error filtering event " + g.UUID() + ": " + err.Error(), Destination: r.dest.name,
			InvocationId: id, EventUuid: g.UUID(), PersonId: g.PersonID(), NodeId: n.cfg.NodeID})
		n.recordFilterError(r, g, err, id)
		return true
	}
	if !match {
		return false
	}
	r.dest.selected++
	if r.skip != "" && !n.keeps(r.skip) {
		n.skip(r.dest.name, r.skip, g)
		return true
	}
	if n.full(r.dest) {
		if p.addOverflow(r.dest, data, g.UUID()) {
			// Start measuring how fast it drains, for when these events
			// come back.
			r.dest.drain.sample(time.Now())
		}
		return true
	}
	n.queueMappings(r, g, p, link, data, mappings)
	return true
}

// queueMappings queues one invocation of r on the event per mapping
// named (one without mappings: names is nil).
func (n *Node) queueMappings(r *route, g *executor.Globals, p *pending, link trace.SpanContext, data []byte, names []string) {
	if names == nil {
		n.queue(r, g, p, link, data, nil, "")
		return
	}
	for _, m := range names {
		n.queue(r, g, p, link, data, nil, m)
	}
}

// queue queues an invocation of r on the event (data is its wire
// encoding) in r's lane; rec is set when it was parked.
func (n *Node) queue(r *route, g *executor.Globals, p *pending, link trace.SpanContext, data []byte, rec *parked, mapping string) {
	p.left.Add(1)
	n.work.Add(1)
	r.dest.held.Add(1)
	inv := n.newInvocation(r.dest, g, p, link)
	inv.data, inv.parked, inv.mapping = data, rec, mapping
	if r.pinned {
		inv.pin = r
	}
	if n.keeps(r.skip) {
		// Parked for the quarantine one at a time, in the order the
		// events came, so that they come back in that order.
		r.dest.parkLane.submit(n.workers, inv, 1, n.runInv)
		return
	}
	if l, ok := batchOf(r.d); ok && rec == nil && !r.pinned {
		// A parked event resumes alone, with the code it ran.
		n.addToBatch(r, inv, l)
		return
	}
	r.dest.lane.submit(n.workers, inv, r.concurrency, n.runInv)
}

// flushFiltered counts, for every routed destination, the events of its
// project that it was not selected for since the last flush: events whose
// name no filter of it names are filtered too, and counting them one by
// one would make every event cost something for every destination.
func (n *Node) flushFiltered() {
	for _, pr := range n.routes.Load().projects {
		pr.rt.mu.Lock()
		for _, d := range pr.routed {
			if filtered := (pr.rt.events - d.flushedProject) - (d.selected - d.flushedSel); filtered > 0 {
				n.tel.Count(d.name, "filtered", filtered)
				n.im.Outcomes(context.Background(), d.name, metrics.OutcomeFiltered, "", filtered, 0)
			}
			d.flushedProject, d.flushedSel = pr.rt.events, d.selected
		}
		pr.rt.mu.Unlock()
	}
}

// ingestCaptures stores the events a destination's code captured with
// postHogCapture in its project's event log, where every destination whose
// filters match them runs on them as on any ingested event. The executor
// counts $hog_function_execution_count up and refuses to capture past 10,
// which stops capture loops. Failures are logged on the destination with logf.
//
// It reports whether every event was stored.
func (n *Node) ingestCaptures(ctx context.Context, dest string, caps []executor.Capture, logf func(hogwirev1.LogLevel, string, ...any)) bool {
	project := projectOf(dest)
	events := make([]*hogwirev1.Event, 0, len(caps))
	for _, c := range caps {
		id, err := uuid.NewV7()
		if err != nil {
			n.log.Error("capturing an event from a destination", "destination", dest, "err", err)
			return false
		}
		props, err := structpb.NewStruct(c.Properties)
		if err != nil {
			logf(hogwirev1.LogLevel_LOG_LEVEL_ERROR, "postHogCapture: the event's properties are not JSON: %v", err)
			return false
		}
		ev := &hogwirev1.Event{Uuid: id.String(), Event: c.Event, DistinctId: c.DistinctID,
			Properties: props, Timestamp: timestamppb.New(c.Time), Project: project}
		if _, viol := n.capture.Limits.WithDefaults().Check(ev); viol != nil {
			logf(hogwirev1.LogLevel_LOG_LEVEL_ERROR, "postHogCapture: the captured event breaks a limit: %v", viol)
			return false
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return true
	}
	if err := n.store(ctx, project, events); err != nil {
		logf(hogwirev1.LogLevel_LOG_LEVEL_ERROR, "postHogCapture: the captured event could not be stored: %v", err)
		return false
	}
	n.tel.Count(dest, "captured", int64(len(events)))
	return true
}

// tokens resolves capture tokens from the current configuration.
type tokens struct{ n *Node }

func (t tokens) Project(token string) (string, bool) {
	id, ok := t.n.routes.Load().tokens[token]
	return id, ok
}

// publisher stores events in the event log with the trace context.
type publisher struct{ n *Node }

func (p publisher) Publish(ctx context.Context, project string, events []*hogwirev1.Event) error {
	return p.n.store(ctx, project, events)
}

func (p publisher) PublishEncoded(ctx context.Context, project string, uuids []string, events [][]byte) error {
	n := p.n
	if n.events == nil {
		return errors.New("the event log is not open yet")
	}
	h := nats.Header{}
	n.prop.Inject(ctx, propagation.HeaderCarrier(h))
	return n.events.PublishEncoded(ctx, project, uuids, events, h)
}

// store adds events of a project to the event log, with ctx's trace
// context in their headers.
func (n *Node) store(ctx context.Context, project string, events []*hogwirev1.Event) error {
	if n.events == nil {
		return errors.New("the event log is not open yet")
	}
	h := nats.Header{}
	n.prop.Inject(ctx, propagation.HeaderCarrier(h))
	return n.events.Publish(ctx, project, events, h)
}
