package dataplane

import (
	"testing"
	"time"
)

// untilNow answers as until at the current time: nothing for a destination
// without a pause (or on a node that keeps none), nothing once a pause
// ended, and the pause while it lasts.
func TestUntilNow(t *testing.T) {
	var none *pauses
	if until, reason := none.untilNow("d"); !until.IsZero() || reason != "" {
		t.Errorf("nil pauses: %v, %q", until, reason)
	}
	p := &pauses{byName: map[string]pause{}}
	if until, _ := p.untilNow("d"); !until.IsZero() {
		t.Errorf("no pause: %v", until)
	}
	later := time.Now().Add(time.Hour)
	p.note(pause{Destination: "d", Until: later, Reason: "Retry-After"})
	p.note(pause{Destination: "ended", Until: time.Now().Add(-time.Second), Reason: "old"})
	if until, reason := p.untilNow("d"); !until.Equal(later) || reason != "Retry-After" {
		t.Errorf("paused: %v, %q; want %v, Retry-After", until, reason, later)
	}
	for _, d := range []string{"ended", "other"} {
		if until, reason := p.untilNow(d); !until.IsZero() || reason != "" {
			t.Errorf("%s: %v, %q; want none", d, until, reason)
		}
		if until, _ := p.until(d, time.Now()); !until.IsZero() {
			t.Errorf("until(%s) = %v; want none", d, until)
		}
	}
}
