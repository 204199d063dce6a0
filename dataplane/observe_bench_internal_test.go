package dataplane

import (
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/hogwire/hogwire/dataplane/telemetry"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/metrics"
)

// BenchmarkObserveDelivery is what the node records of one successful
// delivery of one fetch, outside the executor: the attempt, then Done, with
// an OpenTelemetry SDK meter provider as a node runs with (no records).
func BenchmarkObserveDelivery(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(b.Context())
	im, err := metrics.NewInvocations(mp)
	if err != nil {
		b.Fatal(err)
	}
	n := &Node{tel: telemetry.New(telemetry.Config{Meters: mp}), im: im}
	dest := &destination{name: "projects/p/destinations/d"}
	req := &fetch.Request{Method: "POST", URL: "https://hooks.example.com/ingest"}
	b.ReportAllocs()
	for b.Loop() {
		inv := &invocation{n: n, dest: dest}
		inv.Attempt(req, fetch.Attempt{N: 1, Max: 3, Status: 200, Duration: time.Millisecond})
		inv.Done(&executor.Result{Status: executor.Succeeded, VMTime: 40 * time.Microsecond, FetchTime: time.Millisecond})
		inv.untally()
	}
}
