package controlplane

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/deliverystate"
)

// deliveryState reads a destination's pause and backlog as the data-plane
// nodes published them in JetStream; nil when there is neither, or no
// NATS to read them from. It never fails the call it is part of: the
// destination is shown without it.
func (s *destinationServer) deliveryState(ctx context.Context, name string) *hogwirev1.DeliveryState {
	if s.telemetry == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	p, b, err := deliverystate.Read(ctx, s.telemetry.js, name)
	if err != nil {
		s.log.Debug("reading a destination's delivery state", "destination", name, "err", err)
		return nil
	}
	if p == nil && (b == nil || b.Events == 0) {
		return nil
	}
	out := &hogwirev1.DeliveryState{}
	if p != nil {
		out.PausedUntil, out.PauseReason = timestamppb.New(p.Until), p.Reason
	}
	if b != nil {
		out.BacklogEvents, out.BacklogBytes = b.Events, b.Bytes
		out.ObserveTime = timestamppb.New(b.Observed)
		if !b.Oldest.IsZero() {
			out.BacklogOldestTime = timestamppb.New(b.Oldest)
		}
	}
	return out
}
