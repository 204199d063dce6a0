package fetch

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestPolicyDefaults(t *testing.T) {
	p := Policy{}.withDefaults()
	want := Policy{
		MaxRetries:       3,
		Timeout:          10 * time.Second,
		BackoffBase:      250 * time.Millisecond,
		BackoffCap:       10 * time.Second,
		MaxRetryAfter:    30 * time.Second,
		MaxResponseBytes: 1 << 20,
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("defaults %+v, want %+v", p, want)
	}
	if got := (Policy{MaxRetries: -1}).withDefaults().MaxRetries; got != 0 {
		t.Fatalf("MaxRetries -1 became %d, want 0", got)
	}
}

func TestBackoffFullJitter(t *testing.T) {
	p := Policy{BackoffBase: 100 * time.Millisecond, BackoffCap: time.Second}.withDefaults()
	for n, ceil := range map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 60: time.Second, 1 << 20: time.Second,
	} {
		seen := map[time.Duration]bool{}
		var top time.Duration
		for range 200 {
			d := p.backoff(n)
			if d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, d, ceil)
			}
			seen[d] = true
			top = max(top, d)
		}
		if len(seen) < 100 || top < ceil/2 {
			t.Errorf("backoff(%d): %d distinct values, max %v; want jitter across [0, %v]", n, len(seen), top, ceil)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"-5", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
		{"99999999999999999", 365 * 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Sunday, 01-Mar-26 12:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"Sun Mar  1 12:00:30 2026", 30 * time.Second, true},       // asctime
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		got, ok := parseRetryAfter(tc.v, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetriableStatus(t *testing.T) {
	for code, want := range map[int]bool{
		200: false, 204: false, 301: false, 302: false, 304: false,
		400: false, 401: false, 403: false, 404: false, 409: false, 422: false,
		408: true, 429: true, 500: true, 501: true, 502: true, 503: true, 504: true, 599: true,
	} {
		if RetriableStatus(code) != want {
			t.Errorf("RetriableStatus(%d) = %v, want %v", code, !want, want)
		}
	}
}
