package rpcclient

import (
	"context"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// KeepOptions pace Keep.
type KeepOptions struct {
	// Initial and Max bound the wait between attempts (defaults 500ms and
	// 15s); each wait is randomised by ±50% so that nodes cut off together
	// do not come back together.
	Initial, Max time.Duration
}

// Keep runs a long-lived stream until ctx ends: run holds the stream open
// and returns when it breaks; Keep waits, with exponential backoff and
// jitter, and runs it again. run calls connected once the stream works
// (e.g. the first message arrived), which resets the backoff.
//
// An outage is logged once: a warning at the first failure, debug lines
// for the retries, and one info line when the stream works again, with
// how long it was down. A node cut off from its control plane for an hour
// writes two lines, not thousands.
func Keep(ctx context.Context, log *slog.Logger, what string, o KeepOptions, run func(ctx context.Context, connected func()) error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.RandomizationFactor = o.Initial, o.Max, 0.5
	if b.InitialInterval <= 0 {
		b.InitialInterval = 500 * time.Millisecond
	}
	if b.MaxInterval <= 0 {
		b.MaxInterval = 15 * time.Second
	}
	b.Reset()
	var (
		down     bool
		since    time.Time
		attempts int
	)
	connected := func() {
		b.Reset()
		if down {
			log.Info(what+" restored", "down_for", time.Since(since).Round(time.Millisecond), "attempts", attempts)
			down, attempts = false, 0
		}
	}
	for ctx.Err() == nil {
		err := run(ctx, connected)
		if ctx.Err() != nil {
			return
		}
		attempts++
		wait := b.NextBackOff()
		if !down {
			down, since = true, time.Now()
			log.Warn(what+" lost; retrying with backoff until it is back", "err", err)
		} else {
			log.Debug(what+" still down", "err", err, "attempts", attempts, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
