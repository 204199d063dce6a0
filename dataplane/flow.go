package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

// flow is one destination's requests on this node: how many may be in
// flight at once, adapted to the endpoint (additive increase,
// multiplicative decrease, as Vector's adaptive request concurrency),
// when each may go (max_rate, shared by all nodes: see limiter), and
// whether the endpoint keeps failing (the circuit breaker, see breaker.go).
//
// Adaptive concurrency: the limit starts at the destination's maximum (its
// lane's max_concurrency, or its node's share of max_requests_in_flight),
// so a healthy destination never starts slow. Every window (about one
// round trip, at least 50 ms) it is cut to 90% when a response said the
// endpoint is overloaded (429, 503, a timeout) or the window's mean round
// trip rose well above its moving average (twice it, and by 250 ms at
// least: a busy node's own scheduling delays are no signal), and grows by one when the
// window used the whole limit without either. After any pause
// (Retry-After or the breaker) it starts again from one request, so a
// recovering endpoint meets a probe and then a ramp, not the whole
// backlog at once.
type flow struct {
	limOnce sync.Once
	lim     *limiter
	gauge   *atomic.Int64

	mu       sync.Mutex
	limit    float64
	ceiling  int
	inflight int
	waiters  []chan struct{}

	// The current window: its end, its round trips and what it saw.
	winEnd                time.Time
	winSum                time.Duration
	winN                  int
	winPressure, winFull  bool
	baseline              time.Duration
	lastPauseEnd          time.Time
	breaker               breakerState
	rateLogged, rateWaits int64
	// releaseFn is f.release as a func value, made once: acquire hands
	// it to every request, and a method value returned escapes.
	releaseFn func()
}

// AIMD parameters.
const (
	aimdDecrease  = 0.9
	aimdMinWindow = 50 * time.Millisecond
	aimdMaxWindow = time.Second
	// A window's mean round trip this much above the average (and by
	// aimdRTTSlack at least, so that loopback noise is not a signal)
	// counts as the endpoint slowing down.
	aimdRTTRise  = 2
	aimdRTTSlack = 250 * time.Millisecond
)

// ceilingOf is the most requests of r's destination this node may have in
// flight.
func (n *Node) ceilingOf(r *route) int {
	c := r.concurrency
	if m := int(r.d.GetLimits().GetMaxRequestsInFlight()); m > 0 {
		nodes := 1
		if n.rates != nil {
			nodes = int(n.rates.nodes.Load())
		}
		c = min(c, max(1, m/nodes))
	}
	return c
}

// acquire waits until the invocation may send a request: a place under the
// concurrency limit, then its slot in the rate limit. The returned release
// must be called when the request (with fetch's own retries) is done. A
// pause that began meanwhile ends it with a DeferError.
func (inv *invocation) acquire(ctx context.Context, r *route) (func(), error) {
	n, d := inv.n, inv.dest
	f := &d.flow
	f.mu.Lock()
	f.setCeiling(n, d, n.ceilingOf(r))
	if f.releaseFn == nil {
		f.releaseFn = f.release
	}
	release := f.releaseFn
	if ps, ok := n.pauses.get(d.name); ok && !ps.Until.After(time.Now()) && ps.Until.After(f.lastPauseEnd) {
		// A pause ended: start again with one request in flight.
		f.lastPauseEnd = ps.Until
		f.limit = 1
		f.breaker.afterPause(ps)
		f.setGauge()
	}
	if f.inflight < int(f.limit) {
		f.inflight++
		f.winFull = f.winFull || f.inflight >= int(f.limit)
		f.mu.Unlock()
	} else {
		f.winFull = true
		ch := make(chan struct{}, 1)
		f.waiters = append(f.waiters, ch)
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			f.mu.Lock()
			for i, w := range f.waiters {
				if w == ch {
					f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
					ch = nil
					break
				}
			}
			f.mu.Unlock()
			if ch != nil {
				// Handed a place as the wait ended: give it back.
				f.release()
			}
			return nil, ctx.Err()
		}
	}
	if rate := r.d.GetLimits().GetMaxRate(); rate > 0 {
		if err := inv.waitRate(ctx, rate, 0); err != nil {
			f.release()
			return nil, err
		}
	}
	if until, reason := n.pauses.untilNow(d.name); !until.IsZero() {
		f.release()
		return nil, &executor.DeferError{Until: until, Reason: reason}
	}
	return release, nil
}

// waitRate waits for the request's slot in the destination's shared rate
// limit; the first ahead of it is already waited for elsewhere (fetch's
// wait before a retry).
func (inv *invocation) waitRate(ctx context.Context, rate float64, ahead time.Duration) error {
	n, f := inv.n, &inv.dest.flow
	f.limOnce.Do(func() { f.lim = n.rates.limiter(inv.dest.name) })
	t, err := f.lim.reserve(ctx, rate)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The shared schedule is out of reach: space this node's requests
		// by its share of the rate rather than stop.
		n.log.Warn("rate limit: the shared schedule is unavailable; spacing this node's requests alone", "destination", inv.dest.name, "err", err)
		t = time.Now().Add(time.Duration(float64(time.Second) * float64(n.rates.nodes.Load()) / rate))
	}
	wait := time.Until(t) - ahead
	if wait <= 0 {
		return nil
	}
	interval := time.Duration(float64(time.Second) / rate)
	n.tel.Count(inv.dest.name, "rate_limited_waits", 1)
	f.mu.Lock()
	f.rateWaits++
	first := time.Since(time.Unix(0, f.rateLogged)) > time.Minute
	if first {
		f.rateLogged = time.Now().UnixNano()
	}
	f.mu.Unlock()
	if first {
		// Once a minute at most: a rate-limited destination waits on
		// every request.
		inv.log(time.Now(), hogwirev1.LogLevel_LOG_LEVEL_INFO, fmt.Sprintf(
			"Waiting for the rate limit: at most %g requests per second across all nodes", rate))
	}
	for {
		tm := time.NewTimer(wait)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		}
		// Woken much later than the slot (a starved machine): sent now it
		// would go with the requests of the slots after it, a burst. Its
		// slot is lost; it takes the next one.
		if time.Since(t.Add(-ahead)) <= interval {
			return nil
		}
		if t, err = f.lim.reserve(ctx, rate); err != nil {
			return nil
		}
		if wait = time.Until(t) - ahead; wait <= 0 {
			return nil
		}
	}
}

// setCeiling follows a change of the most requests in flight; f.mu is
// held.
func (f *flow) setCeiling(n *Node, d *destination, c int) {
	if c == f.ceiling {
		return
	}
	if f.gauge == nil {
		f.gauge = n.gauges.concurrencyOf(d.name)
	}
	if f.ceiling == 0 || f.limit > float64(c) {
		f.limit = float64(c)
	}
	f.ceiling = c
	f.setGauge()
	f.wake()
}

func (f *flow) setGauge() {
	if f.gauge != nil {
		f.gauge.Store(int64(f.limit))
	}
}

// release ends a request.
func (f *flow) release() {
	f.mu.Lock()
	f.inflight--
	f.wake()
	f.mu.Unlock()
}

// wake hands places under the limit to waiters, first come first served;
// f.mu is held.
func (f *flow) wake() {
	for len(f.waiters) > 0 && f.inflight < int(f.limit) {
		ch := f.waiters[0]
		f.waiters = f.waiters[1:]
		f.inflight++
		ch <- struct{}{}
	}
}

// observe adapts the limit to one finished attempt and feeds the breaker;
// it reports whether the breaker opened.
func (f *flow) observe(a fetch.Attempt, threshold int) (trip breakerTrip) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable || errors.Is(a.Err, fetch.ErrTimeout) {
		f.winPressure = true
	}
	if a.Err == nil || errors.Is(a.Err, fetch.ErrTimeout) {
		f.winSum += a.Duration
		f.winN++
	}
	if now.After(f.winEnd) {
		f.endWindow(now)
	}
	return f.breaker.observe(a, threshold)
}

// endWindow applies additive increase, multiplicative decrease; f.mu is
// held.
func (f *flow) endWindow(now time.Time) {
	var mean time.Duration
	if f.winN > 0 {
		mean = f.winSum / time.Duration(f.winN)
	}
	slow := f.baseline > 0 && f.winN > 0 &&
		mean > time.Duration(float64(f.baseline)*aimdRTTRise) && mean > f.baseline+aimdRTTSlack
	switch {
	case f.winPressure || slow:
		f.limit = max(1, f.limit*aimdDecrease)
	case f.winFull && f.limit < float64(f.ceiling):
		f.limit = min(float64(f.ceiling), f.limit+1)
	}
	if f.winN > 0 {
		// Always followed, so that a lasting change of the endpoint's
		// latency becomes the new normal after a few windows.
		if f.baseline == 0 {
			f.baseline = mean
		} else {
			f.baseline = (f.baseline*7 + mean*3) / 10
		}
	}
	f.setGauge()
	f.wake()
	f.winEnd = now.Add(min(max(f.baseline, aimdMinWindow), aimdMaxWindow))
	f.winSum, f.winN, f.winPressure, f.winFull = 0, 0, false, f.inflight >= int(f.limit)
}
