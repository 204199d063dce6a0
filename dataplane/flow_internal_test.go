package dataplane

import (
	"net/http"
	"testing"
	"time"

	"github.com/hogwire/hogwire/fetch"
)

// endWindows runs k windows in which every attempt is a, with the limit
// fully used or not.
func endWindows(f *flow, k int, a fetch.Attempt, full bool) {
	for range k {
		f.mu.Lock()
		f.winSum += a.Duration
		f.winN++
		f.winPressure = f.winPressure || a.Status == http.StatusTooManyRequests
		f.winFull = full
		f.endWindow(time.Now())
		f.mu.Unlock()
	}
}

// Additive increase, multiplicative decrease: 429s cut the limit by a
// tenth per window down to 1; windows that use the whole limit grow it by
// one up to the ceiling; a rise of the round trip cuts it; idle windows
// leave it.
func TestAIMD(t *testing.T) {
	f := &flow{limit: 20, ceiling: 20}
	ok := fetch.Attempt{Status: 200, Duration: 10 * time.Millisecond}
	endWindows(f, 5, ok, true)
	if f.limit != 20 {
		t.Fatalf("limit %v grew past the ceiling", f.limit)
	}
	endWindows(f, 1, fetch.Attempt{Status: http.StatusTooManyRequests, Duration: 10 * time.Millisecond}, true)
	if f.limit != 18 {
		t.Fatalf("after a window with a 429: limit %v, want 18", f.limit)
	}
	endWindows(f, 100, fetch.Attempt{Status: http.StatusTooManyRequests, Duration: 10 * time.Millisecond}, true)
	if f.limit != 1 {
		t.Fatalf("after 429s: limit %v, want 1", f.limit)
	}
	endWindows(f, 3, ok, false)
	if f.limit != 1 {
		t.Fatalf("windows that did not use the limit grew it to %v", f.limit)
	}
	endWindows(f, 4, ok, true)
	if f.limit != 5 {
		t.Fatalf("after 4 full windows: limit %v, want 5", f.limit)
	}
	before := f.limit
	endWindows(f, 1, fetch.Attempt{Status: 200, Duration: 500 * time.Millisecond}, true)
	if f.limit >= before {
		t.Fatalf("a window 50 times slower left the limit at %v", f.limit)
	}
}

// The breaker opens after threshold failures in a row (a success resets
// the count; a 429 or a 503 with Retry-After is no failure), and at once
// when the probe after a breaker pause fails.
func TestBreakerCounts(t *testing.T) {
	var b breakerState
	fail := fetch.Attempt{Status: 500}
	for range 4 {
		if b.observe(fail, 5).open {
			t.Fatal("opened early")
		}
	}
	b.observe(fetch.Attempt{Status: 200}, 5)
	for range 4 {
		b.observe(fail, 5)
	}
	b.observe(fetch.Attempt{Status: http.StatusTooManyRequests}, 5)
	b.observe(fetch.Attempt{Status: http.StatusServiceUnavailable, RetryAfter: time.Second}, 5)
	tr := b.observe(fetch.Attempt{Err: &fetch.ConnError{}}, 5)
	if !tr.open || tr.trips != 1 || tr.failures != 5 || tr.last != "a connection error" {
		t.Fatalf("trip %+v, want open after 5 failures", tr)
	}
	b.afterPause(pause{Breaker: true, Trips: 1})
	if tr := b.observe(fail, 5); !tr.open || !tr.probe || tr.trips != 2 {
		t.Fatalf("failed probe: %+v", tr)
	}
	b.afterPause(pause{Breaker: true, Trips: 2})
	b.observe(fetch.Attempt{Status: 204}, 5)
	if b.probing || b.trips != 0 {
		t.Fatalf("a successful probe left %+v", b)
	}
	if tr := b.observe(fail, -1); tr.open {
		t.Fatal("a negative threshold opened the breaker")
	}
}

// quarantineTick is one instant for every node, after now.
func TestQuarantineTick(t *testing.T) {
	base := time.Date(2026, 1, 1, 12, 0, 3, 0, time.UTC)
	a := quarantineTick(base, 5*time.Second)
	b := quarantineTick(base.Add(1500*time.Millisecond), 5*time.Second)
	if !a.Equal(b) || !a.After(base.Add(5*time.Second)) {
		t.Fatalf("ticks %v and %v", a, b)
	}
}
