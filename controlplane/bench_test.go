package controlplane_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
)

// BenchmarkConfigChangeToNode measures the time from an UpdateDestination
// call to the change arriving at a watching node, through a real etcd and
// real gRPC on loopback. It reports the p50 and p99 of that latency.
func BenchmarkConfigChangeToNode(b *testing.B) {
	e := etcdtest.Start(b)
	r := startReplica(b, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(b)
	p := mustProject(b, r, "shop")
	created, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: webhookDestination("hook")})
	if err != nil {
		b.Fatal(err)
	}
	w := watch(b, r, "bench-node", 0)
	if _, err := w.stream.Recv(); err != nil { // snapshot
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want := fmt.Sprint(i)
		start := time.Now()
		if _, err := r.destinations().UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
			Destination: &hogwirev1.Destination{Name: created.Destination.Name, Description: want},
			UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"description"}},
		}); err != nil {
			b.Fatal(err)
		}
		for {
			m, err := w.stream.Recv()
			if err != nil {
				b.Fatal(err)
			}
			if len(m.Destinations) == 1 && m.Destinations[0].Description == want {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
