package executor_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/hogvm/vm"
	"github.com/hogwire/hogwire/testport"
	"google.golang.org/protobuf/types/known/durationpb"
)

func loopback() *fetch.Client { return fetch.New(fetch.Options{AllowCIDRs: fetch.Loopback()}) }

// With fetch's client, a request goes out as the code wrote it, retries
// are reported attempt by attempt, and the code gets the final response.
func TestRealFetch(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"echo":"`+r.Method+" "+r.Header.Get("X-Key")+" "+strings.ReplaceAll(string(b), `"`, `'`)+`"}`)
	}))
	defer srv.Close()
	d := prepare(t, spec{hog: `let r := fetch(inputs.url, {'method': 'patch', 'headers': {'X-Key': 'k1'}, 'body': {'a': 1}})
		return [r.status, r.body.echo]`, inputs: map[string]any{"url": srv.URL}})
	obs := &observer{}
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: loopback(), FetchPolicy: fetch.Policy{BackoffBase: time.Millisecond}, Observer: obs})
	if res.Status != executor.Succeeded || vmFormat(res) != `[202, 'PATCH k1 {\'a\':1}']` {
		t.Fatalf("%s value %s", dump(res), vmFormat(res))
	}
	if len(obs.attempts) != 2 || obs.attempts[0].Status != 502 || !obs.attempts[0].WillRetry || obs.attempts[1].Status != 202 {
		t.Errorf("attempts %+v, want a retried 502 then the 202", obs.attempts)
	}
	if res.Fetches[0].Response.Attempts != 2 || !strings.HasPrefix(messages(res, hogwirev1.LogLevel_LOG_LEVEL_WARN)[0], "retrying after HTTP 502, retry 1/3 in ") {
		t.Errorf("record %+v, logs %q", res.Fetches[0].Response, messages(res, 0))
	}
}

// Failures without a response say what happened, in words, with a kind.
func TestRealFetchErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	closed := "http://" + testport.Addr(t)
	noRetry := fetch.Policy{MaxRetries: -1}
	for _, c := range []struct {
		name   string
		client *fetch.Client
		url    string
		kind   executor.ErrorKind
		words  string
		// Only the timeout case needs a short one: a refused connection
		// on a busy machine can take longer than 50ms to be refused.
		timeout time.Duration
	}{
		{"timeout", loopback(), slow.URL, executor.KindFetchTimeout, "timed out while waiting for the response after 50ms", 50 * time.Millisecond},
		{"refused", loopback(), closed, executor.KindFetchConnection, "could not connect while connecting", 10 * time.Second},
		{"egress guard", fetch.New(fetch.Options{}), slow.URL, executor.KindEgressRefused, "was refused by the egress guard (egress_refused)", 10 * time.Second},
	} {
		d := prepare(t, spec{hog: `fetch(inputs.url, {'method': 'GET'})`, inputs: map[string]any{"url": c.url},
			limits: &hogwirev1.ExecutionLimits{FetchTimeout: durationpb.New(c.timeout)}})
		res := invoke(t, d, event(t, nil), executor.Options{Fetcher: c.client, FetchPolicy: noRetry})
		if res.Status != executor.Failed || res.ErrorKind != c.kind || !strings.HasPrefix(res.Error, "fetch to "+c.url+" "+c.words) {
			t.Errorf("%s: %s kind %s, want %s %q", c.name, dump(res), res.ErrorKind, c.kind, c.words)
		}
	}
}

func vmFormat(res *executor.Result) string { return vm.Format(res.Value) }
