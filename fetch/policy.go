package fetch

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults applied to the zero fields of a [Policy].
const (
	DefaultMaxRetries       = 3
	DefaultTimeout          = 10 * time.Second
	DefaultBackoffBase      = 250 * time.Millisecond
	DefaultBackoffCap       = 10 * time.Second
	DefaultMaxRetryAfter    = 30 * time.Second
	DefaultMaxResponseBytes = 1 << 20
)

// Policy is how one call to [Client.Do] behaves. The zero value uses the
// defaults above; it is usually built per destination.
type Policy struct {
	// MaxRetries is how many times a retriable failure is retried after
	// the first attempt. Zero means DefaultMaxRetries; a negative value
	// disables retries (for example for backfills that retry elsewhere).
	MaxRetries int
	// Timeout bounds each attempt: connecting, sending, and reading the
	// whole response.
	Timeout time.Duration
	// BackoffBase and BackoffCap shape the wait before retry n: a uniform
	// random duration in [0, min(BackoffCap, BackoffBase·2^(n-1))].
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// MaxRetryAfter is the longest Retry-After a call waits for before
	// its next attempt. A server asking for a longer wait gets it: the
	// call returns that response instead of retrying early, and the
	// caller retries later (the data plane parks the invocation).
	MaxRetryAfter time.Duration
	// MaxResponseBytes caps how much of a response body is kept; the rest
	// is discarded and Response.Truncated is set.
	MaxResponseBytes int64
	// NotBefore, when set, returns a time before which no retry may start:
	// a pause shared with the caller's other requests (the data plane's
	// destination-wide Retry-After). It is read after each failed attempt;
	// a retry it would delay past MaxRetryAfter is not made, and the
	// response (or error) is returned for the caller to retry later.
	NotBefore func() time.Time
	// BeforeRetry, when set, is called after observe for an attempt that
	// is to be retried, before the wait; false gives that attempt's
	// outcome back instead. The data plane stops here when the
	// destination was paused meanwhile, and waits for its rate limit.
	BeforeRetry func(Attempt) bool
}

func (p Policy) withDefaults() Policy {
	switch {
	case p.MaxRetries == 0:
		p.MaxRetries = DefaultMaxRetries
	case p.MaxRetries < 0:
		p.MaxRetries = 0
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.BackoffBase <= 0 {
		p.BackoffBase = DefaultBackoffBase
	}
	if p.BackoffCap <= 0 {
		p.BackoffCap = DefaultBackoffCap
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if p.MaxResponseBytes <= 0 {
		p.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return p
}

// backoff returns the wait after failed attempt n (1-based), with full
// jitter so that destinations recovering from an outage are not hit by
// every node at the same instant.
func (p Policy) backoff(n int) time.Duration {
	return FullJitter(p.BackoffBase, p.BackoffCap, n)
}

// FullJitter is the wait before retry n (1-based) of a schedule that
// doubles from base up to limit: a uniform random duration in [0,
// min(limit, base·2^(n-1))]. Spreading retries over the whole interval
// keeps the clients of an endpoint that recovers from hitting it at once.
func FullJitter(base, limit time.Duration, n int) time.Duration {
	ceil := Ceiling(base, limit, n)
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// Ceiling is the longest wait before retry n (1-based) of a schedule that
// doubles from base up to limit: min(limit, base·2^(n-1)).
func Ceiling(base, limit time.Duration, n int) time.Duration {
	ceil := base
	for i := 1; i < n && ceil < limit; i++ {
		ceil *= 2
	}
	return min(ceil, limit)
}

// RetriableStatus reports whether a response status is worth retrying:
// a 5xx, 408 or 429.
func RetriableStatus(code int) bool {
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
}

// Retriable reports whether an error of [Client.Do] (a failure that got no
// response: a timeout, a connection error) is worth retrying later.
func Retriable(err error) bool { return retriable(err) }

// RetryAfter reads a response's Retry-After header (delay-seconds or an
// HTTP date) relative to now; false when it is absent or unreadable.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	return parseRetryAfter(h.Get("Retry-After"), now)
}

// parseRetryAfter reads a Retry-After value, either delay-seconds or an
// HTTP date, relative to now. A date in the past means "now".
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Beyond this the value is meaningless and would overflow.
		if secs > int64(365*24*time.Hour/time.Second) {
			secs = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
