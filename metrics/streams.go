package metrics

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ObserveStreams reports, at each collection, every consumer of the named
// JetStream streams: how many messages it has yet to receive (its lag),
// how many it holds unacknowledged, and how many were redelivered; and each
// stream's size. Unregister the returned registration to stop.
func ObserveStreams(mp metric.MeterProvider, js jetstream.JetStream, log *slog.Logger, streams ...string) (metric.Registration, error) {
	m := mp.Meter(Scope)
	pending, err := m.Int64ObservableGauge("hogwire.stream.consumer.pending", metric.WithUnit("{message}"),
		metric.WithDescription("Messages in the stream that a consumer has yet to receive: its lag."))
	if err != nil {
		return nil, err
	}
	ackPending, err := m.Int64ObservableGauge("hogwire.stream.consumer.ack_pending", metric.WithUnit("{message}"),
		metric.WithDescription("Messages a consumer has received but not yet acknowledged (in flight on the nodes)."))
	if err != nil {
		return nil, err
	}
	redelivered, err := m.Int64ObservableGauge("hogwire.stream.consumer.redelivered", metric.WithUnit("{message}"),
		metric.WithDescription("Messages a consumer has received more than once and not yet acknowledged."))
	if err != nil {
		return nil, err
	}
	lagAge, err := m.Float64ObservableGauge("hogwire.stream.consumer.idle", metric.WithUnit("s"),
		metric.WithDescription("Seconds since a consumer last received a message while it had some pending (0 when caught up)."))
	if err != nil {
		return nil, err
	}
	msgs, err := m.Int64ObservableGauge("hogwire.stream.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Messages stored in the stream."))
	if err != nil {
		return nil, err
	}
	size, err := m.Int64ObservableGauge("hogwire.stream.size", metric.WithUnit("By"),
		metric.WithDescription("Bytes stored in the stream."))
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	var warned atomic.Bool
	return m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var errs []error
		for _, name := range streams {
			s, err := js.Stream(ctx, name)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				continue // not made yet: nothing to report
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			info := s.CachedInfo()
			sattr := metric.WithAttributes(attribute.String("stream", name))
			o.ObserveInt64(msgs, int64(info.State.Msgs), sattr)
			o.ObserveInt64(size, int64(info.State.Bytes), sattr)
			lister := s.ListConsumers(ctx)
			for ci := range lister.Info() {
				attrs := metric.WithAttributes(attribute.String("stream", name), attribute.String("consumer", ci.Name))
				o.ObserveInt64(pending, int64(ci.NumPending), attrs)
				o.ObserveInt64(ackPending, int64(ci.NumAckPending), attrs)
				o.ObserveInt64(redelivered, int64(ci.NumRedelivered), attrs)
				idle := 0.0
				if ci.NumPending > 0 && ci.Delivered.Last != nil {
					idle = time.Since(*ci.Delivered.Last).Seconds()
				}
				o.ObserveFloat64(lagAge, idle, attrs)
			}
			if err := lister.Err(); err != nil {
				errs = append(errs, err)
			}
		}
		// A NATS outage shows in readiness; say it here once, not at every
		// scrape.
		if err := errors.Join(errs...); err == nil {
			warned.Store(false)
		} else if !warned.Swap(true) {
			log.Warn("stream metrics unavailable", "err", err)
		}
		return nil
	}, pending, ackPending, redelivered, lagAge, msgs, size)
}
