package dataplane

import (
	"testing"
	"time"
)

// Events sent back to wait for a full destination come back when it has
// worked off what it holds at the rate it goes, one message after another;
// without a rate they wait the longest wait.
func TestDrainWait(t *testing.T) {
	var d drain
	t0 := time.Unix(1000, 0)
	longest := time.Second
	d.sample(t0)
	if w := d.wait(t0, 100, 10000, 10000, longest); w != longest {
		t.Fatalf("no rate yet: wait %v, want %v", w, longest)
	}
	d.returned(100)
	for range 700 {
		d.done()
	}
	at := t0.Add(100 * time.Millisecond) // 7,000 a second
	var waits []time.Duration
	for range 3 {
		waits = append(waits, d.wait(at, 100, 10000, 10000, longest))
	}
	for i, want := range []time.Duration{14285714, 28571428, 42857142} {
		if diff := waits[i] - want; diff < -time.Microsecond || diff > time.Microsecond {
			t.Fatalf("waits %v, want about %v for the message %d", waits, want, i+1)
		}
	}
	// The first comes back; the next one counts only those still out.
	d.returned(100)
	if w := d.wait(at, 100, 10000, 10000, longest); w < 42*time.Millisecond || w > 43*time.Millisecond {
		t.Fatalf("after one came back: wait %v, want about 42.9ms", w)
	}
	// Bounds: never sooner than drainMinWait, never past longest.
	var quick drain
	quick.sample(t0)
	for range 1_000_000 {
		quick.done()
	}
	if w := quick.wait(at, 1, 10000, 10000, longest); w != drainMinWait {
		t.Fatalf("a fast destination: wait %v, want %v", w, drainMinWait)
	}
	var stuck drain
	stuck.sample(t0)
	if w := stuck.wait(at, 100, 10000, 10000, longest); w != longest {
		t.Fatalf("a stuck destination: wait %v, want %v", w, longest)
	}
	// Samples closer together than drainSample do not rate.
	var close drain
	close.sample(t0)
	close.done()
	if r := close.sample(t0.Add(drainSample / 2)); r != 0 {
		t.Fatalf("rate %v from half a sample", r)
	}
}
