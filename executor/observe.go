package executor

import (
	"context"

	"github.com/hogwire/hogwire/fetch"
)

// State is where an invocation is in its lifecycle. The data plane queues
// an invocation in its destination's lane; the executor moves it from
// there:
//
//	queued → running ⇄ waiting → succeeded | failed | skipped
//
// Running is a turn on the CPU (see Scheduler), waiting a fetch (or the
// masking store) in flight. Parked is an invocation stored to be retried
// later; the executor does not park invocations itself. An invocation that
// did not run (filtered, masked, stopped by its Scheduler) ends skipped.
type State uint8

// The states of an invocation.
const (
	StateQueued State = iota
	StateRunning
	StateWaiting
	StateParked
	StateSucceeded
	StateFailed
	StateSkipped
)

var stateNames = [...]string{"queued", "running", "waiting", "parked", "succeeded", "failed", "skipped"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Observer receives everything an invocation does, as it happens, on the
// goroutine running it. It is the one way an invocation reports: metrics,
// logs, traces and invocation records are all fed from it.
type Observer interface {
	// Transition reports a change of state.
	Transition(from, to State)
	// Log reports a log entry: print() output, errors, fetch retries. It
	// is redacted when Options.Redact is set, with the secrets known when
	// it is logged.
	Log(e LogEntry)
	// Attempt reports one HTTP attempt of a fetch(), retries included.
	// req is the request as sent, secrets included: redact what you keep.
	Attempt(req *fetch.Request, a fetch.Attempt)
	// Done reports the end of the invocation, with its final Result.
	Done(res *Result)
}

// Scheduler shares the node between invocations: it gives an invocation
// its turns on the CPU, lends it the node's memory, and stops it when its
// destination no longer wants it to run. The data plane implements it per
// invocation; a nil Scheduler runs at once and never stops.
type Scheduler interface {
	// Acquire waits for a turn to run Hog: before the invocation starts
	// and after each wait. An error (a *Stop, or ctx's) stops the
	// invocation.
	Acquire(ctx context.Context) error
	// Yield is called every few thousand VM steps of a turn, and whenever
	// the invocation has allocated another few dozen kilobytes, with the
	// bytes it has allocated so far. It may pass the CPU to another
	// destination and wait for the next turn. An error stops the
	// invocation: a *Stop, or a memory error (vm.ErrMemoryLimit) when the
	// node cannot lend it more memory.
	Yield(ctx context.Context, allocated int64) error
	// Release ends a turn, before each wait. An error (a *Stop) stops the
	// invocation there, before its request is sent.
	Release() error
	// End is called once when the invocation has ended, after its last
	// Release: whatever it holds of the node is returned.
	End()
}

// Stop is the error a Scheduler returns to stop an invocation that must
// not go on: its destination was disabled, quarantined, deleted or edited
// since it was queued. It may also be the cause with which the
// invocation's context was cancelled (context.WithCancelCause), to stop it
// in the middle of a fetch. The invocation ends skipped (Status Skipped)
// with the reason.
type Stop struct {
	// Reason is the metric the invocation is counted under, e.g.
	// "disabled_temporarily".
	Reason string
}

func (s *Stop) Error() string { return "stopped: " + s.Reason }
