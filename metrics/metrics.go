// Package metrics defines hogwire's pipeline metrics as OpenTelemetry
// instruments: what comes in (ingest, by endpoint and status), what waits
// (JetStream stream lag and pending per consumer), what runs (in-flight
// invocations) and what comes out (invocation outcomes, kept apart from
// delivery attempts: one event that succeeds on its third try is one
// success and three attempts). Made from the process's meter provider
// (tracing.NewMeters), they are served on /metrics and pushed over OTLP
// alike. Prometheus sees them as hogwire_ingest_events_total,
// hogwire_stream_consumer_pending and so on; charts/dashboards builds on
// those names.
package metrics

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Scope is the instrumentation scope of every instrument here.
const Scope = "github.com/hogwire/hogwire"

// Ingest counts what the capture endpoints receive.
type Ingest struct {
	events, bytes metric.Int64Counter

	mu    sync.Mutex
	attrs map[[2]string]metric.MeasurementOption
}

// Ingest statuses.
const (
	StatusAccepted     = "accepted"     // stored in the event log
	StatusInvalid      = "invalid"      // malformed request or event (4xx)
	StatusUnauthorized = "unauthorized" // unknown project token
	StatusTooLarge     = "too_large"    // over a size limit
	StatusUnavailable  = "unavailable"  // the event log could not take it (5xx)
	StatusDuplicate    = "duplicate"    // dropped as a re-send of a stored event
)

// NewIngest makes the ingest instruments.
func NewIngest(mp metric.MeterProvider) (*Ingest, error) {
	m := mp.Meter(Scope)
	events, err := m.Int64Counter("hogwire.ingest.events", metric.WithUnit("{event}"),
		metric.WithDescription("Events received by the capture API and gRPC ingest, by endpoint and status."))
	if err != nil {
		return nil, err
	}
	bytes, err := m.Int64Counter("hogwire.ingest.request.size", metric.WithUnit("By"),
		metric.WithDescription("Request bytes received by the capture API and gRPC ingest (as sent, before decompression), by endpoint and status."))
	if err != nil {
		return nil, err
	}
	return &Ingest{events: events, bytes: bytes, attrs: map[[2]string]metric.MeasurementOption{}}, nil
}

// Record counts one request: its endpoint (e.g. "/batch/", "grpc"), its
// status, the events in it and its size.
func (i *Ingest) Record(ctx context.Context, endpoint, status string, events int, size int64) {
	if i == nil {
		return
	}
	attrs := option(&i.mu, i.attrs, [2]string{endpoint, status}, func() []attribute.KeyValue {
		return []attribute.KeyValue{attribute.String("endpoint", endpoint), attribute.String("status", status)}
	})
	if events > 0 {
		i.events.Add(ctx, int64(events), attrs)
	}
	if size > 0 {
		i.bytes.Add(ctx, size, attrs)
	}
}

// Invocation outcomes: what became of one event at one destination, once,
// however many delivery attempts it took.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"   // with a reason
	OutcomeFiltered  = "filtered" // the destination's filters did not match
	OutcomeSkipped   = "skipped"  // the destination was disabled or quarantined
)

// Failure reasons of OutcomeFailed.
const (
	ReasonHogError  = "hog_error"  // the code threw or broke a limit
	ReasonHTTPError = "http_error" // the destination kept answering with an error
	ReasonTimeout   = "timeout"
	ReasonNetwork   = "network"
	ReasonBlocked   = "blocked" // the egress guard refused the address
)

// Delivery attempt results: each fetch a destination's code makes.
const (
	AttemptOK        = "ok"
	AttemptHTTP4xx   = "http_4xx"
	AttemptHTTP5xx   = "http_5xx"
	AttemptTimeout   = "timeout"
	AttemptNetwork   = "network_error"
	AttemptBlocked   = "blocked"
	AttemptThrottled = "throttled" // 429
)

// Invocations measures destination invocations. Its methods run once or
// more per event: the counters are kept here, per destination, and the
// instruments read them when they are collected (observable counters),
// so that recording costs an addition, not an instrument's Add with its
// attribute lookups; each destination's attribute sets are made once.
type Invocations struct {
	duration metric.Float64Histogram

	mu    sync.RWMutex
	dests map[string]*destCounts
}

// destCounts are one destination's counts since the process started, by
// outcome and reason and by attempt result, with their attribute sets.
type destCounts struct {
	inflight atomic.Int64
	// succeeded and ok count the common outcome and attempt result
	// without the lock or a map lookup; succeededTimed and ok's attribute
	// sets are made with the destination's counts.
	succeeded      atomic.Int64
	ok             atomic.Int64
	succeededSet   metric.ObserveOption
	okSet          metric.ObserveOption
	succeededTimed []metric.RecordOption
	// inflightSet is the in-flight gauge's attribute set.
	inflightSet metric.ObserveOption
	mu          sync.Mutex
	outcomes    map[[2]string]*count
	// timed are the duration's attribute sets by outcome, as the option
	// slices Record takes, so that feeding it allocates nothing.
	timed    map[string][]metric.RecordOption
	attempts map[string]*count
}

// count is one series of a counter; n is guarded by its destination's mu.
type count struct {
	n   int64
	set metric.ObserveOption
}

// NewInvocations makes the invocation instruments.
func NewInvocations(mp metric.MeterProvider) (*Invocations, error) {
	m := mp.Meter(Scope)
	outcomes, err := m.Int64ObservableCounter("hogwire.invocation.outcomes", metric.WithUnit("{invocation}"),
		metric.WithDescription("Events finished at a destination, by outcome (succeeded, failed, filtered, skipped) and, for failures, reason; once per event however many attempts it took."))
	if err != nil {
		return nil, err
	}
	attempts, err := m.Int64ObservableCounter("hogwire.delivery.attempts", metric.WithUnit("{attempt}"),
		metric.WithDescription("HTTP requests destinations made, retries included, by result."))
	if err != nil {
		return nil, err
	}
	duration, err := m.Float64Histogram("hogwire.invocation.duration", metric.WithUnit("s"),
		metric.WithDescription("Wall time of destination invocations, fetches and retries included."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	if err != nil {
		return nil, err
	}
	inflight, err := m.Int64ObservableUpDownCounter("hogwire.invocations.inflight", metric.WithUnit("{invocation}"),
		metric.WithDescription("Destination invocations running now, fetches and retry waits included."))
	if err != nil {
		return nil, err
	}
	inv := &Invocations{duration: duration, dests: map[string]*destCounts{}}
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		inv.observe(o, outcomes, attempts, inflight)
		return nil
	}, outcomes, attempts, inflight); err != nil {
		return nil, err
	}
	return inv, nil
}

// observe reports every destination's counts.
func (m *Invocations) observe(o metric.Observer, outcomes, attempts, inflight metric.Int64Observable) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, d := range m.dests {
		o.ObserveInt64(inflight, d.inflight.Load(), d.inflightSet)
		if n := d.succeeded.Load(); n > 0 {
			o.ObserveInt64(outcomes, n, d.succeededSet)
		}
		if n := d.ok.Load(); n > 0 {
			o.ObserveInt64(attempts, n, d.okSet)
		}
		d.mu.Lock()
		for _, c := range d.outcomes {
			o.ObserveInt64(outcomes, c.n, c.set)
		}
		for _, c := range d.attempts {
			o.ObserveInt64(attempts, c.n, c.set)
		}
		d.mu.Unlock()
	}
}

func destAttr(destination string) attribute.KeyValue {
	return attribute.String("destination", destination)
}

func (m *Invocations) countsOf(destination string) *destCounts {
	m.mu.RLock()
	d := m.dests[destination]
	m.mu.RUnlock()
	if d != nil {
		return d
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if d = m.dests[destination]; d == nil {
		succeeded := attribute.NewSet(destAttr(destination), attribute.String("outcome", OutcomeSucceeded))
		d = &destCounts{
			inflightSet:    metric.WithAttributeSet(attribute.NewSet(destAttr(destination))),
			succeededSet:   metric.WithAttributeSet(succeeded),
			okSet:          metric.WithAttributeSet(attribute.NewSet(destAttr(destination), attribute.String("result", AttemptOK))),
			succeededTimed: []metric.RecordOption{metric.WithAttributeSet(succeeded)},
			outcomes:       map[[2]string]*count{},
			timed:          map[string][]metric.RecordOption{},
			attempts:       map[string]*count{},
		}
		m.dests[destination] = d
	}
	return d
}

// add adds n to cache[k], a series whose attribute set mk makes on first
// use; its destination's mu is held.
func add[K comparable](cache map[K]*count, k K, n int64, mk func() []attribute.KeyValue) {
	c := cache[k]
	if c == nil {
		c = &count{set: metric.WithAttributeSet(attribute.NewSet(mk()...))}
		cache[k] = c
	}
	c.n += n
}

// option returns cache[k], an attribute set made by mk on first use.
func option[K comparable](mu *sync.Mutex, cache map[K]metric.MeasurementOption, k K, mk func() []attribute.KeyValue) metric.MeasurementOption {
	mu.Lock()
	defer mu.Unlock()
	o, ok := cache[k]
	if !ok {
		o = metric.WithAttributeSet(attribute.NewSet(mk()...))
		cache[k] = o
	}
	return o
}

// Start counts an invocation as in flight until done is called.
func (m *Invocations) Start(ctx context.Context, destination string) (done func()) {
	if m == nil {
		return func() {}
	}
	m.Inflight(ctx, destination, 1)
	return func() { m.Inflight(context.WithoutCancel(ctx), destination, -1) }
}

// Inflight adds delta to the invocations of destination running now.
func (m *Invocations) Inflight(_ context.Context, destination string, delta int64) {
	if m == nil {
		return
	}
	m.countsOf(destination).inflight.Add(delta)
}

// Outcome records how an invocation ended; reason is for OutcomeFailed and
// empty otherwise. d is its wall time (zero for filtered and skipped
// events, which are not timed).
func (m *Invocations) Outcome(ctx context.Context, destination, outcome, reason string, d time.Duration) {
	m.Outcomes(ctx, destination, outcome, reason, 1, d)
}

// Outcomes records n invocations that ended alike (events filtered out in
// bulk, say); d, when positive, is the wall time of one.
func (m *Invocations) Outcomes(ctx context.Context, destination, outcome, reason string, n int64, d time.Duration) {
	if m == nil || n <= 0 {
		return
	}
	m.outcomes(ctx, m.countsOf(destination), destination, outcome, reason, n, d)
}

func (m *Invocations) outcomes(ctx context.Context, dc *destCounts, destination, outcome, reason string, n int64, d time.Duration) {
	if n <= 0 {
		return
	}
	if outcome == OutcomeSucceeded && reason == "" {
		dc.succeeded.Add(n)
		if d > 0 {
			m.duration.Record(ctx, d.Seconds(), dc.succeededTimed...)
		}
		return
	}
	var timed []metric.RecordOption
	dc.mu.Lock()
	add(dc.outcomes, [2]string{outcome, reason}, n, func() []attribute.KeyValue {
		kv := []attribute.KeyValue{destAttr(destination), attribute.String("outcome", outcome)}
		if reason != "" {
			kv = append(kv, attribute.String("reason", reason))
		}
		return kv
	})
	if d > 0 {
		var ok bool
		if timed, ok = dc.timed[outcome]; !ok {
			timed = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(destAttr(destination), attribute.String("outcome", outcome)))}
			dc.timed[outcome] = timed
		}
	}
	dc.mu.Unlock()
	if d > 0 {
		m.duration.Record(ctx, d.Seconds(), timed...)
	}
}

// Attempt records one delivery request and its result.
func (m *Invocations) Attempt(_ context.Context, destination, result string) {
	if m == nil {
		return
	}
	attempt(m.countsOf(destination), destination, result)
}

func attempt(dc *destCounts, destination, result string) {
	if result == AttemptOK {
		dc.ok.Add(1)
		return
	}
	dc.mu.Lock()
	add(dc.attempts, result, 1, func() []attribute.KeyValue {
		return []attribute.KeyValue{destAttr(destination), attribute.String("result", result)}
	})
	dc.mu.Unlock()
}

// Dest is one destination's invocation metrics, for a caller that records
// them at every invocation: its methods are Invocations' for the
// destination, without the lookup by name and the lock every destination
// shares for it. A nil *Dest (of nil Invocations) records nothing.
type Dest struct {
	m    *Invocations
	c    *destCounts
	name string
}

// Dest returns destination's metrics, valid for as long as m; nil when m
// is nil.
func (m *Invocations) Dest(destination string) *Dest {
	if m == nil {
		return nil
	}
	return &Dest{m: m, c: m.countsOf(destination), name: destination}
}

// Inflight adds delta to the destination's invocations running now.
func (d *Dest) Inflight(delta int64) {
	if d != nil {
		d.c.inflight.Add(delta)
	}
}

// Outcome is Invocations.Outcome for d's destination.
func (d *Dest) Outcome(ctx context.Context, outcome, reason string, dur time.Duration) {
	d.Outcomes(ctx, outcome, reason, 1, dur)
}

// Outcomes is Invocations.Outcomes for d's destination.
func (d *Dest) Outcomes(ctx context.Context, outcome, reason string, n int64, dur time.Duration) {
	if d != nil {
		d.m.outcomes(ctx, d.c, d.name, outcome, reason, n, dur)
	}
}

// Attempt is Invocations.Attempt for d's destination.
func (d *Dest) Attempt(result string) {
	if d != nil {
		attempt(d.c, d.name, result)
	}
}

// AttemptResult classifies an HTTP status (0: no response, with err).
func AttemptResult(status int, timedOut bool) string {
	switch {
	case timedOut:
		return AttemptTimeout
	case status == 0:
		return AttemptNetwork
	case status == 429:
		return AttemptThrottled
	case status >= 500:
		return AttemptHTTP5xx
	case status >= 400:
		return AttemptHTTP4xx
	}
	return AttemptOK
}
