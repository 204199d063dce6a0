// Command pipeline measures hogwire end to end: events sent to the capture
// API, stored in JetStream, filtered, run through a webhook destination's
// Hog and delivered by fetch to a sink on loopback, side by side with a
// plain net/http client posting to the same sink in the same run.
//
//	go run ./bench/pipeline -events 20000 -destinations 1,10 -storage memory,file
//
// -persons off,on measures each case with person profiles off and on, side
// by side; every event then also $set's a property of its person (-users
// bounds the distinct ids the events cycle through).
//
// For each storage and destination count it prints deliveries per second
// through hogwire, the raw client's requests per second and their ratio
// (medians over -rounds alternating runs, as the machines here are noisy),
// the ingest-to-delivery latency (p50, p99) at half the measured rate, and
// the CPU time per delivery of the benchmark and sink processes together
// during each side's runs (Linux), which varies less than the rates.
//
//	go run ./bench/pipeline -hostile
//
// measures isolation instead: the webhook destinations' delivery rate and
// latency alone, and beside a destination in the same project whose code
// is an infinite loop (enabled and disabled in alternating rounds of one
// run), with the health manager off so that the loop keeps running.
//
//	go run ./bench/pipeline -outage -events 100000 -destinations 1 -storage memory
//
// measures recovery: the normal delivery rate, then the same events sent
// while the sink answers 429 with Retry-After (the destination is paused
// and every event is parked in JetStream), and the rate at which that
// backlog drains once the sink is back, from its first delivery to its
// last.
//
//	go run ./bench/pipeline -batch 100 -events 20000 -destinations 1 -storage memory
//
// measures batch delivery: events per second delivered by the webhook
// template (a request per event) and by webhook-batch (a request per
// batch of up to -batch events), in alternating rounds of one run.
//
//	go run ./bench/pipeline -nonmatching 2000 -filter name,property -events 20000 -storage memory
//
// measures the cost of destinations that do not match: one destination's
// delivery rate alone, beside its rate in a project that also holds
// -nonmatching destinations whose filters (-filter: event name, property
// equality, the same as a free Hog expression, a free expression calling
// a function) never match the events, in alternating rounds of one run.
//
//	go run ./bench/pipeline -transform -events 20000 -storage memory
//
// measures the cost of a transformation: one destination's delivery rate
// alone, after one no-op transformation, and beside a second destination,
// in alternating rounds of one run, with the cost per event of each.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/dataplane"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/gctune"
	"github.com/hogwire/hogwire/invocations"
	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/tracing"
)

func main() {
	events := flag.Int("events", 20000, "events per measurement")
	dests := flag.String("destinations", "1,10", "destination counts to measure")
	storages := flag.String("storage", "memory,file", "JetStream storage kinds to measure")
	senders := flag.Int("senders", 8, "concurrent capture senders")
	rawWorkers := flag.Int("raw-workers", 64, "raw client workers")
	concurrency := flag.Int("concurrency", 64, "each destination's max_concurrency")
	rounds := flag.Int("rounds", 3, "alternating raw-client and hogwire runs per measurement; the median ratio is reported")
	latencyEvents := flag.Int("latency-events", 2000, "events sent at half rate for the latency figures")
	serveSink := flag.Bool("serve-sink", false, "internal: serve the sink in this process (the benchmark starts itself so)")
	cpuProfile := flag.String("cpuprofile", "", "write CPU profiles of hogwire's throughput runs (not the raw client's) to FILE.<storage>-<dests> (-records-<on|off> added when both are measured)")
	hogSlots := flag.Int("hog-slots", 0, "the node's Hog slots (0: its default)")
	hostile := flag.Bool("hostile", false, "measure the destinations alone and beside an infinite-loop destination, instead of against the raw client")
	personsModes := flag.String("persons", "off", "person profiles off, on, or both side by side (off,on); with on, every event also $set's a property of its person")
	users := flag.Int("users", 0, "distinct ids the events cycle through (0: a new one per event)")
	clientBatches := flag.Bool("client-batches", false, "every capture batch holds one distinct id's events, as a browser SDK sends them (default: a distinct id per event, as a server SDK relaying many users)")
	outage := flag.Bool("outage", false, "measure the drain rate of a parked backlog after an outage beside the normal delivery rate, instead of against the raw client")
	noMetrics := flag.Bool("no-metrics", false, "run the node without its OpenTelemetry and Prometheus metrics (hogwire dev has them)")
	records := flag.String("records", "on", "invocation records on, off, or both side by side (off,on)")
	batch := flag.Int("batch", 0, "measure per-event webhook delivery beside webhook-batch delivery in batches of this many events, instead of against the raw client")
	nonmatching := flag.Int("nonmatching", 0, "measure one destination's rate alone beside its rate in a project with this many destinations whose filters do not match, instead of against the raw client")
	filterKinds := flag.String("filter", "name", "with -nonmatching, the non-matching destinations' filters, shared evenly: name, property, expr (properties.plan = 'p<i>'), exprfn (lower(properties.plan) = 'p<i>', not indexed), exprevent (event.properties.plan = 'p<i>', not indexed) (e.g. name,property)")
	transform := flag.Bool("transform", false, "measure one destination's rate alone beside its rate after one no-op transformation and beside a second destination, instead of against the raw client")
	flag.Parse()
	if *serveSink {
		if err := runSink(); err != nil {
			fmt.Fprintln(os.Stderr, "sink:", err)
			os.Exit(1)
		}
		return
	}
	// The garbage collector as hogwire dev and the dataplane role set it
	// (the raw client, in this process too, runs under the same).
	gc := gctune.Apply(slog.New(slog.NewTextHandler(io.Discard, nil)))
	fmt.Printf("garbage collector: GOGC=%d, memory limit %d MiB (package gctune, as hogwire dev; GOGC and GOMEMLIMIT override)\n", gc.GOGC, gc.MemoryLimit>>20)
	cfg := config{events: *events, senders: *senders, rawWorkers: *rawWorkers, concurrency: *concurrency, rounds: *rounds, latencyEvents: *latencyEvents, cpuProfile: *cpuProfile, hogSlots: *hogSlots, noMetrics: *noMetrics,
		users: *users, clientBatches: *clientBatches, personsModes: *personsModes, personSets: strings.Contains(*personsModes, "on"),
		records: *records != "off", recordsModes: *records}
	runFn := run
	if *hostile {
		runFn = runHostile
	}
	if *outage {
		runFn = runOutage
	}
	if *batch > 0 {
		cfg.batchEvents = *batch
		runFn = runBatch
	}
	if *nonmatching > 0 {
		cfg.nonmatching, cfg.filterKinds = *nonmatching, *filterKinds
		runFn = runNonmatching
	}
	if *transform {
		runFn = runTransform
	}
	if err := runFn(cfg, *dests, *storages); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// profile runs f under a CPU profile written to path, or unprofiled when
// path is empty. It also writes the heap profile before f to path.heap.base
// and after it to path.heap, so that
//
//	go tool pprof -sample_index=alloc_space -base path.heap.base path.heap
//
// shows what f allocated.
func profile(path string, f func() error) error {
	if path == "" {
		return f()
	}
	if err := writeHeap(path + ".heap.base"); err != nil {
		return err
	}
	w, err := os.Create(path)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := pprof.StartCPUProfile(w); err != nil {
		return err
	}
	err = f()
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	return writeHeap(path + ".heap")
}

func writeHeap(path string) error {
	w, err := os.Create(path)
	if err != nil {
		return err
	}
	defer w.Close()
	return pprof.Lookup("allocs").WriteTo(w, 0)
}

// config is one invocation's settings, from the flags.
type config struct {
	events, senders, rawWorkers, concurrency, rounds, latencyEvents int
	hogSlots                                                        int
	noMetrics                                                       bool
	cpuProfile                                                      string
	retry                                                           dataplane.RetrySchedule
	// users is how many distinct ids the events cycle through (0: one per
	// event); personSets adds a $set to every event; persons turns person
	// profiles on; personsModes lists the modes to measure.
	users         int
	clientBatches bool
	personSets    bool
	persons       bool
	personsModes  string
	// records keeps invocation records; recordsModes lists the modes to
	// measure.
	records      bool
	recordsModes string
	// batch, when set, makes the destinations webhook-batch ones with it.
	batch *hogwirev1.BatchDelivery
	// batchEvents is -batch.
	batchEvents int
	// nonmatching and filterKinds are -nonmatching and -filter; plan gives
	// every event the property plan "free", which those filters read.
	nonmatching int
	filterKinds string
	plan        bool
}

func run(cfg config, destList, storageList string) error {
	s, err := startSink()
	if err != nil {
		return err
	}
	defer s.close()
	fmt.Printf("hogwire pipeline benchmark: %d events per run, %d capture senders, max_concurrency %d, %d raw client workers, %d rounds (medians), %d CPUs\n\n",
		cfg.events, cfg.senders, cfg.concurrency, cfg.rawWorkers, cfg.rounds, runtime.GOMAXPROCS(0))
	fmt.Printf("%-8s %-6s %-8s %-8s %14s %14s %7s %10s %10s %12s %12s\n", "storage", "dests", "persons", "records", "hogwire/s", "raw client/s", "ratio", "p50", "p99", "hogwire cpu", "raw cpu")
	for _, storage := range strings.Split(storageList, ",") {
		for _, ds := range strings.Split(destList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(ds))
			if err != nil {
				return err
			}
			for _, mode := range strings.Split(cfg.personsModes, ",") {
				mode = strings.TrimSpace(mode)
				if mode != "on" && mode != "off" {
					return fmt.Errorf("-persons: %q is not on or off", mode)
				}
				cfg.persons = mode == "on"
				for _, rec := range strings.Split(cfg.recordsModes, ",") {
					rec = strings.TrimSpace(rec)
					if rec != "on" && rec != "off" {
						return fmt.Errorf("-records: %q is not on or off", rec)
					}
					cfg.records = rec == "on"
					r, err := measure(s, cfg, strings.TrimSpace(storage), n)
					if err != nil {
						return err
					}
					fmt.Printf("%-8s %-6d %-8s %-8s %14.0f %14.0f %6.0f%% %10v %10v %12v %12v\n", storage, n, mode, rec, r.hogwire, r.raw, 100*r.ratio,
						r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.hogCPU.Round(time.Microsecond), r.rawCPU.Round(time.Microsecond))
					if m := r.stored; m != nil {
						fmt.Printf("  invocation stream messages per delivery: %.4f records, %.4f events, %.4f index\n", m.records, m.events, m.index)
					}
				}
			}
		}
	}
	return nil
}

type result struct {
	hogwire, raw, ratio float64
	// CPU time per delivery of both processes (benchmark and sink): a
	// measure of work that the machine's noise disturbs less than rates.
	hogCPU, rawCPU time.Duration
	p50, p99       time.Duration
	// stored counts the invocation stream's messages by kind (records,
	// events, index) per delivery, when records are on: each costs NATS a
	// store, whatever its size.
	stored *storedMsgs
}

// storedMsgs are messages of the invocation stream per delivery.
type storedMsgs struct{ records, events, index float64 }

func measure(s *sinkClient, cfg config, storage string, dests int) (result, error) {
	events, senders, latencyEvents := cfg.events, cfg.senders, cfg.latencyEvents
	var r result
	st, token, stop, err := startBench(s, cfg, storage, dests, controlplane.HealthConfig{})
	if err != nil {
		return r, err
	}
	defer stop()

	// Rounds alternate the raw client and hogwire so that both see the
	// same machine; the ratio reported is the median of the rounds' ratios.
	deliveries := events * dests
	var raws, hogs, ratios, rawCPU, hogCPU []float64
	for round := range cfg.rounds {
		// Raw client: the same number of deliveries, posted straight to the sink.
		cpu0 := s.cpuTime()
		raw := rawRate(s, deliveries, cfg.rawWorkers)
		cpu1 := s.cpuTime()

		// hogwire: events in batches of 100 to /batch/, deliveries counted at the sink.
		base, err := s.count()
		if err != nil {
			return r, err
		}
		start := time.Now()
		prof := ""
		if round == 0 && cfg.cpuProfile != "" {
			prof = fmt.Sprintf("%s.%s-%d", cfg.cpuProfile, storage, dests)
			if strings.Contains(cfg.recordsModes, ",") {
				rec := "off"
				if cfg.records {
					rec = "on"
				}
				prof += "-records-" + rec
			}
		}
		err = profile(prof, func() error {
			if err := sendEvents(st.HTTPAddr, token, events, senders, 0, cfg); err != nil {
				return err
			}
			return s.await(base+int64(deliveries), 5*time.Minute)
		})
		if err != nil {
			return r, err
		}
		hog := float64(deliveries) / time.Since(start).Seconds()
		cpu2 := s.cpuTime()
		raws, hogs, ratios = append(raws, raw), append(hogs, hog), append(ratios, hog/raw)
		rawCPU = append(rawCPU, float64(cpu1-cpu0)/float64(deliveries))
		hogCPU = append(hogCPU, float64(cpu2-cpu1)/float64(deliveries))
	}
	r.raw, r.hogwire, r.ratio = median(raws), median(hogs), median(ratios)
	r.rawCPU, r.hogCPU = time.Duration(median(rawCPU)), time.Duration(median(hogCPU))

	// Latency at half the measured event rate.
	half := r.hogwire / float64(dests) / 2
	base, err := s.count()
	if err != nil {
		return r, err
	}
	if err := s.post("/latency/start"); err != nil {
		return r, err
	}
	if err := sendEvents(st.HTTPAddr, token, latencyEvents, 1, half, cfg); err != nil {
		return r, err
	}
	if err := s.await(base+int64(latencyEvents*dests), time.Minute); err != nil {
		return r, err
	}
	lat, err := s.latencies()
	if err != nil {
		return r, err
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	if cfg.records {
		if r.stored, err = countStored(st.NATSURL, cfg.rounds*deliveries+latencyEvents*dests); err != nil {
			return r, err
		}
	}
	return r, nil
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// startBench starts a stack in a temporary directory with n webhook
// destinations to the sink, and returns it with the project's capture
// token and a function that stops it.
func startBench(s *sinkClient, cfg config, storage string, n int, health controlplane.HealthConfig) (*devstack.Stack, string, func(), error) {
	dir, err := os.MkdirTemp("", "hogwire-bench-")
	if err != nil {
		return nil, "", nil, err
	}
	dc := devstack.Config{
		DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		EventLog:  eventlog.Config{Memory: storage == "memory"},
		Health:    health,
		HogSlots:  cfg.hogSlots,
		Retry:     cfg.retry,
		Persons:   cfg.persons,
		NoRecords: !cfg.records,
	}
	var meters *tracing.Meters
	if !cfg.noMetrics {
		// As in `hogwire dev`: every instrument registered for scrapes.
		if meters, err = tracing.NewMeters(context.Background(), func(string) string { return "" }, "bench", prometheus.NewRegistry()); err != nil {
			return nil, "", nil, err
		}
		dc.Meters = meters
	}
	st, err := devstack.Start(context.Background(), dc)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st.Close(ctx)
		if meters != nil {
			meters.Shutdown(ctx)
		}
		os.RemoveAll(dir)
	}
	token, err := setup(st, s.hookURL(), n, cfg.concurrency, cfg.batch)
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	return st, token, stop, nil
}

// setup creates a project and n webhook destinations to the sink, each
// allowed concurrency requests in flight; with batch, webhook-batch ones.
func setup(st *devstack.Stack, url string, n, concurrency int, batch *hogwirev1.BatchDelivery) (string, error) {
	cc, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{Token: st.AdminToken})
	if err != nil {
		return "", err
	}
	defer cc.Close()
	ctx := context.Background()
	p, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
		ProjectId: "bench", Project: &hogwirev1.Project{DisplayName: "bench"},
	})
	if err != nil {
		return "", err
	}
	body, _ := structpb.NewValue(map[string]any{"event": "{event.event}", "user": "{event.distinct_id}", "sent": "{event.properties.sent}"})
	template := "templates/webhook"
	if batch != nil {
		template = "templates/webhook-batch"
	}
	for i := range n {
		_, err := hogwirev1.NewDestinationServiceClient(cc).CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
			Parent: p.Project.Name, FromTemplate: template,
			Destination: &hogwirev1.Destination{
				DisplayName: fmt.Sprint("sink ", i), Enabled: true, Batch: batch,
				Limits: &hogwirev1.ExecutionLimits{MaxConcurrency: int32(concurrency)},
				Inputs: map[string]*hogwirev1.InputValue{"url": {Value: structpb.NewStringValue(url)}, "body": {Value: body}},
			},
		})
		if err != nil {
			return "", err
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(st.Node.Syncer().Current().Destinations) < n {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the node did not receive the destinations")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p.Project.CaptureToken, nil
}

// sendEvents posts events to /batch/ in batches of 100 from senders
// goroutines; rate > 0 paces single events at that many per second.
func sendEvents(addr, token string, events, senders int, rate float64, cfg config) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders + 1}}
	batch := 100
	if rate > 0 {
		batch = 1
	}
	jobs := make(chan int)
	errc := make(chan error, senders)
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range jobs {
				var b bytes.Buffer
				fmt.Fprintf(&b, `{"api_key":%q,"batch":[`, token)
				for i := first; i < first+batch && i < events; i++ {
					if i > first {
						b.WriteByte(',')
					}
					user := i
					if cfg.clientBatches {
						user = first
					}
					if cfg.users > 0 {
						user = i % cfg.users
					}
					set := ""
					if cfg.personSets {
						set = fmt.Sprintf(`,"$set":{"seen":%d}`, i)
					}
					if cfg.plan {
						set += `,"plan":"free"`
					}
					fmt.Fprintf(&b, `{"event":"e","distinct_id":"u%d","properties":{"sent":"%d"%s}}`, user, time.Now().UnixNano(), set)
				}
				b.WriteString("]}")
				resp, err := client.Post("http://"+addr+"/batch/", "application/json", &b)
				if err != nil {
					errc <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errc <- fmt.Errorf("capture answered %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
	}
	for first := 0; first < events; first += batch {
		if tick != nil {
			<-tick.C
		}
		select {
		case jobs <- first:
		case err := <-errc:
			close(jobs)
			wg.Wait()
			return err
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// rawRate posts n small JSON bodies to the sink from workers goroutines
// with a keep-alive client and returns requests per second.
func rawRate(s *sinkClient, n, workers int) float64 {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				body := `{"event":"e","user":"u","sent":""}`
				resp, err := client.Post(s.hookURL(), "application/json", strings.NewReader(body))
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// countStored counts the invocation stream's messages of each kind, once
// the writer has had time to flush, per delivery of the deliveries made.
func countStored(natsURL string, deliveries int) (*storedMsgs, error) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	time.Sleep(time.Second) // the writer's last batch
	count := func(filter string) (float64, error) {
		c, err := js.OrderedConsumer(ctx, invocations.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
		if err != nil {
			return 0, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0, err
		}
		return float64(info.NumPending) / float64(deliveries), nil
	}
	var m storedMsgs
	for _, k := range []struct {
		n      *float64
		filter string
	}{{&m.records, "invocations.r.>"}, {&m.events, "invocations.v.>"}, {&m.index, "invocations.x.>"}} {
		if *k.n, err = count(k.filter); err != nil {
			return nil, fmt.Errorf("counting %s: %w", k.filter, err)
		}
	}
	return &m, nil
}
