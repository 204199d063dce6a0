package capture

import (
	"errors"
	"sync/atomic"
)

// The ways a request can fail to get memory.
var (
	// errBusy: the budget is spent by other requests for now (503).
	errBusy = errors.New("capture is at its memory budget")
	// errTooBig: the request alone needs more than a request may hold
	// (413); retrying cannot help.
	errTooBig = errors.New("the request needs more memory than capture gives one request")
)

// smallRequest is what a request may hold from the whole budget. Beyond
// it, requests draw only on the part of the budget large requests share,
// so that a few huge bodies (gzip bombs, say) never starve ordinary SDK
// batches, which are far smaller.
const smallRequest = 1 << 20

// memory is the budget of bytes that requests in flight hold: bodies as
// received, decoded and parsed. A request takes from it as it reads and
// decodes, before it allocates, and returns everything when it ends;
// past the budget, requests are refused rather than the process growing.
type memory struct {
	used atomic.Int64
	max  int64
}

// largeMax is the share of the budget that requests past smallRequest
// may hold together; it is also the most one request may hold.
func (m *memory) largeMax() int64 { return m.max * 3 / 4 }

// lease is one request's share of the budget. It is used by one goroutine.
type lease struct {
	m    *memory
	held int64
}

func (m *memory) lease() *lease { return &lease{m: m} }

// take reserves n more bytes for the request.
func (l *lease) take(n int64) error {
	if n <= 0 {
		return nil
	}
	held := l.held + n
	if held > l.m.largeMax() {
		return errTooBig
	}
	limit := l.m.max
	if held > smallRequest {
		limit = l.m.largeMax()
	}
	for {
		used := l.m.used.Load()
		if used+n > limit {
			return errBusy
		}
		if l.m.used.CompareAndSwap(used, used+n) {
			l.held = held
			return nil
		}
	}
}

// give returns n bytes the request no longer holds.
func (l *lease) give(n int64) {
	n = min(n, l.held)
	l.held -= n
	l.m.used.Add(-n)
}

// release returns everything; the lease may be used again afterwards.
func (l *lease) release() { l.give(l.held) }
