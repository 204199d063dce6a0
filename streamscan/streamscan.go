// Package streamscan reads the stored messages of a JetStream stream that a
// consumer configuration selects, with an ephemeral consumer that is
// deleted afterwards: the way the control plane answers queries over
// telemetry and invocation records.
package streamscan

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Scan delivers the stored messages cfg selects, in stream order, to fn
// until fn returns false, limit messages were delivered or the stream has
// no more, and returns how many fn saw. The consumer is ephemeral,
// unacknowledged, in memory, and deleted afterwards (one left behind by a
// crash expires after a minute).
func Scan(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig, limit int, fn func(jetstream.Msg, *jetstream.MsgMetadata) bool) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = time.Minute
	c, err := js.CreateConsumer(ctx, stream, cfg)
	if err != nil {
		return 0, err
	}
	defer Delete(ctx, js, stream, c)
	n := 0
	for n < limit {
		batch, err := c.FetchNoWait(min(limit-n, 1000))
		if err != nil {
			return n, err
		}
		got, more := 0, true
		for m := range batch.Messages() {
			got++
			if !more {
				continue // drain
			}
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			n++
			if !fn(m, md) || md.NumPending == 0 || n >= limit {
				more = false
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return n, err
		}
		if !more || got == 0 {
			return n, nil
		}
	}
	return n, nil
}

// Delete deletes an ephemeral consumer, even when ctx has ended.
func Delete(ctx context.Context, js jetstream.JetStream, stream string, c jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// A consumer left behind expires after its inactive threshold.
	_ = js.DeleteConsumer(ctx, stream, c.CachedInfo().Name)
}
