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

// runNonmatching measures, for each storage, one webhook destination's
// delivery rate in a project of its own beside its rate in a project that
// also holds cfg.nonmatching destinations whose filters never match the
// events, in alternating rounds of one run. The filter kinds (-filter)
// share the non-matching destinations evenly: name filters on another
// event's name, property filters on plan = 'p<i>' (the events' plan is
// "free"), expr the same test as a free Hog expression (which the index
// reads as it reads the property filter), exprfn lower(properties.plan) =
// 'p<i>', an expression no index can read, which runs on every event.
func runNonmatching(cfg config, _, storageList string) error {
	kinds := strings.Split(cfg.filterKinds, ",")
	for i, k := range kinds {
		kinds[i] = strings.TrimSpace(k)
		switch kinds[i] {
		case "name", "property", "expr", "exprfn", "exprevent":
		default:
			return fmt.Errorf("-filter: %q is not name, property, expr, exprfn or exprevent", k)
		}
	}
	s, err := startSink()
	if err != nil {
		return err
	}
	defer s.close()
	fmt.Printf("hogwire non-matching destinations benchmark: %d events per run, %d capture senders, max_concurrency %d, %d rounds (medians), %d CPUs\n",
		cfg.events, cfg.senders, cfg.concurrency, cfg.rounds, runtime.GOMAXPROCS(0))
	fmt.Printf("alone: the matching destination's project holds nothing else; beside: its project also holds the non-matching destinations\n\n")
	fmt.Printf("%-8s %-16s %-7s %12s %12s %7s\n", "storage", "filters", "others", "alone/s", "beside/s", "ratio")
	for _, storage := range strings.Split(storageList, ",") {
		storage = strings.TrimSpace(storage)
		alone, beside, err := measureNonmatching(s, cfg, storage, kinds)
		if err != nil {
			return err
		}
		fmt.Printf("%-8s %-16s %-7d %12.0f %12.0f %6.0f%%\n", storage, strings.Join(kinds, ","), cfg.nonmatching, alone, beside, 100*beside/alone)
	}
	return nil
}

func measureNonmatching(s *sinkClient, cfg config, storage string, kinds []string) (alone, beside float64, err error) {
	cfg.plan = true
	st, token, stop, err := startBench(s, cfg, storage, 1, controlplane.HealthConfig{})
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	cc, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{Token: st.AdminToken})
	if err != nil {
		return 0, 0, err
	}
	defer cc.Close()
	ctx := context.Background()
	p, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
		ProjectId: "crowd", Project: &hogwirev1.Project{DisplayName: "crowd"},
	})
	if err != nil {
		return 0, 0, err
	}
	ds := hogwirev1.NewDestinationServiceClient(cc)
	body, _ := structpb.NewValue(map[string]any{"event": "{event.event}", "user": "{event.distinct_id}", "sent": "{event.properties.sent}"})
	create := func(name string, f *hogwirev1.Filters) error {
		_, err := ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
			Parent: p.Project.Name, FromTemplate: "templates/webhook",
			Destination: &hogwirev1.Destination{
				DisplayName: name, Enabled: true, Filters: f,
				Limits: &hogwirev1.ExecutionLimits{MaxConcurrency: int32(cfg.concurrency)},
				Inputs: map[string]*hogwirev1.InputValue{"url": {Value: structpb.NewStringValue(s.hookURL())}, "body": {Value: body}},
			},
		})
		return err
	}
	if err := create("matching", &hogwirev1.Filters{}); err != nil {
		return 0, 0, err
	}
	for i := range cfg.nonmatching {
		var f *hogwirev1.Filters
		plan := fmt.Sprint("p", i)
		switch kinds[i%len(kinds)] {
		case "name":
			f = &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: fmt.Sprint("other ", i)}}}
		case "property":
			f = &hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{{
				Key: "plan", Value: structpb.NewStringValue(plan), Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT,
			}}}
		case "expr":
			f = &hogwirev1.Filters{Expression: "properties.plan = '" + plan + "'"}
		case "exprfn":
			f = &hogwirev1.Filters{Expression: "lower(properties.plan) = '" + plan + "'"}
		case "exprevent":
			// The example: in filter globals event is the event's
			// name, so this reads no property and never holds, but no index
			// can tell, and it runs on every event.
			f = &hogwirev1.Filters{Expression: "event.properties.plan = '" + plan + "'"}
		}
		if err := create(fmt.Sprint("other ", i), f); err != nil {
			return 0, 0, err
		}
	}
	want := 2 + cfg.nonmatching
	deadline := time.Now().Add(time.Minute)
	for len(st.Node.Syncer().Current().Destinations) < want {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("the node did not receive the destinations")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rate := func(token string, prof string) (float64, error) {
		base, err := s.count()
		if err != nil {
			return 0, err
		}
		start := time.Now()
		err = profile(prof, func() error {
			if err := sendEvents(st.HTTPAddr, token, cfg.events, cfg.senders, 0, cfg); err != nil {
				return err
			}
			return s.await(base+int64(cfg.events), 10*time.Minute)
		})
		if err != nil {
			return 0, err
		}
		return float64(cfg.events) / time.Since(start).Seconds(), nil
	}
	var alones, besides []float64
	for round := range cfg.rounds {
		a, err := rate(token, "")
		if err != nil {
			return 0, 0, err
		}
		prof := ""
		if round == 0 && cfg.cpuProfile != "" {
			prof = fmt.Sprintf("%s.%s-nonmatching-%d", cfg.cpuProfile, storage, cfg.nonmatching)
		}
		b, err := rate(p.Project.CaptureToken, prof)
		if err != nil {
			return 0, 0, err
		}
		alones, besides = append(alones, a), append(besides, b)
	}
	return median(alones), median(besides), nil
}
