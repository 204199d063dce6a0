package telemetry

import (
	"fmt"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// BenchmarkRecordParallel is the data plane's call per invocation, from
// every core at once, with an OpenTelemetry SDK meter provider as a node
// runs with: what recording costs deliveries on every core.
func BenchmarkRecordParallel(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(b.Context())
	r := New(Config{Meters: mp})
	dests := make([]string, 10)
	for i := range dests {
		dests[i] = fmt.Sprintf("projects/p/destinations/d%d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m := [...]Metric{{"succeeded", 1}, {"fetch_attempts", 1}, {"vm_time_us", 40}}
			r.Record(dests[i%len(dests)], m[:], 2*time.Millisecond)
			i++
		}
	})
}
