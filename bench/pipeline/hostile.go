package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/rpcclient"
)

// runHostile measures, for each storage and destination count, the
// webhook destinations beside an infinite loop against their figures
// alone.
func runHostile(cfg config, destList, storageList string) error {
	s, err := startSink()
	if err != nil {
		return err
	}
	defer s.close()
	fmt.Printf("hogwire isolation benchmark: %d events per run, %d capture senders, max_concurrency %d, %d rounds (medians), %d CPUs\n",
		cfg.events, cfg.senders, cfg.concurrency, cfg.rounds, runtime.GOMAXPROCS(0))
	fmt.Printf("beside: the same project also has a destination running `while (true) {}` on every event (health manager off)\n\n")
	fmt.Printf("%-8s %-6s %12s %12s %7s %10s %10s %7s\n", "storage", "dests", "alone/s", "beside/s", "ratio", "p99 alone", "p99 beside", "ratio")
	for _, storage := range strings.Split(storageList, ",") {
		for _, ds := range strings.Split(destList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(ds))
			if err != nil {
				return err
			}
			r, err := measureHostile(s, cfg, strings.TrimSpace(storage), n)
			if err != nil {
				return err
			}
			fmt.Printf("%-8s %-6d %12.0f %12.0f %6.0f%% %10v %10v %6.1fx\n", storage, n, r.alone, r.beside, 100*r.beside/r.alone,
				r.p99Alone.Round(10*time.Microsecond), r.p99Beside.Round(10*time.Microsecond), float64(r.p99Beside)/float64(r.p99Alone))
		}
	}
	return nil
}

type hostileResult struct {
	alone, beside       float64
	p99Alone, p99Beside time.Duration
}

func measureHostile(s *sinkClient, cfg config, storage string, dests int) (hostileResult, error) {
	var r hostileResult
	ctx := context.Background()
	st, token, stop, err := startBench(s, cfg, storage, dests, controlplane.HealthConfig{Off: true})
	if err != nil {
		return r, err
	}
	defer stop()
	cc, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{Token: st.AdminToken})
	if err != nil {
		return r, err
	}
	defer cc.Close()
	ds := hogwirev1.NewDestinationServiceClient(cc)
	loop, err := ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent:      "projects/bench",
		Destination: &hogwirev1.Destination{DisplayName: "infinite loop", Hog: "while (true) { }", Enabled: false},
	})
	if err != nil {
		return r, err
	}
	toggle := func(on bool) error {
		d := loop.Destination
		d.Enabled = on
		resp, err := ds.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{Destination: d, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}})
		if err != nil {
			return err
		}
		loop.Destination = resp.Destination
		deadline := time.Now().Add(10 * time.Second)
		for {
			cur := st.Node.Syncer().Current().Destinations[d.Name]
			if cur != nil && cur.Enabled == on {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the node did not see the loop destination enabled=%v", on)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	deliveries := cfg.events * dests
	rate := func() (float64, error) {
		base, err := s.count()
		if err != nil {
			return 0, err
		}
		start := time.Now()
		if err := sendEvents(st.HTTPAddr, token, cfg.events, cfg.senders, 0, cfg); err != nil {
			return 0, err
		}
		if err := s.await(base+int64(deliveries), 5*time.Minute); err != nil {
			return 0, err
		}
		return float64(deliveries) / time.Since(start).Seconds(), nil
	}
	p99 := func(eventRate float64) (time.Duration, error) {
		base, err := s.count()
		if err != nil {
			return 0, err
		}
		if err := s.post("/latency/start"); err != nil {
			return 0, err
		}
		if err := sendEvents(st.HTTPAddr, token, cfg.latencyEvents, 1, eventRate, cfg); err != nil {
			return 0, err
		}
		if err := s.await(base+int64(cfg.latencyEvents*dests), time.Minute); err != nil {
			return 0, err
		}
		lat, err := s.latencies()
		if err != nil || len(lat) == 0 {
			return 0, err
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100], nil
	}

	var alone, beside, aloneP99, besideP99 []float64
	for range cfg.rounds {
		if err := toggle(false); err != nil {
			return r, err
		}
		a, err := rate()
		if err != nil {
			return r, err
		}
		if err := toggle(true); err != nil {
			return r, err
		}
		b, err := rate()
		if err != nil {
			return r, err
		}
		alone, beside = append(alone, a), append(beside, b)
	}
	// Latency at half the rate alone, alone then beside the loop.
	half := median(alone) / float64(dests) / 2
	for range cfg.rounds {
		if err := toggle(false); err != nil {
			return r, err
		}
		a, err := p99(half)
		if err != nil {
			return r, err
		}
		if err := toggle(true); err != nil {
			return r, err
		}
		b, err := p99(half)
		if err != nil {
			return r, err
		}
		aloneP99, besideP99 = append(aloneP99, float64(a)), append(besideP99, float64(b))

	}
	r.alone, r.beside = median(alone), median(beside)
	r.p99Alone, r.p99Beside = time.Duration(median(aloneP99)), time.Duration(median(besideP99))
	return r, nil
}
