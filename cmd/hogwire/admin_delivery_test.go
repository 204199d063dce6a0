package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// get shows a destination's pause and backlog as the data plane published
// them, and disable says how many backlogged events it dropped.
func TestGetShowsPauseAndBacklog(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 7, 0, time.UTC)
	d := &hogwirev1.Destination{Name: "projects/shop/destinations/hook", Delivery: &hogwirev1.DeliveryState{
		PausedUntil: timestamppb.New(at), PauseReason: "Retry-After from HTTP 429",
		BacklogEvents: 1234, BacklogBytes: 3 << 20, BacklogOldestTime: timestamppb.New(at.Add(-time.Minute)),
		ObserveTime: timestamppb.New(at.Add(-time.Second)),
	}}
	var b strings.Builder
	if err := writeDestination(&b, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Paused until:", "(Retry-After from HTTP 429)", "Backlog:", "1234 events, about 3.0 MiB, oldest since "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("get does not show %q:\n%s", want, b.String())
		}
	}
	if got := droppedText(1234); !strings.Contains(got, "1234 events") {
		t.Errorf("dropped text %q", got)
	}
}
