package telemetry

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// Log entries beyond the buffer are dropped and counted; counters of an
// unsent report go back into the recorder, so nothing is lost but what the
// bound says.
func TestBoundedBufferAndGiveBack(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 30, 0, time.UTC)
	r := New(Config{NodeID: "n1", MaxLogs: 3, Now: func() time.Time { return now }})
	for i := range 5 {
		ok := r.Log(&hogwirev1.LogEntry{Message: string(rune('a' + i))})
		if want := i < 3; ok != want {
			t.Errorf("Log #%d kept = %v, want %v", i, ok, want)
		}
	}
	r.Count("d1", "succeeded", 2)
	r.Duration("d1", 30*time.Millisecond)

	req := r.take()
	if len(req.Logs) != 3 || req.DroppedLogs != 2 || len(req.Metrics) != 1 {
		t.Fatalf("report: %d logs, %d dropped, %d metrics", len(req.Logs), req.DroppedLogs, len(req.Metrics))
	}
	m := req.Metrics[0]
	if m.Counters["succeeded"] != 2 || m.Duration.Count != 1 || !m.Minute.AsTime().Equal(now.Truncate(time.Minute)) {
		t.Errorf("metrics: %v", m)
	}
	if again := r.take(); len(again.Logs)+len(again.Metrics) != 0 || again.DroppedLogs != 0 {
		t.Errorf("take did not empty the recorder: %v", again)
	}

	// The control plane did not take it: it goes back, merged with what
	// came meanwhile, and the log buffer stays bounded.
	r.Count("d1", "succeeded", 1)
	r.Log(&hogwirev1.LogEntry{Message: "new"})
	r.giveBack(req)
	back := r.take()
	if got := back.Metrics[0].Counters["succeeded"]; got != 3 {
		t.Errorf("succeeded after give-back = %d, want 3", got)
	}
	if len(back.Logs) != 3 || back.DroppedLogs != 3 {
		t.Errorf("after give-back: %d logs, %d dropped; want 3 and 3 (2 earlier + 1 that no longer fit)", len(back.Logs), back.DroppedLogs)
	}
	if r.Total("d1", "succeeded") != 3 {
		t.Errorf("Prometheus total = %v, want 3", r.Total("d1", "succeeded"))
	}
}

// Each destination has its own lock: counts recorded from many goroutines
// at once, to several destinations and while reports are taken, all reach
// a report and the totals, none twice.
func TestRecordConcurrentlyWhileTaking(t *testing.T) {
	r := New(Config{NodeID: "n1"})
	dests := []string{"d0", "d1", "d2"}
	const workers, each = 4, 500
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r.Record(dests[(w+i)%len(dests)], []Metric{{"succeeded", 1}, {"vm_time_us", 2}}, time.Millisecond)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	counters := map[[2]string]int64{}
	timed := map[string]uint64{}
	add := func(req *hogwirev1.ReportRequest) {
		for _, m := range req.Metrics {
			for name, n := range m.Counters {
				counters[[2]string{m.Destination, name}] += n
			}
			timed[m.Destination] += m.Duration.Count
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		add(r.take())
	}
	add(r.take())
	var succeeded, vm int64
	var count uint64
	for _, d := range dests {
		succeeded += counters[[2]string{d, "succeeded"}]
		vm += counters[[2]string{d, "vm_time_us"}]
		count += timed[d]
		if got, want := r.Total(d, "succeeded"), float64(counters[[2]string{d, "succeeded"}]); got != want {
			t.Errorf("Total(%s) = %v, reported %v", d, got, want)
		}
	}
	if succeeded != workers*each || vm != 2*workers*each || count != workers*each {
		t.Errorf("reported succeeded %d, vm_time_us %d, timed %d; want %d, %d, %d", succeeded, vm, count, workers*each, 2*workers*each, workers*each)
	}
}

// A report says every counter an invocation added to, even by 0, minute
// by minute; a report given back after the minute turned goes back to its
// own minute; a metric only a given-back report has is not a total.
func TestReportMinutesAndZeroCounts(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 30, 0, time.UTC)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	r := New(Config{Meters: mp, Now: func() time.Time { return now }})
	r.Record("d1", []Metric{{"succeeded", 1}, {"retried", 0}}, -1)
	first := r.take()
	now = now.Add(time.Minute)
	r.Count("d1", "succeeded", 2)
	first.Metrics = append(first.Metrics, &hogwirev1.DestinationMetrics{Destination: "d2", Minute: first.Metrics[0].Minute,
		Counters: map[string]int64{"parked": 3}})
	r.giveBack(first)
	r.Count("d1", "failed", 1)

	got := map[string]map[string]int64{}
	for _, m := range r.take().Metrics {
		got[m.Destination+" "+m.Minute.AsTime().Format("15:04")] = m.Counters
	}
	want := map[string]map[string]int64{
		"d1 10:00": {"succeeded": 1, "retried": 0},
		"d1 10:01": {"succeeded": 2, "failed": 1},
		"d2 10:00": {"parked": 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reports = %v, want %v", got, want)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	events := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "hogwire.destination.events" {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				d, _ := p.Attributes.Value(attribute.Key("destination"))
				n, _ := p.Attributes.Value(attribute.Key("metric"))
				events[d.AsString()+" "+n.AsString()] = p.Value
			}
		}
	}
	if want := map[string]int64{"d1 succeeded": 3, "d1 retried": 0, "d1 failed": 1}; !reflect.DeepEqual(events, want) {
		t.Errorf("events = %v, want %v", events, want)
	}
}

// minuteOf agrees with Truncate, on either side of 1970 and of a minute.
func TestMinuteOf(t *testing.T) {
	for _, tm := range []time.Time{
		time.Unix(0, 0), time.Unix(59, 999), time.Unix(60, 0), time.Unix(-1, 0), time.Unix(-60, 0), time.Unix(-61, 5),
		time.Date(2026, 12, 7, 1, 59, 59, 999999999, time.UTC), time.Date(2026, 12, 7, 2, 0, 0, 0, time.FixedZone("x", 5*3600+1800)),
		time.Now(),
	} {
		if got, want := minuteOf(tm), tm.Truncate(time.Minute).Unix(); got != want {
			t.Errorf("minuteOf(%v) = %d, want %d", tm, got, want)
		}
	}
}

// A destination's handle records into the same counts, minutes and
// duration histogram as calls by name.
func TestDestHandle(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 30, 0, time.UTC)
	r := New(Config{NodeID: "n1", Now: func() time.Time { return now }})
	d := r.Dest("d1")
	d.Record([]Metric{{"succeeded", 1}, {"fetch_attempts", 2}}, 30*time.Millisecond)
	d.Count("succeeded", 1)
	r.Record("d1", []Metric{{"succeeded", 1}}, 3*time.Millisecond)
	d.Record(nil, -1)
	// Counts for a moment of the previous minute go to its bucket; a zero
	// time is now.
	d.RecordAt(now.Add(-time.Minute), []Metric{{"succeeded", 5}}, time.Millisecond)
	d.RecordAt(time.Time{}, []Metric{{"failed", 1}}, -1)

	req := r.take()
	if len(req.Metrics) != 2 {
		t.Fatalf("report of %d destination-minutes, want 2: %v", len(req.Metrics), req.Metrics)
	}
	if req.Metrics[0].Minute.AsTime().After(req.Metrics[1].Minute.AsTime()) {
		req.Metrics[0], req.Metrics[1] = req.Metrics[1], req.Metrics[0]
	}
	if m := req.Metrics[0]; !m.Minute.AsTime().Equal(now.Add(-time.Minute).Truncate(time.Minute)) || m.Counters["succeeded"] != 5 || m.Duration.Count != 1 {
		t.Errorf("earlier minute: %v", m)
	}
	req.Metrics = req.Metrics[1:]
	if len(req.Metrics) != 1 {
		t.Fatalf("report of %d destination-minutes, want 1: %v", len(req.Metrics), req.Metrics)
	}
	m := req.Metrics[0]
	if m.Destination != "d1" || m.Counters["succeeded"] != 3 || m.Counters["fetch_attempts"] != 2 || m.Counters["failed"] != 1 || m.Duration.Count != 2 || m.Duration.SumMs != 33 ||
		!m.Minute.AsTime().Equal(now.Truncate(time.Minute)) {
		t.Errorf("metrics: %v", m)
	}
	if r.Total("d1", "succeeded") != 8 || r.Total("d1", "fetch_attempts") != 2 {
		t.Errorf("totals: succeeded %v, fetch_attempts %v; want 8 and 2", r.Total("d1", "succeeded"), r.Total("d1", "fetch_attempts"))
	}
}
