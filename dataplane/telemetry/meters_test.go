package telemetry

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The events counter is a cumulative, monotonic sum per destination and
// metric, as a synchronous counter made it, and the duration histogram
// counts every timed invocation; both keep counting across reports.
func TestMetersCountSinceStart(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	r := New(Config{Meters: mp})
	r.Record("d1", []Metric{{"succeeded", 1}, {"fetch_attempts", 2}}, 3*time.Millisecond)
	r.Record("d2", []Metric{{"failed", 1}}, -1)
	r.Count("d1", "succeeded", 4)

	check := func(want map[[2]string]int64, timed uint64) {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		got := map[[2]string]int64{}
		var count uint64
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch m.Name {
				case "hogwire.destination.events":
					sum := m.Data.(metricdata.Sum[int64])
					if !sum.IsMonotonic || sum.Temporality != metricdata.CumulativeTemporality || m.Unit != "{event}" {
						t.Errorf("events: monotonic %v, temporality %v, unit %q", sum.IsMonotonic, sum.Temporality, m.Unit)
					}
					for _, p := range sum.DataPoints {
						d, _ := p.Attributes.Value(attribute.Key("destination"))
						n, _ := p.Attributes.Value(attribute.Key("metric"))
						got[[2]string{d.AsString(), n.AsString()}] = p.Value
					}
				case "hogwire.destination.duration":
					for _, p := range m.Data.(metricdata.Histogram[float64]).DataPoints {
						count += p.Count
					}
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("events = %v, want %v", got, want)
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("events%v = %d, want %d", k, got[k], n)
			}
		}
		if count != timed {
			t.Errorf("timed invocations = %d, want %d", count, timed)
		}
	}
	check(map[[2]string]int64{{"d1", "succeeded"}: 5, {"d1", "fetch_attempts"}: 2, {"d2", "failed"}: 1}, 1)
	// A report taken (and given back) does not reset the totals.
	r.giveBack(r.take())
	r.Record("d1", []Metric{{"succeeded", 1}}, time.Millisecond)
	check(map[[2]string]int64{{"d1", "succeeded"}: 6, {"d1", "fetch_attempts"}: 2, {"d2", "failed"}: 1}, 2)
}
