package executor_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

// With Park, a fetch that keeps failing suspends the invocation there; the
// suspension survives JSON, and resuming it repeats only that fetch, then
// goes on with the program where it stopped.
func TestParkAndResume(t *testing.T) {
	var first, second atomic.Int32
	var down atomic.Bool
	down.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("/first", func(w http.ResponseWriter, r *http.Request) {
		first.Add(1)
		w.Write([]byte(`{"id":7}`))
	})
	mux.HandleFunc("/second", func(w http.ResponseWriter, r *http.Request) {
		second.Add(1)
		if down.Load() {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	d := prepare(t, spec{hog: `let a := fetch(f'{inputs.url}/first', {'method': 'GET'})
		let b := fetch(f'{inputs.url}/second', {'method': 'POST', 'body': {'id': a.body.id}, 'headers': {'Authorization': inputs.key}})
		if (b.status >= 400) { throw Error(f'failed {b.status}') }
		print(f'done {a.body.id} with {inputs.key}')
		return [a.body.id, b.body.ok]`, inputs: map[string]any{"url": srv.URL, "key": "s3cret"},
		schema: []*hogwirev1.InputSchema{{Key: "key", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true}}})
	opts := executor.Options{Fetcher: loopback(), FetchPolicy: fetch.Policy{MaxRetries: -1}, Park: true, Redact: true}

	res := invoke(t, d, event(t, nil), opts)
	if res.Status != executor.Parked || res.Parked == nil {
		t.Fatalf("%s, want parked", dump(res))
	}
	p := res.Parked
	if p.Status != 429 || p.RetryAfter != 120*time.Second || p.Reason != "HTTP 429" || p.Fetches != 1 {
		t.Fatalf("parked %+v", p)
	}
	stored, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}

	// Still down: it parks again at the same fetch.
	var back executor.Suspended
	if err := json.Unmarshal(stored, &back); err != nil {
		t.Fatal(err)
	}
	opts.Resume = &back
	res = invoke(t, d, event(t, nil), opts)
	if res.Status != executor.Parked || res.Parked.Fetches != 1 || string(res.Parked.State) != string(p.State) {
		t.Fatalf("%s, want parked again at the second fetch", dump(res))
	}

	down.Store(false)
	if err := json.Unmarshal(stored, &back); err != nil {
		t.Fatal(err)
	}
	res = invoke(t, d, event(t, nil), opts)
	if res.Status != executor.Succeeded || vmFormat(res) != "[7, true]" {
		t.Fatalf("%s value %s", dump(res), vmFormat(res))
	}
	if first.Load() != 1 || second.Load() != 3 {
		t.Errorf("first fetched %d times, second %d; want 1 and 3", first.Load(), second.Load())
	}
	if logs := messages(res, 0); len(logs) == 0 || logs[0] != "done 7 with <redacted>" {
		t.Errorf("logs %q, want the secret redacted after resuming", logs)
	}
}

// Without Park, the program gets the failure as before; a Fetcher's
// DeferError parks without a request.
func TestParkOnlyWhenAsked(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	d := prepare(t, spec{hog: `return fetch(inputs.url).status`, inputs: map[string]any{"url": srv.URL}})
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: loopback(), FetchPolicy: fetch.Policy{MaxRetries: -1}})
	if res.Status != executor.Succeeded || vmFormat(res) != "503" {
		t.Fatalf("%s, want the 503 given to the code", dump(res))
	}
	until := time.Now().Add(time.Hour)
	res = invoke(t, d, event(t, nil), executor.Options{Fetcher: deferring{until}, Park: true})
	if res.Status != executor.Parked || !res.Parked.Deferred.Equal(until) || res.Parked.Reason != "paused" {
		t.Fatalf("%s, want parked by the deferral", dump(res))
	}
	if hits.Load() != 1 {
		t.Errorf("%d requests, want 1", hits.Load())
	}
}

type deferring struct{ until time.Time }

func (d deferring) Do(_ context.Context, _ fetch.Request, _ fetch.Policy, _ func(fetch.Attempt)) (*fetch.Response, error) {
	return nil, &executor.DeferError{Until: d.until, Reason: "paused"}
}

// A Standard Webhooks delivery keeps its webhook-id across a durable
// retry: the attempts before it parks, the attempts of a resumed
// invocation that parks again, and the one that finally lands all carry
// the id of that fetch (the program's second: its first has another),
// and every attempt is signed afresh, as the specification's own Go
// library verifies at the real time.
func TestParkedWebhookKeepsItsID(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a signing secret of 32 bytes ..."))
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ids := map[string][]string{}
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := verifier.Verify(body, r.Header); err != nil {
			t.Errorf("%s attempt %d: %v", r.URL.Path, len(ids[r.URL.Path])+1, err)
		}
		ids[r.URL.Path] = append(ids[r.URL.Path], r.Header.Get("Webhook-Id"))
		if r.URL.Path == "/deliver" && down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	d := prepare(t, spec{hog: `let sign := {'secret_input': 'signing_secret'}
		fetch(f'{inputs.url}/hello', {'method': 'POST', 'body': {'step': 1}, 'standard_webhooks': sign})
		let res := fetch(f'{inputs.url}/deliver', {'method': 'POST', 'body': {'event': event.event}, 'standard_webhooks': sign})
		if (res.status >= 400) { throw Error(f'failed {res.status}') }`,
		inputs: map[string]any{"url": srv.URL, "signing_secret": secret},
		schema: []*hogwirev1.InputSchema{{Key: "signing_secret", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true}}})
	opts := executor.Options{Fetcher: loopback(), FetchPolicy: fetch.Policy{MaxRetries: 1, BackoffBase: time.Millisecond}, Park: true, Redact: true}

	res := invoke(t, d, event(t, nil), opts)
	if res.Status != executor.Parked || res.Parked.Fetches != 1 {
		t.Fatalf("%s, want parked at the second fetch", dump(res))
	}
	stored, err := json.Marshal(res.Parked)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), "webhook-signature") {
		t.Error("the parked request kept a signature; each attempt must sign afresh")
	}
	resume := func() *executor.Result {
		var back executor.Suspended
		if err := json.Unmarshal(stored, &back); err != nil {
			t.Fatal(err)
		}
		opts.Resume = &back
		return invoke(t, d, event(t, nil), opts)
	}
	if res := resume(); res.Status != executor.Parked {
		t.Fatalf("%s, want parked again", dump(res))
	}
	down.Store(false)
	if res := resume(); res.Status != executor.Succeeded {
		t.Fatalf("%s, want delivered", dump(res))
	}

	mu.Lock()
	defer mu.Unlock()
	hello, deliver := ids["/hello"], ids["/deliver"]
	// 2 attempts before parking, 2 in the resumed invocation that parks
	// again, 1 that lands; the first fetch is not repeated.
	if len(hello) != 1 || len(deliver) != 5 {
		t.Fatalf("%d requests to /hello and %d to /deliver, want 1 and 5", len(hello), len(deliver))
	}
	for i, id := range deliver {
		if !strings.HasPrefix(id, "msg_") || id != deliver[0] {
			t.Errorf("attempt %d of the delivery has webhook-id %q, want %q as the first", i+1, id, deliver[0])
		}
	}
	if hello[0] == deliver[0] {
		t.Errorf("the program's two fetches share the webhook-id %q", hello[0])
	}
}
