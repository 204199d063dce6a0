// Package telemetry collects a data-plane node's per-destination metrics
// and log entries and ships them to the control plane over
// TelemetryService.Report.
//
// Memory is bounded: counters are aggregated per destination and minute,
// and log entries wait in a buffer of fixed size. When the control plane is
// slow or away, counters keep aggregating (they are small) and log entries
// beyond the buffer are dropped and counted, never queued without bound.
package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/rpcclient"
)

// DurationBoundsMs are the upper bounds of the invocation duration
// histogram, in milliseconds.
func DurationBoundsMs() []float64 {
	return []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000}
}

// Config configures a Recorder.
type Config struct {
	NodeID string
	// Conn reaches the control plane with the node token.
	Conn grpc.ClientConnInterface
	// Interval between reports (default 1s).
	Interval time.Duration
	// MaxLogs bounds buffered log entries (default 10000).
	MaxLogs int
	Logger  *slog.Logger
	Now     func() time.Time
	// Meters, when set, also makes the counts OpenTelemetry metrics
	// (hogwire_destination_events_total{destination,metric} and
	// hogwire_destination_duration_seconds{destination} in Prometheus),
	// cumulative since the process started.
	Meters metric.MeterProvider
}

// dest is one destination's telemetry: its counts since the process
// started, which the events counter reports when it is collected, and its
// minute buckets not yet reported. Each destination has its own lock, so
// deliveries to different destinations do not queue behind one another.
type dest struct {
	name string
	// duration is its duration histogram's attribute set.
	duration []metric.RecordOption

	mu sync.Mutex
	// slots numbers the metrics it has seen, so that an invocation's
	// counts cost one lookup each: names[slots[m]] == m, and totals and
	// the buckets' counts are indexed alike.
	slots  map[string]int
	names  []string
	totals []int64
	// counted says which slots Record added to (a report given back
	// makes slots the totals never saw); events are the counter's
	// attribute sets, made when first collected.
	counted []bool
	events  []metric.ObserveOption
	// buckets are the minutes not yet taken; cur is the current one.
	buckets map[int64]*bucket
	cur     *bucket
}

type bucket struct {
	minute int64 // unix seconds of the minute's start
	// counts are by slot; has says which slots were added to, even by 0.
	counts []int64
	has    []bool
	hist   []uint64
	sumMs  float64
	count  uint64
}

func (b *bucket) add(slot int, n int64) {
	if slot >= len(b.counts) {
		b.counts = append(b.counts, make([]int64, slot+1-len(b.counts))...)
		b.has = append(b.has, make([]bool, slot+1-len(b.has))...)
	}
	b.counts[slot] += n
	b.has[slot] = true
}

// Recorder aggregates telemetry; its methods are safe for concurrent use.
type Recorder struct {
	cfg    Config
	log    *slog.Logger
	bounds []float64

	// events is observed: each invocation adds its counts to the
	// destination's totals under the lock it takes anyway, and the
	// instrument reads them when it is collected, instead of taking one
	// Add per count.
	events   metric.Int64ObservableCounter
	duration metric.Float64Histogram

	// dests only grows: the lock is read-held on the way to a
	// destination, written only to add one.
	destsMu sync.RWMutex
	dests   map[string]*dest

	logMu   sync.Mutex
	logs    []*hogwirev1.LogEntry
	dropped int64
}

// New returns a Recorder; Run ships what it records.
func New(cfg Config) *Recorder {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.MaxLogs <= 0 {
		cfg.MaxLogs = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger, bounds: DurationBoundsMs(), dests: map[string]*dest{}}
	mp := cfg.Meters
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/hogwire/hogwire/dataplane/telemetry")
	var err error
	if r.events, err = m.Int64ObservableCounter("hogwire.destination.events", metric.WithUnit("{event}"),
		metric.WithDescription("Per destination, events by outcome (succeeded, failed, filtered, …) and fetch attempts by result."),
		metric.WithInt64Callback(r.observe)); err != nil {
		r.log.Error("making a metric", "err", err)
	}
	buckets := make([]float64, len(r.bounds))
	for i, ms := range r.bounds {
		buckets[i] = ms / 1000
	}
	if r.duration, err = m.Float64Histogram("hogwire.destination.duration", metric.WithUnit("s"),
		metric.WithDescription("Wall time of destination invocations, fetches included."),
		metric.WithExplicitBucketBoundaries(buckets...)); err != nil {
		r.log.Error("making a metric", "err", err)
	}
	return r
}

// Total returns the count of a destination's metric since the process
// started.
func (r *Recorder) Total(dest, metric string) float64 {
	r.destsMu.RLock()
	d := r.dests[dest]
	r.destsMu.RUnlock()
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.slots[metric]; ok && d.counted[s] {
		return float64(d.totals[s])
	}
	return 0
}

// all is every destination seen so far.
func (r *Recorder) all() []*dest {
	r.destsMu.RLock()
	defer r.destsMu.RUnlock()
	all := make([]*dest, 0, len(r.dests))
	for _, d := range r.dests {
		all = append(all, d)
	}
	return all
}

// observe reports every destination's totals to the events counter.
func (r *Recorder) observe(_ context.Context, o metric.Int64Observer) error {
	for _, d := range r.all() {
		d.mu.Lock()
		for s, n := range d.totals {
			if !d.counted[s] {
				continue
			}
			if d.events[s] == nil {
				d.events[s] = metric.WithAttributeSet(attribute.NewSet(attribute.String("destination", d.name), attribute.String("metric", d.names[s])))
			}
			o.Observe(n, d.events[s])
		}
		d.mu.Unlock()
	}
	return nil
}

// minute is the current minute's bucket time; read outside the locks.
func (r *Recorder) minute() int64 { return minuteOf(r.cfg.Now()) }

// minuteOf is t.Truncate(time.Minute).Unix() in seconds' arithmetic,
// which costs a fifth of the clock read where Truncate costs a quarter:
// Unix minutes begin where time's own do (the zero time is a whole
// number of minutes before 1970), so flooring the Unix seconds is the same.
func minuteOf(t time.Time) int64 {
	s := t.Unix()
	m := s % 60
	if m < 0 {
		m += 60
	}
	return s - m
}

// dest is name's telemetry, made on first use.
func (r *Recorder) dest(name string) *dest {
	r.destsMu.RLock()
	d := r.dests[name]
	r.destsMu.RUnlock()
	if d != nil {
		return d
	}
	r.destsMu.Lock()
	defer r.destsMu.Unlock()
	if d = r.dests[name]; d == nil {
		d = &dest{name: name, slots: map[string]int{}, buckets: map[int64]*bucket{},
			duration: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("destination", name)))}}
		r.dests[name] = d
	}
	return d
}

// slotLocked is metric's slot, made on first use.
func (d *dest) slotLocked(metric string) int {
	s, ok := d.slots[metric]
	if !ok {
		s = len(d.names)
		d.slots[metric] = s
		d.names = append(d.names, metric)
		d.totals = append(d.totals, 0)
		d.counted = append(d.counted, false)
		d.events = append(d.events, nil)
	}
	return s
}

func (d *dest) bucketLocked(minute int64, bounds int) *bucket {
	if b := d.cur; b != nil && b.minute == minute {
		return b
	}
	b := d.buckets[minute]
	if b == nil {
		b = &bucket{minute: minute, hist: make([]uint64, bounds+1)}
		d.buckets[minute] = b
	}
	if d.cur == nil || minute >= d.cur.minute {
		d.cur = b
	}
	return b
}

// Count adds n to a destination's metric for the current minute.
func (r *Recorder) Count(dest, metric string, n int64) {
	r.Record(dest, []Metric{{metric, n}}, -1)
}

// Duration records one invocation's wall time.
func (r *Recorder) Duration(dest string, d time.Duration) {
	r.Record(dest, nil, d)
}

// Metric is an amount to add to one of a destination's counters.
type Metric struct {
	Name string
	N    int64
}

// Record adds what one invocation did — counters and, unless d is
// negative, its wall time — under its destination's lock: the data plane
// records every invocation, and one call costs less than one per counter.
// The lock covers only the destination's own counts (the events counter
// reads them when it is collected); the clock is read before it and the
// duration histogram, safe for concurrent use, is fed after it, so
// deliveries on other cores do not queue behind them.
func (r *Recorder) Record(dest string, metrics []Metric, d time.Duration) {
	r.record(r.dest(dest), time.Time{}, metrics, d)
}

// Dest is one destination's telemetry, for a caller that records it at
// every invocation: it skips the lookup by name, and the lock all
// destinations share for it.
type Dest struct {
	r *Recorder
	d *dest
}

// Dest returns name's telemetry, valid for as long as r.
func (r *Recorder) Dest(name string) *Dest { return &Dest{r: r, d: r.dest(name)} }

// Record is Recorder.Record for d's destination.
func (d *Dest) Record(metrics []Metric, dur time.Duration) {
	d.r.record(d.d, time.Time{}, metrics, dur)
}

// RecordAt is Record for what happened at t (its minute takes the
// counts), for a caller that has just read the clock: Record reads it
// again. A zero t is now.
func (d *Dest) RecordAt(t time.Time, metrics []Metric, dur time.Duration) {
	d.r.record(d.d, t, metrics, dur)
}

// Count is Recorder.Count for d's destination.
func (d *Dest) Count(metric string, n int64) { d.r.record(d.d, time.Time{}, []Metric{{metric, n}}, -1) }

// record adds to dt at t (zero: now).
func (r *Recorder) record(dt *dest, t time.Time, metrics []Metric, d time.Duration) {
	var ms float64
	var i int
	if d >= 0 {
		ms = float64(d) / float64(time.Millisecond)
		i = sort.SearchFloat64s(r.bounds, ms)
	}
	var minute int64
	if t.IsZero() {
		minute = r.minute()
	} else {
		minute = minuteOf(t)
	}
	dt.mu.Lock()
	b := dt.bucketLocked(minute, len(r.bounds))
	for _, m := range metrics {
		s := dt.slotLocked(m.Name)
		b.add(s, m.N)
		dt.totals[s] += m.N
		dt.counted[s] = true
	}
	if d >= 0 {
		b.hist[i]++
		b.sumMs += ms
		b.count++
	}
	dt.mu.Unlock()
	if d >= 0 {
		r.duration.Record(context.Background(), d.Seconds(), dt.duration...)
	}
}

// Log buffers an entry; it reports false when the buffer is full and the
// entry was dropped.
func (r *Recorder) Log(e *hogwirev1.LogEntry) bool {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if len(r.logs) >= r.cfg.MaxLogs {
		r.dropped++
		return false
	}
	r.logs = append(r.logs, e)
	return true
}

// take removes everything recorded so far as one report.
func (r *Recorder) take() *hogwirev1.ReportRequest {
	r.logMu.Lock()
	logs, dropped := r.logs, r.dropped
	r.logs, r.dropped = nil, 0
	r.logMu.Unlock()
	req := &hogwirev1.ReportRequest{NodeId: r.cfg.NodeID, Logs: logs, DroppedLogs: dropped}
	for _, d := range r.all() {
		d.mu.Lock()
		var buckets map[int64]*bucket
		names := d.names
		if len(d.buckets) > 0 {
			buckets, d.buckets, d.cur = d.buckets, map[int64]*bucket{}, nil
		}
		d.mu.Unlock()
		// Taken buckets are the report's alone; names only grows.
		for minute, b := range buckets {
			counters := make(map[string]int64, len(b.counts))
			for s, n := range b.counts {
				if b.has[s] {
					counters[names[s]] = n
				}
			}
			req.Metrics = append(req.Metrics, &hogwirev1.DestinationMetrics{
				Destination: d.name,
				Minute:      timestamppb.New(time.Unix(minute, 0)),
				Counters:    counters,
				Duration:    &hogwirev1.Histogram{BoundsMs: r.bounds, Counts: b.hist, SumMs: b.sumMs, Count: b.count},
			})
		}
	}
	return req
}

// giveBack merges an unsent report into the recorder, so counters are not
// lost while the control plane is away. Logs are kept only while they fit.
func (r *Recorder) giveBack(req *hogwirev1.ReportRequest) {
	for _, m := range req.Metrics {
		d := r.dest(m.Destination)
		d.mu.Lock()
		b := d.bucketLocked(m.Minute.AsTime().Unix(), len(r.bounds))
		for name, n := range m.Counters {
			b.add(d.slotLocked(name), n)
		}
		if h := m.Duration; h != nil && len(h.Counts) == len(b.hist) {
			for i, c := range h.Counts {
				b.hist[i] += c
			}
			b.sumMs += h.SumMs
			b.count += h.Count
		}
		d.mu.Unlock()
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	room := r.cfg.MaxLogs - len(r.logs)
	if room < len(req.Logs) {
		r.dropped += int64(len(req.Logs) - max(room, 0))
		req.Logs = req.Logs[:max(room, 0)]
	}
	r.logs = append(req.Logs, r.logs...)
	r.dropped += req.DroppedLogs
}

// Run ships reports every Interval until ctx ends, reconnecting with
// backoff and jitter (one warning per outage, rpcclient.Keep) and
// buffering, bounded, meanwhile; then it makes a last attempt to ship what
// is left.
func (r *Recorder) Run(ctx context.Context) error {
	rpcclient.Keep(ctx, r.log, "telemetry stream", rpcclient.KeepOptions{Initial: r.cfg.Interval, Max: 30 * time.Second}, r.stream)
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.flushOnce(fctx)
	return nil
}

// stream ships reports on one stream until it breaks; connected is called
// at each acknowledged report.
func (r *Recorder) stream(ctx context.Context, connected func()) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := hogwirev1.NewTelemetryServiceClient(r.cfg.Conn).Report(sctx)
	if err != nil {
		return err
	}
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	var seq int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		req := r.take()
		if len(req.Metrics) == 0 && len(req.Logs) == 0 && req.DroppedLogs == 0 {
			continue
		}
		seq++
		req.Sequence = seq
		if err := s.Send(req); err != nil {
			r.giveBack(req)
			if errors.Is(err, io.EOF) {
				// The server ended the stream; its status says why.
				_, err = s.Recv()
			}
			return err
		}
		// One batch in flight: waiting for its ack is the back-pressure.
		ack, err := s.Recv()
		if err != nil || ack.AckedSequence < seq {
			r.giveBack(req)
			if err == nil || errors.Is(err, io.EOF) {
				err = errors.New("control plane did not acknowledge the report")
			}
			return err
		}
		connected()
	}
}

// flushOnce sends what is left on a fresh stream.
func (r *Recorder) flushOnce(ctx context.Context) error {
	req := r.take()
	if len(req.Metrics) == 0 && len(req.Logs) == 0 && req.DroppedLogs == 0 {
		return nil
	}
	s, err := hogwirev1.NewTelemetryServiceClient(r.cfg.Conn).Report(ctx)
	if err != nil {
		return err
	}
	req.Sequence = 1
	if err := s.Send(req); err != nil {
		return err
	}
	_, err = s.Recv()
	_ = s.CloseSend()
	return err
}
