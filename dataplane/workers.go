package dataplane

import (
	"sync"
	"time"
)

// workers runs tasks on goroutines that outlive one task. An invocation
// grows its goroutine's stack to tens of kilobytes (the VM, then net/http),
// and a fresh goroutine per invocation paid for that growth every time:
// about a quarter of the invocation's CPU in bench/pipeline. A worker that
// finishes a task waits a while for the next before it exits, so a busy
// node reuses grown stacks and an idle one keeps no goroutines. There is no
// bound on workers: a task blocked on its destination's lane must never
// hold up another destination's task.
type workers struct {
	tasks chan func()
	idle  time.Duration
	quit  chan struct{}
	wg    sync.WaitGroup
}

func newWorkers(idle time.Duration) *workers {
	return &workers{tasks: make(chan func()), idle: idle, quit: make(chan struct{})}
}

// Go runs f on an idle worker, or on a new one when none is idle.
func (w *workers) Go(f func()) {
	select {
	case w.tasks <- f:
	default:
		w.wg.Add(1)
		go w.run(f)
	}
}

func (w *workers) run(f func()) {
	defer w.wg.Done()
	t := time.NewTimer(w.idle)
	defer t.Stop()
	for {
		f()
		t.Reset(w.idle)
		select {
		case f = <-w.tasks:
		case <-t.C:
			return
		case <-w.quit:
			return
		}
	}
}

// Close makes idle workers exit and waits for every worker; call it once
// no more tasks are given.
func (w *workers) Close() {
	close(w.quit)
	w.wg.Wait()
}
