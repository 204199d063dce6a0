package dataplane

import (
	"errors"
	"testing"
	"time"

	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/invocations"
)

// A record's fetch rows: one per attempt when the attempts line up with
// the fetches, one per fetch otherwise; URLs without query or user info.
func TestRecordFetches(t *testing.T) {
	res := &executor.Result{Fetches: []executor.FetchRecord{
		{Request: &fetch.Request{Method: "POST", URL: "https://user:pw@api.example.com/v1/<redacted>/track?api_key=k"},
			Response: &fetch.Response{Status: 200, Attempts: 3}, Duration: 30 * time.Millisecond},
		{Request: &fetch.Request{Method: "GET", URL: "https://other.example.com/x"}, Err: fetch.ErrTimeout, Duration: time.Second},
	}}
	inv := &invocation{dest: &destination{}, tally: &tally{attempts: []attempt{
		{n: 1, status: 503, dur: 10 * time.Millisecond}, {n: 2, err: "timeout", dur: 5 * time.Millisecond}, {n: 3, status: 200, dur: time.Millisecond},
		{n: 1, err: "timeout", dur: time.Second},
	}}}
	want := []invocations.Fetch{
		{Method: "POST", URL: "https://api.example.com/v1/%3Credacted%3E/track", Status: 503, Duration: 10 * time.Millisecond, Attempt: 1},
		{Method: "POST", URL: "https://api.example.com/v1/%3Credacted%3E/track", Error: "timeout", Duration: 5 * time.Millisecond, Attempt: 2},
		{Method: "POST", URL: "https://api.example.com/v1/%3Credacted%3E/track", Status: 200, Duration: time.Millisecond, Attempt: 3},
		{Method: "GET", URL: "https://other.example.com/x", Error: "timeout", Duration: time.Second, Attempt: 1},
	}
	if got := inv.fetches(res); !equalFetches(got, want) {
		t.Errorf("per attempt:\n got %+v\nwant %+v", got, want)
	}
	// Attempts that do not line up (a resumed fetch): one row per fetch.
	inv.tally.attempts = inv.tally.attempts[1:]
	want = []invocations.Fetch{
		{Method: "POST", URL: "https://api.example.com/v1/%3Credacted%3E/track", Status: 200, Duration: 30 * time.Millisecond, Attempt: 3},
		{Method: "GET", URL: "https://other.example.com/x", Error: "timeout", Duration: time.Second, Attempt: 1},
	}
	if got := inv.fetches(res); !equalFetches(got, want) {
		t.Errorf("per fetch:\n got %+v\nwant %+v", got, want)
	}
}

func equalFetches(a, b []invocations.Fetch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRecordKinds(t *testing.T) {
	resp := func(status int) []executor.FetchRecord {
		return []executor.FetchRecord{{Response: &fetch.Response{Status: status}}}
	}
	for _, c := range []struct {
		res  executor.Result
		want string
	}{
		{executor.Result{Status: executor.Failed, ErrorKind: executor.KindHogError, Fetches: resp(404)}, "http_4xx"},
		{executor.Result{Status: executor.Failed, ErrorKind: executor.KindFetchFailed, Fetches: resp(502)}, "http_5xx"},
		{executor.Result{Status: executor.Failed, ErrorKind: executor.KindHogError, Fetches: resp(200)}, "hog_error"},
		{executor.Result{Status: executor.Failed, ErrorKind: executor.KindFetchTimeout, Fetches: resp(503)}, "fetch_timeout"},
		{executor.Result{Status: executor.Failed, ErrorKind: executor.KindSteps}, "steps"},
		{executor.Result{Status: executor.InputsFailed, ErrorKind: executor.KindInputs}, "inputs"},
		{executor.Result{Status: executor.InputsFailed}, "inputs_failed"},
	} {
		if got := recordKind(&c.res); got != c.want {
			t.Errorf("%+v: %s, want %s", c.res, got, c.want)
		}
	}
	for _, c := range []struct {
		s    *executor.Suspended
		why  string
		want string
	}{
		{nil, quarantineCause, "quarantined"},
		{nil, "paused by Retry-After", "paused"},
		{&executor.Suspended{Status: 429}, "HTTP 429", "http_429"},
		{&executor.Suspended{Status: 503}, "HTTP 503", "http_5xx"},
		{&executor.Suspended{Reason: "a timeout"}, "a timeout", "fetch_timeout"},
		{&executor.Suspended{Reason: "a connection error"}, "a connection error", "fetch_connection"},
		{&executor.Suspended{Deferred: time.Now()}, "paused", "paused"},
	} {
		if got := parkKind(c.s, c.why); got != c.want {
			t.Errorf("%+v %q: %s, want %s", c.s, c.why, got, c.want)
		}
	}
	if attemptError(errors.Join(fetch.ErrEgressDenied)) != "egress_refused" || attemptError(nil) != "" || attemptError(errors.New("x")) != "connection" {
		t.Error("attemptError")
	}
}

// A destination remembers the last URL its records showed: whatever the
// order its URLs come in, each is shown as safeURL shows it.
func TestDestinationSafeURL(t *testing.T) {
	var d destination
	for _, raw := range []string{"https://u:p@a.example/x?k=1", "https://u:p@a.example/x?k=1", "https://b.example/<y>",
		"https://u:p@a.example/x?k=1", "://bad", "://bad", "https://b.example/<y>"} {
		if got, want := d.safeURL(raw), safeURL(raw); got != want {
			t.Errorf("safeURL(%q) = %q, want %q", raw, got, want)
		}
	}
	if got := d.safeURL("https://u:p@a.example/x?k=1"); got != "https://a.example/x" {
		t.Errorf("safeURL kept the query or user info: %q", got)
	}
}
