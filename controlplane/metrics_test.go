package controlplane_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
)

var testBounds = []float64{10, 100, 1000}

func nodeMetrics(dest string, minute time.Time, counters map[string]int64, durations ...uint64) *hogwirev1.DestinationMetrics {
	m := &hogwirev1.DestinationMetrics{Destination: dest, Minute: timestamppb.New(minute), Counters: counters}
	if durations != nil {
		var n uint64
		for _, c := range durations {
			n += c
		}
		m.Duration = &hogwirev1.Histogram{BoundsMs: testBounds, Counts: durations, Count: n}
	}
	return m
}

// seriesValues maps "destination metric" to the series' values.
func seriesValues(resp *hogwirev1.QueryMetricsResponse) map[string][]float64 {
	out := map[string][]float64{}
	for _, s := range resp.Series {
		var vs []float64
		for _, p := range s.Points {
			vs = append(vs, p.Value)
		}
		out[s.Destination+" "+s.Metric] = vs
	}
	return out
}

func TestQueryMetrics(t *testing.T) {
	e := etcdtest.Start(t)
	ns := startNATS(t, t.TempDir())
	r := startTelemetryReplica(t, e.ClientURL(), ns.ClientURL())
	ctx := ctxT(t)
	const d1, d2 = "projects/p/destinations/d1", "projects/p/destinations/d2"
	base := time.Now().Truncate(time.Minute).Add(-3 * time.Minute)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	// Two nodes, each flushing deltas: minute 0 gets 3+2 from n1 and 4
	// from n2; minute 1 is empty for d1; minute 2 gets 5 successes and a
	// failure.
	r.report(t, "n1", nil, []*hogwirev1.DestinationMetrics{
		nodeMetrics(d1, at(0), map[string]int64{"succeeded": 3, "fetch_attempts": 3}, 8, 2, 0, 0),
		nodeMetrics(d2, at(1), map[string]int64{"succeeded": 1}),
	})
	r.report(t, "n2", nil, []*hogwirev1.DestinationMetrics{
		nodeMetrics(d1, at(0), map[string]int64{"succeeded": 4}, 0, 0, 10, 0),
		nodeMetrics(d1, at(2), map[string]int64{"succeeded": 5, "failed": 1, "fetch_failed_5xx": 2}),
		nodeMetrics("projects/q/destinations/d9", at(0), map[string]int64{"succeeded": 100}),
	})
	r.report(t, "n1", nil, []*hogwirev1.DestinationMetrics{
		nodeMetrics(d1, at(0), map[string]int64{"succeeded": 2}),
		// Outside the range asked for below.
		nodeMetrics(d1, at(-2), map[string]int64{"succeeded": 1000}),
	})
	query := func(req *hogwirev1.QueryMetricsRequest) *hogwirev1.QueryMetricsResponse {
		t.Helper()
		resp, err := r.metrics().QueryMetrics(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	rangeReq := func(parent string, metrics ...string) *hogwirev1.QueryMetricsRequest {
		return &hogwirev1.QueryMetricsRequest{Parent: parent, Metrics: metrics, StartTime: timestamppb.New(at(0)), EndTime: timestamppb.New(at(4))}
	}

	resp := query(rangeReq(d1))
	if resp.Interval != hogwirev1.MetricInterval_METRIC_INTERVAL_MINUTE {
		t.Fatalf("interval %v, want minutes for a short range", resp.Interval)
	}
	got := seriesValues(resp)
	// p50: rank 10 of [8 2 10 0] ends the (10,100] bucket; p95 and p99
	// interpolate inside (100,1000].
	want := map[string][]float64{
		"succeeded": {9, 0, 5, 0}, "failed": {0, 0, 1, 0}, "fetch_attempts": {3, 0, 0, 0}, "fetch_failed_5xx": {0, 0, 2, 0},
		"masked": {0, 0, 0, 0}, "duration_p50_ms": {100, 0, 0, 0}, "duration_p95_ms": {910, 0, 0, 0}, "duration_p99_ms": {982, 0, 0, 0},
	}
	for m, w := range want {
		if g := got[d1+" "+m]; !slices.Equal(g, w) {
			t.Errorf("%s: got %v, want %v", m, g, w)
		}
	}
	if len(resp.Series) != 21 { // every metric, dropped (transformations) included
		t.Errorf("%d series, want every metric", len(resp.Series))
	}
	for _, s := range resp.Series {
		for i, p := range s.Points {
			if !p.Time.AsTime().Equal(at(i)) {
				t.Fatalf("%s point %d at %v, want %v", s.Metric, i, p.Time.AsTime(), at(i))
			}
		}
	}

	t.Run("project", func(t *testing.T) {
		got := seriesValues(query(rangeReq("projects/p", "succeeded", "failed")))
		want := map[string][]float64{
			d1 + " succeeded": {9, 0, 5, 0}, d1 + " failed": {0, 0, 1, 0},
			d2 + " succeeded": {0, 1, 0, 0}, d2 + " failed": {0, 0, 0, 0},
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("per destination: got %v, want %v", got, want)
		}
		req := rangeReq("projects/p", "succeeded")
		req.Aggregate = true
		got = seriesValues(query(req))
		if want := (map[string][]float64{" succeeded": {9, 1, 5, 0}}); !reflect.DeepEqual(want, got) {
			t.Fatalf("aggregated: got %v, want %v", got, want)
		}
	})

	t.Run("hours", func(t *testing.T) {
		req := rangeReq(d1, "succeeded")
		req.Interval = hogwirev1.MetricInterval_METRIC_INTERVAL_HOUR
		resp := query(req)
		var sum float64
		for _, p := range resp.Series[0].Points {
			if p.Time.AsTime().Minute() != 0 {
				t.Fatalf("hour point at %v", p.Time.AsTime())
			}
			sum += p.Value
		}
		// Whole intervals are counted: the hour of the start may
		// include the report two minutes before it.
		want := 14.0
		if at(-2).Truncate(time.Hour).Equal(at(0).Truncate(time.Hour)) {
			want += 1000
		}
		if sum != want {
			t.Fatalf("hours sum to %v, want %v", sum, want)
		}
	})

	t.Run("no data", func(t *testing.T) {
		got := seriesValues(query(rangeReq("projects/p/destinations/quiet", "succeeded")))
		if want := (map[string][]float64{"projects/p/destinations/quiet succeeded": {0, 0, 0, 0}}); !reflect.DeepEqual(want, got) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})

	t.Run("default range", func(t *testing.T) {
		now := time.Now().UTC()
		r.report(t, "n1", nil, []*hogwirev1.DestinationMetrics{nodeMetrics(d2, now.Truncate(time.Minute), map[string]int64{"failed": 7})})
		resp := query(&hogwirev1.QueryMetricsRequest{Parent: d2, Metrics: []string{"failed"}})
		ps := resp.Series[0].Points
		if len(ps) < 60 || len(ps) > 61 || ps[len(ps)-1].Value != 7 || ps[0].Time.AsTime().Before(now.Add(-time.Hour-time.Minute)) {
			t.Fatalf("default range: %d points, first at %v, last %v", len(ps), ps[0].Time.AsTime(), ps[len(ps)-1])
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, req := range []*hogwirev1.QueryMetricsRequest{
			{Parent: "p"},
			{Parent: d1, Metrics: []string{"succeded"}},
			{Parent: d1, StartTime: timestamppb.New(at(2)), EndTime: timestamppb.New(at(1))},
			{Parent: d1, Interval: 9},
			{Parent: d1, StartTime: timestamppb.New(at(0).Add(-30 * 24 * time.Hour)), Interval: hogwirev1.MetricInterval_METRIC_INTERVAL_MINUTE},
		} {
			_, err := r.metrics().QueryMetrics(ctx, req)
			assertBadRequest(t, err)
		}
	})
}

// What nodes reported is stored outside the control plane: a replica
// started later answers the same as one that was running, and both agree.
func TestTelemetrySurvivesRestartAndAgreesAcrossReplicas(t *testing.T) {
	e := etcdtest.Start(t)
	ns := startNATS(t, t.TempDir())
	a := startTelemetryReplica(t, e.ClientURL(), ns.ClientURL())
	b := startTelemetryReplica(t, e.ClientURL(), ns.ClientURL())
	ctx := ctxT(t)
	const dest = "projects/p/destinations/d1"
	base := time.Now().Truncate(time.Minute).Add(-2 * time.Minute)
	a.report(t, "n1", sampleLogs(dest, base, 10), []*hogwirev1.DestinationMetrics{
		nodeMetrics(dest, base, map[string]int64{"succeeded": 4}, 1, 2, 3, 0),
	})
	b.report(t, "n2", sampleLogs(dest, base.Add(time.Minute), 3), []*hogwirev1.DestinationMetrics{
		nodeMetrics(dest, base.Add(time.Minute), map[string]int64{"succeeded": 2, "failed": 1}, 0, 3, 0, 0),
	})
	logsReq := &hogwirev1.ListLogEntriesRequest{Parent: "projects/p", PageSize: 1000}
	metricsReq := &hogwirev1.QueryMetricsRequest{Parent: dest, StartTime: timestamppb.New(base), EndTime: timestamppb.New(base.Add(3 * time.Minute))}
	answers := func(r *telemetryReplica) (*hogwirev1.ListLogEntriesResponse, *hogwirev1.QueryMetricsResponse) {
		t.Helper()
		l, err := r.logs().ListLogEntries(ctx, logsReq)
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.metrics().QueryMetrics(ctx, metricsReq)
		if err != nil {
			t.Fatal(err)
		}
		return l, m
	}
	logsA, metricsA := answers(a)
	if len(logsA.Entries) != 13 {
		t.Fatalf("%d entries, want 13", len(logsA.Entries))
	}
	if v := seriesValues(metricsA)[dest+" succeeded"]; !slices.Equal(v, []float64{4, 2, 0}) {
		t.Fatalf("succeeded %v, want [4 2 0]", v)
	}
	same := func(what string, x, y proto.Message) {
		t.Helper()
		if !proto.Equal(x, y) {
			t.Fatalf("%s differ:\n%v\n%v", what, x, y)
		}
	}
	logsB, metricsB := answers(b)
	same("logs of the two replicas", logsA, logsB)
	same("metrics of the two replicas", metricsA, metricsB)

	a.stop()
	b.stop()
	c := startTelemetryReplica(t, e.ClientURL(), ns.ClientURL())
	logsC, metricsC := answers(c)
	same("logs before and after a restart", logsA, logsC)
	same("metrics before and after a restart", metricsA, metricsC)
}

// BenchmarkQueryMetrics queries an hour of one destination that two nodes
// reported every second (7,200 reports), stored among 9 other
// destinations' reports (a minute each).
func BenchmarkQueryMetrics(b *testing.B) {
	e := etcdtest.Start(b)
	ns := startNATS(b, b.TempDir())
	r := startTelemetryReplica(b, e.ClientURL(), ns.ClientURL())
	end := time.Now().Truncate(time.Minute)
	var batch []*hogwirev1.DestinationMetrics
	flush := func() {
		r.report(b, "n", nil, batch)
		batch = nil
	}
	for m := range 60 {
		minute := end.Add(time.Duration(m-60) * time.Minute)
		for s := range 120 {
			batch = append(batch, nodeMetrics("projects/p/destinations/busy", minute, map[string]int64{"succeeded": 10, "fetch_attempts": 10}, uint64(s), 5, 1, 0))
		}
		for d := range 9 {
			batch = append(batch, nodeMetrics(fmt.Sprintf("projects/p/destinations/other%d", d), minute, map[string]int64{"succeeded": 1}))
		}
		flush()
	}
	req := &hogwirev1.QueryMetricsRequest{Parent: "projects/p/destinations/busy", StartTime: timestamppb.New(end.Add(-time.Hour)), EndTime: timestamppb.New(end)}
	ctx := ctxT(b)
	b.ResetTimer()
	for b.Loop() {
		resp, err := r.metrics().QueryMetrics(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.Series) == 0 || resp.Series[0].Points[0].Value != 1200 {
			b.Fatalf("first point %v", resp.Series[0].Points[0])
		}
	}
}
