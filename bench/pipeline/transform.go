package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/rpcclient"
)

// runTransform measures, for each storage and in alternating rounds of
// one run, one webhook destination's delivery rate in a project of its
// own (none), in a project that also has one no-op transformation
// ("return event"), and in a project with a second webhook destination
// (two destinations, each event delivered twice). From the three it
// derives the cost per event of the transformation and of a destination
// invocation.
func runTransform(cfg config, _, storageList string) error {
	s, err := startSink()
	if err != nil {
		return err
	}
	defer s.close()
	fmt.Printf("hogwire transformation benchmark: %d events per run, %d capture senders, max_concurrency %d, %d rounds (medians), %d CPUs\n",
		cfg.events, cfg.senders, cfg.concurrency, cfg.rounds, runtime.GOMAXPROCS(0))
	fmt.Printf("none: one webhook; +transform: the webhook after a no-op transformation; +destination: two webhooks\n")
	fmt.Printf("cost: extra µs of the node per event, from the rates (1/rate - 1/none)\n\n")
	fmt.Printf("%-8s %12s %12s %14s %10s %10s %12s\n", "storage", "none/s", "+transform/s", "+destination/s", "ratio", "transform", "destination")
	for _, storage := range strings.Split(storageList, ",") {
		storage = strings.TrimSpace(storage)
		none, tr, two, err := measureTransform(s, cfg, storage)
		if err != nil {
			return err
		}
		ct := (1/tr - 1/none) * 1e6
		cd := (1/two - 1/none) * 1e6 // the second delivery of each event
		fmt.Printf("%-8s %12.0f %12.0f %14.0f %9.0f%% %8.1fµs %10.1fµs\n", storage, none, tr, two, 100*tr/none, ct, cd)
	}
	return nil
}

// measureTransform returns the three rates in events delivered per second.
func measureTransform(s *sinkClient, cfg config, storage string) (none, transformed, two float64, err error) {
	st, token, stop, err := startBench(s, cfg, storage, 1, controlplane.HealthConfig{})
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop()
	cc, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{Token: st.AdminToken})
	if err != nil {
		return 0, 0, 0, err
	}
	defer cc.Close()
	ctx := context.Background()
	ds := hogwirev1.NewDestinationServiceClient(cc)
	body, _ := structpb.NewValue(map[string]any{"event": "{event.event}", "user": "{event.distinct_id}", "sent": "{event.properties.sent}"})
	project := func(id string) (*hogwirev1.Project, error) {
		p, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
			ProjectId: id, Project: &hogwirev1.Project{DisplayName: id},
		})
		return p.GetProject(), err
	}
	webhook := func(p *hogwirev1.Project, name string) error {
		_, err := ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
			Parent: p.Name, FromTemplate: "templates/webhook",
			Destination: &hogwirev1.Destination{
				DisplayName: name, Enabled: true,
				Limits: &hogwirev1.ExecutionLimits{MaxConcurrency: int32(cfg.concurrency)},
				Inputs: map[string]*hogwirev1.InputValue{"url": {Value: structpb.NewStringValue(s.hookURL())}, "body": {Value: body}},
			},
		})
		return err
	}
	tp, err := project("transformed")
	if err != nil {
		return 0, 0, 0, err
	}
	if err := webhook(tp, "sink"); err != nil {
		return 0, 0, 0, err
	}
	if _, err := ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: tp.Name, Destination: &hogwirev1.Destination{
		DisplayName: "no-op", Enabled: true, Kind: hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION, Hog: "return event",
	}}); err != nil {
		return 0, 0, 0, err
	}
	dp, err := project("two")
	if err != nil {
		return 0, 0, 0, err
	}
	for _, n := range []string{"sink 1", "sink 2"} {
		if err := webhook(dp, n); err != nil {
			return 0, 0, 0, err
		}
	}
	deadline := time.Now().Add(time.Minute)
	for len(st.Node.Syncer().Current().Destinations) < 5 {
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("the node did not receive the destinations")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rate := func(token string, deliveries int64) (float64, error) {
		base, err := s.count()
		if err != nil {
			return 0, err
		}
		start := time.Now()
		if err := sendEvents(st.HTTPAddr, token, cfg.events, cfg.senders, 0, cfg); err != nil {
			return 0, err
		}
		if err := s.await(base+deliveries*int64(cfg.events), 10*time.Minute); err != nil {
			return 0, err
		}
		return float64(cfg.events) / time.Since(start).Seconds(), nil
	}
	var nones, trs, twos []float64
	for range cfg.rounds {
		a, err := rate(token, 1)
		if err != nil {
			return 0, 0, 0, err
		}
		b, err := rate(tp.CaptureToken, 1)
		if err != nil {
			return 0, 0, 0, err
		}
		c, err := rate(dp.CaptureToken, 2)
		if err != nil {
			return 0, 0, 0, err
		}
		nones, trs, twos = append(nones, a), append(trs, b), append(twos, c)
	}
	return median(nones), median(trs), median(twos), nil
}
