package executor_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
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

// bodyFetcher keeps the body of every request and answers 200.
type bodyFetcher struct{ bodies []string }

func (f *bodyFetcher) Do(_ context.Context, req fetch.Request, _ fetch.Policy, observe func(fetch.Attempt)) (*fetch.Response, error) {
	f.bodies = append(f.bodies, string(req.Body))
	observe(fetch.Attempt{N: 1, Max: 1, Status: 200})
	return &fetch.Response{Status: 200, Attempts: 1}, nil
}

// attemptURLs keeps the URL of every attempt the Observer is told of.
type attemptURLs struct{ urls []string }

func (*attemptURLs) Transition(_, _ executor.State)                {}
func (*attemptURLs) Log(executor.LogEntry)                         {}
func (o *attemptURLs) Attempt(req *fetch.Request, _ fetch.Attempt) { o.urls = append(o.urls, req.URL) }
func (*attemptURLs) Done(*executor.Result)                         {}

// An invocation that takes a released one's memory renders its dict
// inputs and reports its attempts afresh: the body it sends and the
// request its Observer sees are its own, at every fetch.
func TestReleasedMemoryServesTheNextInvocation(t *testing.T) {
	d := prepare(t, spec{
		hog: `fetch(inputs.url, {'method': 'POST', 'body': inputs.body})
fetch(f'{inputs.url}/again', {'method': 'POST', 'body': inputs.body})`,
		schema: []*hogwirev1.InputSchema{
			{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
			{Key: "body", Type: hogwirev1.InputType_INPUT_TYPE_JSON},
		},
		inputs: map[string]any{"url": "https://hooks.example.com/ingest", "body": map[string]any{"event": "{event.event}", "user": "{event.distinct_id}"}},
	})
	f, o := &bodyFetcher{}, &attemptURLs{}
	opts := executor.Options{SkipFilters: true, Fetcher: f, Observer: o}
	for _, user := range []string{"ann", "bob", "cy"} {
		ev := event(t, nil)
		ev.DistinctId = user
		res := invoke(t, d, ev, opts)
		if res.Status != executor.Succeeded || len(res.Fetches) != 2 {
			t.Fatal(dump(res))
		}
		res.Release()
	}
	want := `{"event":"$pageview","user":"%s"}`
	for i, user := range []string{"ann", "ann", "bob", "bob", "cy", "cy"} {
		if got := f.bodies[i]; got != fmt.Sprintf(want, user) {
			t.Errorf("body #%d = %s, want %s", i, got, fmt.Sprintf(want, user))
		}
		wantURL := "https://hooks.example.com/ingest"
		if i%2 == 1 {
			wantURL += "/again"
		}
		if o.urls[i] != wantURL {
			t.Errorf("attempt #%d of %s, want %s", i, o.urls[i], wantURL)
		}
	}
}
