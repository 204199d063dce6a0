package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/fetch"
)

// The circuit breaker is a pause (see pauses) that a node opens for the
// whole destination, on every node, when BreakerFailures requests in a
// row failed on it (a 5xx but a 503 with Retry-After, which pauses on its
// own, a 408, a timeout, a connection error): no request goes to the
// endpoint until the pause ends, and the destination's events wait in the
// parked stream meanwhile. When the pause ends every node lets one
// request through (half open; see flow: the concurrency limit restarts
// at one); if it fails, the breaker opens again for twice as long (from
// the destination's retry_base up to min(retry_max, 10 minutes)); if it
// succeeds the limit grows back by one per round trip while the backlog
// drains.

// DefaultBreakerFailures is how many failed requests in a row open the
// breaker.
const DefaultBreakerFailures = 10

// maxBreakerPause bounds one breaker pause: a probe at least this often.
const maxBreakerPause = 10 * time.Minute

// breakerMemory is how long a node remembers a pause after it ended, so
// that the first request after it is a probe and a failing probe opens
// a longer pause.
const breakerMemory = 10 * time.Minute

// breakerState is the breaker of one destination on one node; the flow's
// mutex guards it.
type breakerState struct {
	failures int  // failed requests in a row
	probing  bool // a breaker pause ended and no request succeeded since
	trips    int  // breaker pauses in a row
	last     string
}

// breakerTrip is what an attempt did to the breaker.
type breakerTrip struct {
	open     bool
	probe    bool // the failed request was the probe
	trips    int
	failures int
	last     string
}

func (b *breakerState) afterPause(ps pause) {
	if ps.Breaker {
		b.probing, b.trips = true, ps.Trips
	}
}

// observe counts one attempt; threshold <= 0 turns the breaker off.
func (b *breakerState) observe(a fetch.Attempt, threshold int) breakerTrip {
	switch {
	case failedAttempt(a):
		b.failures++
		b.last = describeAttempt(a)
		if threshold > 0 && (b.probing || b.failures >= threshold) {
			t := breakerTrip{open: true, probe: b.probing, trips: b.trips + 1, failures: b.failures, last: b.last}
			b.failures, b.probing = 0, false
			b.trips++
			return t
		}
	case a.Err == nil && a.Status < 500 && a.Status != http.StatusTooManyRequests && a.Status != http.StatusRequestTimeout:
		b.failures, b.probing, b.trips = 0, false, 0
	}
	return breakerTrip{}
}

// failedAttempt says whether an attempt says the endpoint is failing. A
// 429, or a 503 with Retry-After, is the endpoint pacing us (a pause of
// its own); a refused egress or an invalid request never reached it.
func failedAttempt(a fetch.Attempt) bool {
	if a.Err != nil {
		return fetch.Retriable(a.Err)
	}
	if a.Status == http.StatusServiceUnavailable && a.RetryAfter > 0 {
		return false
	}
	return a.Status >= 500 || a.Status == http.StatusRequestTimeout
}

func describeAttempt(a fetch.Attempt) string {
	if a.Err != nil {
		if errors.Is(a.Err, fetch.ErrTimeout) {
			return "a timeout"
		}
		return "a connection error"
	}
	return fmt.Sprintf("HTTP %d", a.Status)
}

// openBreaker pauses the destination on every node.
func (inv *invocation) openBreaker(ctx context.Context, t breakerTrip) {
	n := inv.n
	sched := n.cfg.Retry
	if r := inv.dest.cur.Load(); r != nil {
		sched = sched.forDestination(r.d.GetLimits())
	}
	wait := fetch.Ceiling(sched.Base, max(min(sched.Max, maxBreakerPause), sched.Base), t.trips)
	now := time.Now()
	reason := fmt.Sprintf("the circuit breaker: %d requests in a row failed, the last with %s", t.failures, t.last)
	if t.probe {
		reason = fmt.Sprintf("the circuit breaker: the probe request failed with %s (opened %d times in a row)", t.last, t.trips)
	}
	if !n.pauses.set(ctx, pause{Destination: inv.dest.name, Until: now.Add(wait), Reason: reason, Breaker: true, Trips: t.trips}) {
		return
	}
	n.tel.Count(inv.dest.name, "breaker_opened", 1)
	inv.log(now, hogwirev1.LogLevel_LOG_LEVEL_WARN, fmt.Sprintf("Destination paused until %s by %s",
		now.Add(wait).UTC().Format("15:04:05.000"), reason))
	n.log.Info("destination paused", "destination", inv.dest.name, "until", now.Add(wait), "reason", reason)
}

// firstBreakerWait reports whether the invocation is about to wait, for
// the first time, because its destination's circuit breaker is open: its
// event could not be delivered because the endpoint is failing, which
// health counts once per event (as it would count the failure the breaker
// spared the endpoint), not on every wait. A Retry-After pause, the vendor
// pacing us, is no failure.
func (inv *invocation) firstBreakerWait() bool {
	if inv.parked != nil {
		return false
	}
	ps, ok := inv.n.pauses.get(inv.dest.name)
	return ok && ps.Breaker && ps.Until.After(time.Now())
}
