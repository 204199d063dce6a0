package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/hogwire/hogwire/metrics"
)

// BenchmarkInvocation is what the data plane records of one delivery, from
// every core at once, with an OpenTelemetry SDK meter provider as a node
// runs with: in flight up and down, one attempt, one timed outcome.
func BenchmarkInvocation(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(b.Context())
	inv, err := metrics.NewInvocations(mp)
	if err != nil {
		b.Fatal(err)
	}
	dests := make([]string, 10)
	for i := range dests {
		dests[i] = fmt.Sprintf("projects/p/destinations/d%d", i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			d := dests[i%len(dests)]
			inv.Inflight(ctx, d, 1)
			inv.Attempt(ctx, d, metrics.AttemptOK)
			inv.Inflight(ctx, d, -1)
			inv.Outcome(ctx, d, metrics.OutcomeSucceeded, "", 2*time.Millisecond)
			i++
		}
	})
}
