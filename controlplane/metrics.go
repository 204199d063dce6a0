package controlplane

import (
	"context"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/resourcename"
)

// metricNames are the series QueryMetrics knows, in the order it returns
// them when asked for all. The duration_* ones are computed from the
// merged histograms; the rest are counters.
var metricNames = []string{
	"succeeded", "failed", "filtered", "dropped", "disabled_temporarily", "disabled_permanently", "masked",
	"filtering_failed", "inputs_failed", "disabled", "health_errors", "failed_client_error", "captured",
	"fetch_attempts", "fetch_failed_4xx", "fetch_failed_5xx", "fetch_timeouts", "fetch_errors",
	"duration_p50_ms", "duration_p95_ms", "duration_p99_ms",
}

var percentileOf = map[string]float64{"duration_p50_ms": 0.50, "duration_p95_ms": 0.95, "duration_p99_ms": 0.99}

// metricsServer serves MetricsService from the metrics stream.
type metricsServer struct {
	hogwirev1.UnimplementedMetricsServiceServer
	telemetryReader
	now func() time.Time
}

const (
	// maxMetricPoints bounds one series (a week of minutes fits).
	maxMetricPoints = 20000
	// maxMetricsScan bounds the messages one QueryMetrics call reads.
	maxMetricsScan = 2000000
)

var errScanLimit = errors.New("scan limit reached")

func intervalWidth(iv hogwirev1.MetricInterval) time.Duration {
	switch iv {
	case hogwirev1.MetricInterval_METRIC_INTERVAL_MINUTE:
		return time.Minute
	case hogwirev1.MetricInterval_METRIC_INTERVAL_HOUR:
		return time.Hour
	case hogwirev1.MetricInterval_METRIC_INTERVAL_DAY:
		return 24 * time.Hour
	}
	return 0
}

// QueryMetrics sums what every node reported into one series per
// destination (or per project with aggregate) and metric, with every
// interval of the range present.
func (s *metricsServer) QueryMetrics(ctx context.Context, req *hogwirev1.QueryMetricsRequest) (*hogwirev1.QueryMetricsResponse, error) {
	t, err := s.telemetryStore()
	if err != nil {
		return nil, err
	}
	var v violations
	end := s.now()
	if ts := req.GetEndTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("end_time", "%v", err)
		}
		end = ts.AsTime()
	}
	start := end.Add(-time.Hour)
	if ts := req.GetStartTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("start_time", "%v", err)
		}
		start = ts.AsTime()
	}
	if !end.After(start) {
		v.add("end_time", "must be after start_time")
	}
	iv := req.GetInterval()
	if iv == hogwirev1.MetricInterval_METRIC_INTERVAL_UNSPECIFIED {
		switch r := end.Sub(start); {
		case r <= 6*time.Hour:
			iv = hogwirev1.MetricInterval_METRIC_INTERVAL_MINUTE
		case r <= 7*24*time.Hour:
			iv = hogwirev1.MetricInterval_METRIC_INTERVAL_HOUR
		default:
			iv = hogwirev1.MetricInterval_METRIC_INTERVAL_DAY
		}
	}
	width := intervalWidth(iv)
	if width == 0 {
		v.add("interval", "unknown interval %d", iv)
	}
	names := req.GetMetrics()
	if len(names) == 0 {
		names = metricNames
	}
	for i, n := range names {
		if !slices.Contains(metricNames, n) {
			v.add("metrics", "unknown metric %q (metrics[%d]); known: %v", n, i, metricNames)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	first := start.Truncate(width)
	points := int((end.Sub(first) + width - 1) / width)
	if points > maxMetricPoints {
		return nil, invalid("interval", "%d points per series is more than %d: choose a wider interval or a shorter range", points, maxMetricPoints)
	}
	sc, err := s.resolveScope(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	q := metricsQuery{first: first, width: width, points: points, aggregate: req.GetAggregate()}
	buckets, err := t.readMetrics(ctx, sc, q)
	if errors.Is(err, errScanLimit) {
		return nil, status.Errorf(codes.ResourceExhausted, "the range holds more than %d node reports: query a shorter range or a single destination", maxMetricsScan)
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading metrics: %v", err)
	}
	if sc.destination != "" && !q.aggregate {
		if _, ok := buckets[resourcename.Destination(sc.project, sc.destination)]; !ok {
			buckets[resourcename.Destination(sc.project, sc.destination)] = make([]bucket, points)
		}
	}
	if q.aggregate {
		if _, ok := buckets[""]; !ok {
			buckets[""] = make([]bucket, points)
		}
	}
	resp := &hogwirev1.QueryMetricsResponse{Interval: iv}
	dests := make([]string, 0, len(buckets))
	for d := range buckets {
		dests = append(dests, d)
	}
	slices.Sort(dests)
	for _, d := range dests {
		bs := buckets[d]
		for _, name := range names {
			series := &hogwirev1.MetricSeries{Destination: d, Metric: name, Points: make([]*hogwirev1.MetricPoint, points)}
			for i := range bs {
				series.Points[i] = &hogwirev1.MetricPoint{Time: timestamppb.New(first.Add(time.Duration(i) * width)), Value: bs[i].value(name)}
			}
			resp.Series = append(resp.Series, series)
		}
	}
	return resp, nil
}

type metricsQuery struct {
	first     time.Time
	width     time.Duration
	points    int
	aggregate bool
}

// bucket is one interval of one series: summed counters and merged
// durations.
type bucket struct {
	counters map[string]int64
	duration histogram
}

func (b *bucket) value(name string) float64 {
	if q, ok := percentileOf[name]; ok {
		return b.duration.quantile(q)
	}
	return float64(b.counters[name])
}

// readMetrics sums the reports stored for the range, keyed by destination
// ("" when aggregated).
func (t *telemetryStore) readMetrics(ctx context.Context, sc telemetryScope, q metricsQuery) (map[string][]bucket, error) {
	last := q.first.Add(time.Duration(q.points) * q.width)
	// Reports are stored a second or so after the minute they count, later
	// after a node reconnects.
	since := q.first.Add(-storeSlack)
	until := last.Add(storeSlack)
	out := map[string][]bucket{}
	n, err := t.scan(ctx, metricsStream, jetstream.ConsumerConfig{
		FilterSubject: sc.subject(metricsSubject), DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	}, maxMetricsScan, func(m jetstream.Msg, md *jetstream.MsgMetadata) bool {
		if md.Timestamp.After(until) {
			return false
		}
		dm := &hogwirev1.DestinationMetrics{}
		if proto.Unmarshal(m.Data(), dm) != nil || dm.GetMinute() == nil {
			return true
		}
		at := dm.GetMinute().AsTime()
		if at.Before(q.first) || !at.Before(last) {
			return true
		}
		key := dm.GetDestination()
		if q.aggregate {
			key = ""
		}
		bs := out[key]
		if bs == nil {
			bs = make([]bucket, q.points)
			out[key] = bs
		}
		b := &bs[int(at.Sub(q.first)/q.width)]
		for name, c := range dm.GetCounters() {
			if b.counters == nil {
				b.counters = map[string]int64{}
			}
			b.counters[name] += c
		}
		b.duration.add(dm.GetDuration())
		return true
	})
	if err != nil {
		return nil, err
	}
	if n >= maxMetricsScan {
		return nil, errScanLimit
	}
	return out, nil
}

// histogram merges reported histograms. Reports with other bounds than the
// first are folded in by each bucket's upper bound, which is exact when
// nodes share bounds (they do unless configured apart).
type histogram struct {
	bounds []float64
	counts []uint64
	count  uint64
}

func (h *histogram) add(m *hogwirev1.Histogram) {
	if m == nil || len(m.GetCounts()) != len(m.GetBoundsMs())+1 {
		return
	}
	if h.counts == nil {
		h.bounds = slices.Clone(m.GetBoundsMs())
		h.counts = make([]uint64, len(h.bounds)+1)
	}
	same := slices.Equal(h.bounds, m.GetBoundsMs())
	for i, c := range m.GetCounts() {
		j := i
		if !same {
			if i == len(m.GetBoundsMs()) {
				j = len(h.bounds)
			} else {
				j = sort.SearchFloat64s(h.bounds, m.GetBoundsMs()[i])
			}
		}
		h.counts[j] += c
		h.count += c
	}
}

// quantile interpolates linearly inside the bucket holding rank q·count;
// in the unbounded last bucket it answers the last bound.
func (h *histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return 0
	}
	rank := q * float64(h.count)
	var cum float64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			lower := 0.0
			if i > 0 {
				lower = h.bounds[i-1]
			}
			if i == len(h.bounds) {
				return lower
			}
			return lower + (h.bounds[i]-lower)*(rank-cum)/float64(c)
		}
		cum += float64(c)
	}
	return 0 // not reached: the ranks end at count
}
