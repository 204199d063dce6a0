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

type key struct {
	dest   string
	minute int64 // unix seconds of the minute's start
}

type bucket struct {
	// dest is the destination's running totals, found with the bucket.
	dest     *destTotals
	counters map[string]int64
	hist     []uint64
	sumMs    float64
	count    uint64
}

// destTotals are a destination's counts since the process started, which
// the events counter reports when it is collected, and its duration
// histogram's attribute set.
type destTotals struct {
	name     string
	totals   map[string]int64
	duration []metric.RecordOption
	// events are the counter's attribute sets, by metric; made when
	// first collected.
	events map[string]metric.ObserveOption
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

	mu      sync.Mutex
	dests   map[string]*destTotals
	buckets map[key]*bucket
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
	r := &Recorder{cfg: cfg, log: cfg.Logger, bounds: DurationBoundsMs(), buckets: map[key]*bucket{}, dests: map[string]*destTotals{}}
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
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.dests[dest]; d != nil {
		return float64(d.totals[metric])
	}
	return 0
}

// observe reports every destination's totals to the events counter.
func (r *Recorder) observe(_ context.Context, o metric.Int64Observer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.dests {
		for name, n := range d.totals {
			opt, ok := d.events[name]
			if !ok {
				opt = metric.WithAttributeSet(attribute.NewSet(attribute.String("destination", d.name), attribute.String("metric", name)))
				d.events[name] = opt
			}
			o.Observe(n, opt)
		}
	}
	return nil
}

// minute is the current minute's bucket time; read outside the lock.
func (r *Recorder) minute() int64 { return r.cfg.Now().Truncate(time.Minute).Unix() }

func (r *Recorder) bucketAtLocked(dest string, minute int64) *bucket {
	k := key{dest, minute}
	b := r.buckets[k]
	if b == nil {
		d := r.dests[dest]
		if d == nil {
			d = &destTotals{name: dest, totals: map[string]int64{}, events: map[string]metric.ObserveOption{},
				duration: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("destination", dest)))}}
			r.dests[dest] = d
		}
		b = &bucket{dest: d, counters: map[string]int64{}, hist: make([]uint64, len(r.bounds)+1)}
		r.buckets[k] = b
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
// negative, its wall time — under one lock: the data plane records every
// invocation, and one call costs less than one per counter. The lock
// covers only the node's own maps (the events counter reads them when it
// is collected); the clock is read before it and the duration histogram,
// safe for concurrent use, is fed after it, so deliveries on other cores
// do not queue behind them.
func (r *Recorder) Record(dest string, metrics []Metric, d time.Duration) {
	var ms float64
	var i int
	if d >= 0 {
		ms = float64(d) / float64(time.Millisecond)
		i = sort.SearchFloat64s(r.bounds, ms)
	}
	minute := r.minute()
	var do []metric.RecordOption
	r.mu.Lock()
	b := r.bucketAtLocked(dest, minute)
	for _, m := range metrics {
		b.counters[m.Name] += m.N
		b.dest.totals[m.Name] += m.N
	}
	if d >= 0 {
		b.hist[i]++
		b.sumMs += ms
		b.count++
		do = b.dest.duration
	}
	r.mu.Unlock()
	if do != nil {
		r.duration.Record(context.Background(), d.Seconds(), do...)
	}
}

// Log buffers an entry; it reports false when the buffer is full and the
// entry was dropped.
func (r *Recorder) Log(e *hogwirev1.LogEntry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.logs) >= r.cfg.MaxLogs {
		r.dropped++
		return false
	}
	r.logs = append(r.logs, e)
	return true
}

// take removes everything recorded so far as one report.
func (r *Recorder) take() *hogwirev1.ReportRequest {
	r.mu.Lock()
	buckets, logs, dropped := r.buckets, r.logs, r.dropped
	r.buckets, r.logs, r.dropped = map[key]*bucket{}, nil, 0
	r.mu.Unlock()
	req := &hogwirev1.ReportRequest{NodeId: r.cfg.NodeID, Logs: logs, DroppedLogs: dropped}
	for k, b := range buckets {
		req.Metrics = append(req.Metrics, &hogwirev1.DestinationMetrics{
			Destination: k.dest,
			Minute:      timestamppb.New(time.Unix(k.minute, 0)),
			Counters:    b.counters,
			Duration:    &hogwirev1.Histogram{BoundsMs: r.bounds, Counts: b.hist, SumMs: b.sumMs, Count: b.count},
		})
	}
	return req
}

// giveBack merges an unsent report into the recorder, so counters are not
// lost while the control plane is away. Logs are kept only while they fit.
func (r *Recorder) giveBack(req *hogwirev1.ReportRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range req.Metrics {
		b := r.bucketAtLocked(m.Destination, m.Minute.AsTime().Unix())
		for name, n := range m.Counters {
			b.counters[name] += n
		}
		if h := m.Duration; h != nil && len(h.Counts) == len(b.hist) {
			for i, c := range h.Counts {
				b.hist[i] += c
			}
			b.sumMs += h.SumMs
			b.count += h.Count
		}
	}
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
