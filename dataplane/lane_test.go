package dataplane

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A lane runs at most its limit of tasks at once, starts the first
// submitted first, and runs every one; a blocked lane does not hold up
// another lane sharing the same workers.
func TestLaneLimitsAndIsolates(t *testing.T) {
	w := newWorkers(10 * time.Millisecond)
	defer w.Close()
	slow, fast := &lane{}, &lane{}

	release := make(chan struct{})
	var running, peak atomic.Int32
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	ids := map[*invocation]int{}
	run := func(inv *invocation) {
		defer wg.Done()
		mu.Lock()
		order = append(order, ids[inv])
		mu.Unlock()
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
	}
	for i := range 50 {
		wg.Add(1)
		inv := &invocation{}
		mu.Lock()
		ids[inv] = i
		mu.Unlock()
		slow.submit(w, inv, 3, run)
	}

	// Once the slow lane is full, with 47 tasks queued, the fast lane's
	// task still runs.
	for deadline := time.Now().Add(10 * time.Second); running.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d tasks running, want 3", running.Load())
		}
	}
	ran := make(chan struct{})
	fast.submit(w, &invocation{}, 3, func(*invocation) { close(ran) })
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("a task in another lane waited for the blocked lane")
	}

	close(release)
	wg.Wait()
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want the limit 3", p)
	}
	if len(order) != 50 {
		t.Errorf("%d tasks ran, want 50", len(order))
	}
	if got := order[:3]; got[0]+got[1]+got[2] != 0+1+2 {
		t.Errorf("the first tasks to start were %v, want the first three submitted", got)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		slow.mu.Lock()
		workers, queued := slow.running, len(slow.queue)
		slow.mu.Unlock()
		if workers == 0 && queued == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lane left with %d workers and %d queued tasks", workers, queued)
		}
	}
}

// Workers are reused while busy and exit once idle, so a quiet node keeps
// no goroutines.
func TestWorkersExitWhenIdle(t *testing.T) {
	w := newWorkers(20 * time.Millisecond)
	defer w.Close()
	done := make(chan struct{})
	w.Go(func() { close(done) })
	<-done
	exited := make(chan struct{})
	go func() { w.wg.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("an idle worker did not exit")
	}
}
