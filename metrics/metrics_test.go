package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hogwire/hogwire/embednats/natstest"
	"github.com/hogwire/hogwire/metrics"
	"github.com/hogwire/hogwire/tracing"
)

func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func meters(t *testing.T) (*tracing.Meters, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	mp, err := tracing.NewMeters(context.Background(), func(string) string { return "" }, "test", reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return mp, reg
}

func wantLines(t *testing.T, got string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(got, l) {
			t.Errorf("scrape lacks %q", l)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", got)
	}
}

// jetStream starts a real NATS server and returns a JetStream client.
func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// An event that fails twice and then succeeds is one success and three
// attempts; in-flight invocations go up and back down.
func TestOutcomesSeparateFromAttempts(t *testing.T) {
	mp, reg := meters(t)
	inv, err := metrics.NewInvocations(mp)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const d = "projects/p/destinations/hook"
	done := inv.Start(ctx, d)
	mid := scrape(t, reg)
	for _, status := range []int{503, 503, 200} {
		inv.Attempt(ctx, d, metrics.AttemptResult(status, false))
	}
	done()
	inv.Outcome(ctx, d, metrics.OutcomeSucceeded, "", 120*time.Millisecond)
	inv.Outcome(ctx, d, metrics.OutcomeFiltered, "", 0)
	inv.Outcome(ctx, d, metrics.OutcomeFailed, metrics.ReasonHogError, time.Millisecond)

	wantLines(t, mid, `hogwire_invocations_inflight{destination="projects/p/destinations/hook"} 1`)
	wantLines(t, scrape(t, reg),
		`hogwire_invocations_inflight{destination="projects/p/destinations/hook"} 0`,
		`hogwire_delivery_attempts_total{destination="projects/p/destinations/hook",result="http_5xx"} 2`,
		`hogwire_delivery_attempts_total{destination="projects/p/destinations/hook",result="ok"} 1`,
		`hogwire_invocation_outcomes_total{destination="projects/p/destinations/hook",outcome="succeeded"} 1`,
		`hogwire_invocation_outcomes_total{destination="projects/p/destinations/hook",outcome="filtered"} 1`,
		`hogwire_invocation_outcomes_total{destination="projects/p/destinations/hook",outcome="failed",reason="hog_error"} 1`,
		`hogwire_invocation_duration_seconds_count{destination="projects/p/destinations/hook",outcome="succeeded"} 1`,
	)
}

// A destination's handle counts into the same series as calls by name,
// and a nil one (of nil Invocations) records nothing.
func TestDestHandle(t *testing.T) {
	mp, reg := meters(t)
	inv, err := metrics.NewInvocations(mp)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const d = "projects/p/destinations/hook"
	h := inv.Dest(d)
	h.Inflight(1)
	mid := scrape(t, reg)
	h.Attempt(metrics.AttemptOK)
	inv.Attempt(ctx, d, metrics.AttemptOK)
	h.Attempt(metrics.AttemptHTTP5xx)
	h.Inflight(-1)
	h.Outcome(ctx, metrics.OutcomeSucceeded, "", 120*time.Millisecond)
	inv.Outcome(ctx, d, metrics.OutcomeSucceeded, "", 10*time.Millisecond)
	h.Outcomes(ctx, metrics.OutcomeFailed, metrics.ReasonTimeout, 2, time.Millisecond)
	h.Outcomes(ctx, metrics.OutcomeFiltered, "", 0, 0)

	wantLines(t, mid, `hogwire_invocations_inflight{destination="projects/p/destinations/hook"} 1`)
	got := scrape(t, reg)
	wantLines(t, got,
		`hogwire_invocations_inflight{destination="projects/p/destinations/hook"} 0`,
		`hogwire_delivery_attempts_total{destination="projects/p/destinations/hook",result="ok"} 2`,
		`hogwire_delivery_attempts_total{destination="projects/p/destinations/hook",result="http_5xx"} 1`,
		`hogwire_invocation_outcomes_total{destination="projects/p/destinations/hook",outcome="succeeded"} 2`,
		`hogwire_invocation_outcomes_total{destination="projects/p/destinations/hook",outcome="failed",reason="timeout"} 2`,
		`hogwire_invocation_duration_seconds_count{destination="projects/p/destinations/hook",outcome="succeeded"} 2`,
		`hogwire_invocation_duration_seconds_count{destination="projects/p/destinations/hook",outcome="failed"} 1`,
	)
	if strings.Contains(got, `outcome="filtered"`) {
		t.Error("Outcomes of 0 events made a series")
	}

	var none *metrics.Invocations
	if h := none.Dest(d); h != nil {
		t.Fatalf("Dest of nil Invocations = %v, want nil", h)
	}
	var nh *metrics.Dest
	nh.Inflight(1)
	nh.Attempt(metrics.AttemptOK)
	nh.Outcome(ctx, metrics.OutcomeSucceeded, "", time.Millisecond)
}

func TestIngestByEndpointAndStatus(t *testing.T) {
	mp, reg := meters(t)
	in, err := metrics.NewIngest(mp)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in.Record(ctx, "/batch/", metrics.StatusAccepted, 100, 20000)
	in.Record(ctx, "/batch/", metrics.StatusAccepted, 50, 10000)
	in.Record(ctx, "/e/", metrics.StatusInvalid, 1, 300)
	wantLines(t, scrape(t, reg),
		`hogwire_ingest_events_total{endpoint="/batch/",status="accepted"} 150`,
		`hogwire_ingest_events_total{endpoint="/e/",status="invalid"} 1`,
		`hogwire_ingest_request_size_bytes_total{endpoint="/batch/",status="accepted"} 30000`,
	)
}

// Lag and pending come from the real JetStream consumer state.
func TestStreamLagAndPendingPerConsumer(t *testing.T) {
	js := jetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"ev.>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := js.Publish(ctx, "ev.x", []byte("e")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "nodes", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(3)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range batch.Messages() {
		n++ // received, not acknowledged
	}
	if n != 3 {
		t.Fatalf("fetched %d", n)
	}

	mp, reg := meters(t)
	reg2, err := metrics.ObserveStreams(mp, js, slog.New(slog.DiscardHandler), "EVENTS", "NOT_YET_MADE")
	if err != nil {
		t.Fatal(err)
	}
	defer reg2.Unregister()
	wantLines(t, scrape(t, reg),
		`hogwire_stream_consumer_pending{consumer="nodes",stream="EVENTS"} 7`,
		`hogwire_stream_consumer_ack_pending{consumer="nodes",stream="EVENTS"} 3`,
		`hogwire_stream_messages{stream="EVENTS"} 10`,
	)
}

// Every hogwire_* series the Grafana dashboard queries is one these
// instruments produce, under that exact name.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "charts", "hogwire", "dashboards", "hogwire.json"))
	if err != nil {
		t.Fatal(err)
	}
	mp, reg := meters(t)
	ctx := context.Background()
	in, _ := metrics.NewIngest(mp)
	in.Record(ctx, "/batch/", metrics.StatusAccepted, 1, 1)
	inv, _ := metrics.NewInvocations(mp)
	inv.Start(ctx, "d")()
	inv.Attempt(ctx, "d", metrics.AttemptOK)
	inv.Outcome(ctx, "d", metrics.OutcomeSucceeded, "", time.Millisecond)

	js := jetStream(t)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c"}); err != nil {
		t.Fatal(err)
	}
	r, err := metrics.ObserveStreams(mp, js, nil, "S")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Unregister()

	got := scrape(t, reg)
	names := regexp.MustCompile(`hogwire_[a-z_]+`).FindAllString(string(b), -1)
	if len(names) < 10 {
		t.Fatalf("only %d metric references in the dashboard", len(names))
	}
	for _, n := range names {
		if !regexp.MustCompile(`(?m)^` + n + `[{ ]`).MatchString(got) {
			t.Errorf("the dashboard queries %s, which no instrument produces", n)
		}
	}
}
