package executor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

// A released Result's memory serves a later invocation, which then
// allocates less, and what that invocation reports is its own.
func TestReleaseReusesTheResult(t *testing.T) {
	d := webhookDest(t)
	g := executor.NewEvent(typicalEvent(t), project, source)
	opts := nodeOptions()
	ctx := context.Background()
	for range 3 {
		res := d.Invoke(ctx, g, opts)
		if res.Status != executor.Succeeded || len(res.Fetches) != 1 || res.Fetches[0].Request.URL != "https://hooks.example.com/ingest" ||
			res.Fetches[0].Response.Status != 200 || len(res.Logs) != 0 {
			t.Fatal(dump(res))
		}
		res.Release()
	}
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random: allocation counts vary")
	}
	kept := testing.AllocsPerRun(50, func() { d.Invoke(ctx, g, opts) })
	released := testing.AllocsPerRun(50, func() { d.Invoke(ctx, g, opts).Release() })
	if released >= kept {
		t.Errorf("a delivery allocates %v times with its Result released, %v without", released, kept)
	}
}

// A parked Result is not reused when released: what it suspended stays
// as it was.
func TestReleaseKeepsAParkedResult(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	d := prepare(t, spec{hog: `fetch(inputs.url, {'method': 'POST'})`, inputs: map[string]any{"url": srv.URL}})
	opts := executor.Options{Fetcher: loopback(), FetchPolicy: fetch.Policy{MaxRetries: -1}, Park: true}
	res := invoke(t, d, event(t, nil), opts)
	if res.Status != executor.Parked || res.Parked == nil {
		t.Fatalf("%s, want parked", dump(res))
	}
	res.Release()
	// Invocations that would take released memory run meanwhile, and
	// succeed.
	hook, g := webhookDest(t), executor.NewEvent(typicalEvent(t), project, source)
	for range 3 {
		hook.Invoke(context.Background(), g, executor.Options{SkipFilters: true, Fetcher: executor.MockFetcher{}}).Release()
	}
	if res.Status != executor.Parked || res.Parked == nil || res.Parked.Status != http.StatusServiceUnavailable || len(res.Fetches) != 1 {
		t.Fatalf("the parked result changed after Release: %s", dump(res))
	}
}
