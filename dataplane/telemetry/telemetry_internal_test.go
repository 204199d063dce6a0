package telemetry

import (
	"testing"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// Log entries beyond the buffer are dropped and counted; counters of an
// unsent report go back into the recorder, so nothing is lost but what the
// bound says.
func TestBoundedBufferAndGiveBack(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 30, 0, time.UTC)
	r := New(Config{NodeID: "n1", MaxLogs: 3, Now: func() time.Time { return now }})
	for i := range 5 {
		ok := r.Log(&hogwirev1.LogEntry{Message: string(rune('a' + i))})
		if want := i < 3; ok != want {
			t.Errorf("Log #%d kept = %v, want %v", i, ok, want)
		}
	}
	r.Count("d1", "succeeded", 2)
	r.Duration("d1", 30*time.Millisecond)

	req := r.take()
	if len(req.Logs) != 3 || req.DroppedLogs != 2 || len(req.Metrics) != 1 {
		t.Fatalf("report: %d logs, %d dropped, %d metrics", len(req.Logs), req.DroppedLogs, len(req.Metrics))
	}
	m := req.Metrics[0]
	if m.Counters["succeeded"] != 2 || m.Duration.Count != 1 || !m.Minute.AsTime().Equal(now.Truncate(time.Minute)) {
		t.Errorf("metrics: %v", m)
	}
	if again := r.take(); len(again.Logs)+len(again.Metrics) != 0 || again.DroppedLogs != 0 {
		t.Errorf("take did not empty the recorder: %v", again)
	}

	// The control plane did not take it: it goes back, merged with what
	// came meanwhile, and the log buffer stays bounded.
	r.Count("d1", "succeeded", 1)
	r.Log(&hogwirev1.LogEntry{Message: "new"})
	r.giveBack(req)
	back := r.take()
	if got := back.Metrics[0].Counters["succeeded"]; got != 3 {
		t.Errorf("succeeded after give-back = %d, want 3", got)
	}
	if len(back.Logs) != 3 || back.DroppedLogs != 3 {
		t.Errorf("after give-back: %d logs, %d dropped; want 3 and 3 (2 earlier + 1 that no longer fit)", len(back.Logs), back.DroppedLogs)
	}
	if r.Total("d1", "succeeded") != 3 {
		t.Errorf("Prometheus total = %v, want 3", r.Total("d1", "succeeded"))
	}
}
