package main

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

func seriesTotal(resp *hogwirev1.QueryMetricsResponse, dest, metric string) float64 {
	var sum float64
	for _, s := range resp.Series {
		if s.Destination == dest && s.Metric == metric {
			for _, p := range s.Points {
				sum += p.Value
			}
		}
	}
	return sum
}

func TestMetricsCommand(t *testing.T) {
	s := startTelemetryStack(t)
	s.send("signed_up", "oops", "paid")
	const dest = "projects/shop/destinations/greeter"
	resp := &hogwirev1.QueryMetricsResponse{}
	poll(t, func() bool {
		decodeJSON(t, s.ok("metrics", "greeter", "-o", "json"), resp)
		return seriesTotal(resp, dest, "succeeded") == 2 && seriesTotal(resp, dest, "failed") == 1
	})
	if resp.Interval != hogwirev1.MetricInterval_METRIC_INTERVAL_MINUTE || len(resp.Series) < 16 {
		t.Errorf("-o json: interval %v, %d series; want minutes and every metric", resp.Interval, len(resp.Series))
	}
	if seriesTotal(resp, dest, "duration_p50_ms") <= 0 {
		t.Errorf("no duration percentiles: %v", resp.Series)
	}

	table := s.ok("metrics", "greeter", "--since", "10m", "--metric", "succeeded", "--metric", "failed")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if lines[0] != dest || !strings.Contains(lines[1], "TIME (UTC)") || !strings.Contains(lines[1], "SUCCEEDED") || !strings.Contains(lines[1], "FAILED") {
		t.Fatalf("table header:\n%s", table)
	}
	var spark string
	for _, l := range lines {
		if strings.HasPrefix(l, "succeeded ") {
			spark = l
		}
	}
	if !strings.Contains(spark, "█") || !strings.Contains(spark, "total 2") {
		t.Errorf("sparkline of succeeded: %q in\n%s", spark, table)
	}
	// Ten minutes of rows (eleven when the range starts inside a minute),
	// the header and the title, a blank line, two sparklines.
	if n := len(lines); n < 15 || n > 16 {
		t.Errorf("%d lines:\n%s", n, table)
	}

	agg := &hogwirev1.QueryMetricsResponse{}
	decodeJSON(t, s.ok("metrics", "projects/shop", "--aggregate", "--metric", "succeeded", "-o", "json", "--interval", "hour"), agg)
	if len(agg.Series) != 1 || seriesTotal(agg, "", "succeeded") != 2 || agg.Interval != hogwirev1.MetricInterval_METRIC_INTERVAL_HOUR {
		t.Errorf("aggregated by hour: %v", agg)
	}
	if out := s.ok("metrics", "projects/shop", "--aggregate", "--metric", "failed"); !strings.HasPrefix(out, "all destinations\n") {
		t.Errorf("aggregated table:\n%s", out)
	}
	s.fails(codes.InvalidArgument, "metrics", "greeter", "--metric", "sucess")
	if _, err := s.run("metrics", "greeter", "--interval", "week"); err == nil || exitCode(err) != 2 {
		t.Errorf("a bad interval: %v", err)
	}
}

func TestSparkline(t *testing.T) {
	for _, c := range []struct {
		vs    []float64
		width int
		want  string
	}{
		{nil, 10, ""},
		{[]float64{0, 0, 0}, 10, "▁▁▁"},
		{[]float64{0, 1, 7, 14}, 10, "▁▂▅█"},
		// A small value still shows above zero.
		{[]float64{0, 0.01, 100}, 10, "▁▂█"},
		// Squeezed into the width by the largest value of each cell.
		{[]float64{0, 8, 0, 0, 4, 0}, 3, "█▁▅"},
	} {
		if got := sparkline(c.vs, c.width); got != c.want {
			t.Errorf("sparkline(%v, %d) = %q, want %q", c.vs, c.width, got, c.want)
		}
	}
	for v, want := range map[float64]string{0: "0", 42: "42", 12.345: "12.3", 910: "910"} {
		if got := formatMetric(v); got != want {
			t.Errorf("formatMetric(%v) = %q, want %q", v, got, want)
		}
	}
}
