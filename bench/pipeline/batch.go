package main

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane"
)

// runBatch measures, for each storage and destination count, the events
// per second the webhook template delivers (a request per event) and the
// webhook-batch template delivers (a request per batch), in alternating
// rounds on two stacks started side by side.
func runBatch(cfg config, destList, storageList string) error {
	s, err := startSink()
	if err != nil {
		return err
	}
	defer s.close()
	fmt.Printf("hogwire batch benchmark: %d events per run, batches of %d, %d capture senders, max_concurrency %d, %d rounds (medians), %d CPUs\n\n",
		cfg.events, cfg.batchEvents, cfg.senders, cfg.concurrency, cfg.rounds, runtime.GOMAXPROCS(0))
	fmt.Printf("%-8s %-6s %14s %14s %7s %14s %14s\n", "storage", "dests", "per-event/s", "batched/s", "ratio", "per-event cpu", "batched cpu")
	for _, storage := range strings.Split(storageList, ",") {
		for _, ds := range strings.Split(destList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(ds))
			if err != nil {
				return err
			}
			storage := strings.TrimSpace(storage)
			per, batched, perCPU, batchedCPU, err := measureBatch(s, cfg, storage, n)
			if err != nil {
				return err
			}
			fmt.Printf("%-8s %-6d %14.0f %14.0f %6.2fx %14s %14s\n", storage, n, per, batched, batched/per,
				perCPU.Round(100*time.Nanosecond), batchedCPU.Round(100*time.Nanosecond))
		}
	}
	return nil
}

func measureBatch(s *sinkClient, cfg config, storage string, dests int) (per, batched float64, perCPU, batchedCPU time.Duration, err error) {
	perSt, perToken, stopPer, err := startBench(s, cfg, storage, dests, controlplane.HealthConfig{Off: true})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer stopPer()
	bcfg := cfg
	// The batch leaves full at these rates; max_wait only bounds the tail.
	bcfg.batch = &hogwirev1.BatchDelivery{MaxEvents: int32(cfg.batchEvents), MaxBytes: 8 << 20, MaxWait: durationpb.New(100 * time.Millisecond)}
	batchSt, batchToken, stopBatch, err := startBench(s, bcfg, storage, dests, controlplane.HealthConfig{Off: true})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer stopBatch()

	deliveries := cfg.events * dests
	rate := func(addr, token string) (float64, time.Duration, error) {
		base, err := s.count()
		if err != nil {
			return 0, 0, err
		}
		cpu0 := s.cpuTime()
		start := time.Now()
		if err := sendEvents(addr, token, cfg.events, cfg.senders, 0, cfg); err != nil {
			return 0, 0, err
		}
		if err := s.await(base+int64(deliveries), 5*time.Minute); err != nil {
			return 0, 0, err
		}
		return float64(deliveries) / time.Since(start).Seconds(), (s.cpuTime() - cpu0) / time.Duration(deliveries), nil
	}
	var pers, batcheds, perCPUs, batchedCPUs []float64
	for range cfg.rounds {
		r, c, err := rate(perSt.HTTPAddr, perToken)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		pers, perCPUs = append(pers, r), append(perCPUs, float64(c))
		r, c, err = rate(batchSt.HTTPAddr, batchToken)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		batcheds, batchedCPUs = append(batcheds, r), append(batchedCPUs, float64(c))
	}
	return median(pers), median(batcheds), time.Duration(median(perCPUs)), time.Duration(median(batchedCPUs)), nil
}
