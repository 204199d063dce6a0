package main

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/dataplane"
	"github.com/hogwire/hogwire/devstack"
)

// runOutage measures, for each storage and destination count, the normal
// delivery rate and then, in the same stack, how fast events are parked
// while the sink rate-limits and how fast that backlog drains once it is
// back. The health manager is off: a quarantine would only add waits.
func runOutage(cfg config, destList, storageList string) error {
	s, err := startSink()
	if err != nil {
		return err
	}
	defer s.close()
	// Parked events come back within a second of the end of the pause.
	cfg.retry = dataplane.RetrySchedule{Base: time.Second, Max: time.Second}
	fmt.Printf("hogwire outage benchmark: %d events per run, %d capture senders, max_concurrency %d, %d CPUs\n\n",
		cfg.events, cfg.senders, cfg.concurrency, runtime.GOMAXPROCS(0))
	fmt.Printf("%-8s %-6s %12s %12s %12s %12s\n", "storage", "dests", "normal/s", "parked/s", "drain/s", "drain/normal")
	for _, storage := range strings.Split(storageList, ",") {
		for _, ds := range strings.Split(destList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(ds))
			if err != nil {
				return err
			}
			normal, parked, drain, err := measureOutage(s, cfg, strings.TrimSpace(storage), n)
			if err != nil {
				return err
			}
			fmt.Printf("%-8s %-6d %12.0f %12.0f %12.0f %11.0f%%\n", storage, n, normal, parked, drain, 100*drain/normal)
		}
	}
	return nil
}

func measureOutage(s *sinkClient, cfg config, storage string, dests int) (normal, parked, drain float64, err error) {
	st, token, stop, err := startBench(s, cfg, storage, dests, controlplane.HealthConfig{Off: true})
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop()
	deliveries := cfg.events * dests

	base, err := s.count()
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	if err := sendEvents(st.HTTPAddr, token, cfg.events, cfg.senders, 0, cfg); err != nil {
		return 0, 0, 0, err
	}
	if err := s.await(base+int64(deliveries), 5*time.Minute); err != nil {
		return 0, 0, 0, err
	}
	normal = float64(deliveries) / time.Since(start).Seconds()

	// The outage: every event is parked, behind the destination's pause.
	if err := s.post("/down"); err != nil {
		return 0, 0, 0, err
	}
	start = time.Now()
	if err := sendEvents(st.HTTPAddr, token, cfg.events, cfg.senders, 0, cfg); err != nil {
		return 0, 0, 0, err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for parkedTotal(st) < float64(deliveries) {
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("only %v of %d deliveries parked", parkedTotal(st), deliveries)
		}
		time.Sleep(5 * time.Millisecond)
	}
	parked = float64(deliveries) / time.Since(start).Seconds()

	// Back up: the backlog drains once the pause ends.
	if base, err = s.count(); err != nil {
		return 0, 0, 0, err
	}
	if err := s.post("/up"); err != nil {
		return 0, 0, 0, err
	}
	var first time.Time
	deadline = time.Now().Add(5 * time.Minute)
	for {
		c, err := s.count()
		if err != nil {
			return 0, 0, 0, err
		}
		if c > base && first.IsZero() {
			first = time.Now()
		}
		if c >= base+int64(deliveries) {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("%d of %d parked deliveries drained", c-base, deliveries)
		}
		time.Sleep(5 * time.Millisecond)
	}
	drain = float64(deliveries) / time.Since(first).Seconds()
	return normal, parked, drain, nil
}

// parkedTotal counts the invocations parked, over every destination.
func parkedTotal(st *devstack.Stack) float64 {
	total := 0.0
	for name := range st.Node.Syncer().Current().Destinations {
		total += st.Node.Stat(name, "parked")
	}
	return total
}
