// Command pipeline measures hogwire end to end: events sent to the capture
// API, stored in JetStream, filtered, run through a webhook destination's
// Hog and delivered by fetch to a sink on loopback, side by side with a
// plain net/http client posting to the same sink in the same run.
//
//	go run ./bench/pipeline -events 20000 -destinations 1,10 -storage memory,file
//
// For each storage and destination count it prints deliveries per second
// through hogwire, the raw client's requests per second, their ratio, and
// the ingest-to-delivery latency (p50, p99) at half the measured rate.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/rpcclient"
)

func main() {
	events := flag.Int("events", 20000, "events per measurement")
	dests := flag.String("destinations", "1,10", "destination counts to measure")
	storages := flag.String("storage", "memory,file", "JetStream storage kinds to measure")
	senders := flag.Int("senders", 8, "concurrent capture senders (and raw client workers x8)")
	latencyEvents := flag.Int("latency-events", 2000, "events sent at half rate for the latency figures")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*events, *dests, *storages, *senders, *latencyEvents); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// sink counts deliveries and records latency from the event's sent_ns.
type sink struct {
	srv   *http.Server
	url   string
	count atomic.Int64
	mu    sync.Mutex
	lat   []time.Duration
	track atomic.Bool
}

func newSink() (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + l.Addr().String() + "/hook"}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if s.track.Load() {
			var m struct {
				Sent string `json:"sent"`
			}
			if json.Unmarshal(b, &m) == nil && m.Sent != "" {
				if ns, err := strconv.ParseInt(m.Sent, 10, 64); err == nil {
					d := time.Since(time.Unix(0, ns))
					s.mu.Lock()
					s.lat = append(s.lat, d)
					s.mu.Unlock()
				}
			}
		}
		s.count.Add(1)
		w.WriteHeader(http.StatusOK)
	})}
	go s.srv.Serve(l)
	return s, nil
}

func run(events int, destList, storageList string, senders, latencyEvents int) error {
	s, err := newSink()
	if err != nil {
		return err
	}
	defer s.srv.Close()
	fmt.Printf("hogwire pipeline benchmark: %d events per run, %d senders, GOMAXPROCS=%s\n\n", events, senders, os.Getenv("GOMAXPROCS"))
	fmt.Printf("%-8s %-6s %14s %14s %7s %10s %10s\n", "storage", "dests", "hogwire/s", "raw client/s", "ratio", "p50", "p99")
	for _, storage := range strings.Split(storageList, ",") {
		for _, ds := range strings.Split(destList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(ds))
			if err != nil {
				return err
			}
			r, err := measure(s, strings.TrimSpace(storage), n, events, senders, latencyEvents)
			if err != nil {
				return err
			}
			fmt.Printf("%-8s %-6d %14.0f %14.0f %6.0f%% %10v %10v\n", storage, n, r.hogwire, r.raw, 100*r.hogwire/r.raw,
				r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond))
		}
	}
	return nil
}

type result struct {
	hogwire, raw float64
	p50, p99     time.Duration
}

func measure(s *sink, storage string, dests, events, senders, latencyEvents int) (result, error) {
	var r result
	dir, err := os.MkdirTemp("", "hogwire-bench-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	st, err := devstack.Start(ctx, devstack.Config{
		DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		EventLog: eventlog.Config{Memory: storage == "memory"},
	})
	if err != nil {
		return r, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st.Close(cctx)
	}()
	token, err := setup(st, s.url, dests)
	if err != nil {
		return r, err
	}

	// Raw client: the same number of deliveries, posted straight to the sink.
	deliveries := events * dests
	r.raw = rawRate(s, deliveries, senders*8)

	// hogwire: events in batches of 100 to /batch/, deliveries counted at the sink.
	base := s.count.Load()
	start := time.Now()
	if err := sendEvents(st.HTTPAddr, token, events, senders, 0); err != nil {
		return r, err
	}
	for s.count.Load()-base < int64(deliveries) {
		if time.Since(start) > 5*time.Minute {
			return r, fmt.Errorf("only %d of %d deliveries arrived", s.count.Load()-base, deliveries)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	r.hogwire = float64(deliveries) / elapsed.Seconds()

	// Latency at half the measured event rate.
	half := r.hogwire / float64(dests) / 2
	s.mu.Lock()
	s.lat = s.lat[:0]
	s.mu.Unlock()
	s.track.Store(true)
	base = s.count.Load()
	if err := sendEvents(st.HTTPAddr, token, latencyEvents, 1, half); err != nil {
		return r, err
	}
	deadline := time.Now().Add(time.Minute)
	for s.count.Load()-base < int64(latencyEvents*dests) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	s.track.Store(false)
	s.mu.Lock()
	lat := slices.Clone(s.lat)
	s.mu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r, nil
}

// setup creates a project and n webhook destinations to the sink.
func setup(st *devstack.Stack, url string, n int) (string, error) {
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
	for i := range n {
		_, err := hogwirev1.NewDestinationServiceClient(cc).CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
			Parent: p.Project.Name, FromTemplate: "templates/webhook",
			Destination: &hogwirev1.Destination{
				DisplayName: fmt.Sprint("sink ", i), Enabled: true,
				// As many requests in flight as the raw client has workers.
				Limits: &hogwirev1.ExecutionLimits{MaxConcurrency: 64},
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
func sendEvents(addr, token string, events, senders int, rate float64) error {
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
					fmt.Fprintf(&b, `{"event":"e","distinct_id":"u%d","properties":{"sent":"%d"}}`, i, time.Now().UnixNano())
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
func rawRate(s *sink, n, workers int) float64 {
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
				resp, err := client.Post(s.url, "application/json", strings.NewReader(body))
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
