package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/testport"
)

// `hogwire dev` exports the pipeline metrics the Grafana dashboard
// (charts/hogwire/dashboards) is built on, and the probes, on
// --metrics-addr: ingest by endpoint and status, outcomes apart from
// delivery attempts, in-flight invocations and the event log's lag.
func TestDevExportsPipelineMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout syncBuffer
	done := make(chan error, 1)
	metricsAddr := testport.Addr(t)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", t.TempDir(), "--grpc-addr", "127.0.0.1:0",
			"--http-addr", "127.0.0.1:0", "--metrics-addr", metricsAddr, "--log-level", "error", "--health-off"}, &stdout, io.Discard)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("dev did not stop")
		}
	}()
	re := regexp.MustCompile(`(?s)gRPC API and ingest:\s+(\S+).*HTTP capture API:\s+http://(\S+).*admin token:\s+(hwa_\S+)`)
	var m []string
	deadline := time.Now().Add(time.Minute)
	for m = re.FindStringSubmatch(stdout.String()); m == nil; m = re.FindStringSubmatch(stdout.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("dev printed no addresses:\n%s", stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	grpcAddr, httpAddr, token := m[1], m[2], m[3]

	// The sink fails the first request: one event, two attempts.
	var calls atomic.Int32
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer sink.Close()
	cc, err := rpcclient.Dial(grpcAddr, rpcclient.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	p, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hogwirev1.NewDestinationServiceClient(cc).CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent: "projects/shop", DestinationId: "hook", FromTemplate: "templates/webhook",
		Destination: &hogwirev1.Destination{DisplayName: "Hook", Enabled: true,
			Inputs: map[string]*hogwirev1.InputValue{"url": {Value: structpb.NewStringValue(sink.URL)}}},
	}); err != nil {
		t.Fatal(err)
	}

	scrape := func() string {
		res, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return ""
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	want := []string{
		`hogwire_ingest_events_total{endpoint="/batch",status="accepted"}`,
		`hogwire_ingest_request_size_bytes_total{endpoint="/batch",status="accepted"}`,
		`hogwire_delivery_attempts_total{destination="projects/shop/destinations/hook",result="http_5xx"} 1`,
		`hogwire_invocations_inflight{destination="projects/shop/destinations/hook"} 0`,
		`hogwire_stream_consumer_pending{consumer="dataplane",stream="HOGWIRE_EVENTS"} 0`,
		`hogwire_stream_messages{stream="HOGWIRE_EVENTS"}`,
		`hogwire_destination_events_total{destination="projects/shop/destinations/hook",metric="succeeded"}`,
		`hogwire_destination_duration_seconds_count{destination="projects/shop/destinations/hook"}`,
		`go_goroutines`,
	}
	post := func(body string) int {
		res, err := http.Post("http://"+httpAddr+"/batch", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// The node learns the project's token and the destination from the
	// configuration stream: events are sent one at a time until one
	// reaches the sink (two requests: the 503 and its retry).
	deadline = time.Now().Add(30 * time.Second)
	for calls.Load() < 2 {
		post(`{"api_key":"` + p.Project.CaptureToken + `","batch":[{"event":"a","distinct_id":"u1"}]}`)
		if time.Now().After(deadline) {
			t.Fatal("no event reached the sink")
		}
		time.Sleep(300 * time.Millisecond)
	}
	// Events sent before the node knew the project's token were refused
	// as unauthorized too: the refusal below counts one more.
	const unauthorized = `hogwire_ingest_events_total{endpoint="/batch",status="unauthorized"}`
	refused := max(value(scrape(), unauthorized), 0)
	if code := post(`{"api_key":"phc_nobody","batch":[{"event":"a","distinct_id":"u1"}]}`); code != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d", code)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		got := scrape()
		var missing []string
		for _, l := range want {
			if !strings.Contains(got, l) {
				missing = append(missing, l)
			}
		}
		// The event that met the 503 took two attempts; the outcomes count
		// it once.
		const d = `{destination="projects/shop/destinations/hook",`
		ok, succeeded := value(got, `hogwire_delivery_attempts_total`+d+`result="ok"}`), value(got, `hogwire_invocation_outcomes_total`+d+`outcome="succeeded"}`)
		if v := value(got, unauthorized); v != refused+1 {
			missing = append(missing, fmt.Sprintf("%s %v", unauthorized, refused+1))
		}
		if len(missing) == 0 && succeeded >= 1 && ok == succeeded && value(got, `hogwire_invocation_duration_seconds_count`+d+`outcome="succeeded"}`) == succeeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q\n%s", missing, grep(got, "hogwire_"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for path, code := range map[string]int{"/livez": 200, "/readyz": 200} {
		res, err := http.Get("http://" + metricsAddr + path)
		if err != nil || res.StatusCode != code {
			t.Errorf("GET %s = %v %v, want %d", path, res, err, code)
		}
		if res != nil {
			res.Body.Close()
		}
	}
}

// value is the value of a series in a scrape (-1: absent).
func value(scrape, series string) float64 {
	for _, l := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
