package dataplane

import (
	"context"
	"fmt"
	"sync"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/hogwire/hogwire/hogvm/vm"
)

// memory is the node's Hog memory budget: what every invocation running
// on the node may allocate together (the VM counts what each allocates;
// see vm.Usage). An invocation borrows from it as its allocations grow
// and gives everything back when it ends. When the budget is spent, new
// invocations wait for memory instead of the process growing, and an
// invocation that needs more is failed with a memory error, unless its
// destination is not the one holding the most: that one is what exhausts
// the budget, and a reserve of an eighth of the budget lets the others go
// on.
type memory struct {
	limit, reserve int64

	mu     sync.Mutex
	used   int64
	byDest map[*destination]int64
	// freed is closed and replaced whenever memory is given back from a
	// spent budget, when invocations may be waiting for it.
	freed chan struct{}
}

// memoryChunk is the granularity of loans: an invocation asks again only
// after allocating this much more.
const memoryChunk = 64 << 10

func newMemory(limit int64) *memory {
	return &memory{limit: limit, reserve: limit / 8, byDest: map[*destination]int64{}, freed: make(chan struct{})}
}

// admit waits until the budget is not spent, for a new invocation.
func (m *memory) admit(ctx context.Context) error {
	for {
		m.mu.Lock()
		if m.used < m.limit {
			m.mu.Unlock()
			return nil
		}
		freed := m.freed
		m.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// grow lends inv what it has allocated beyond its loan, in chunks.
func (m *memory) grow(inv *invocation, allocated int64) error {
	if allocated <= inv.loan {
		return nil
	}
	need := (allocated - inv.loan + memoryChunk - 1) / memoryChunk * memoryChunk
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used+need > m.limit {
		top, topBytes := m.largest()
		if top == inv.dest || m.used+need > m.limit+m.reserve {
			return &vm.LimitError{Limit: vm.ErrMemoryLimit, Msg: fmt.Sprintf(
				"Memory limit exceeded: the node's Hog memory budget of %d bytes is spent (this destination holds %d bytes of it, the most of any destination holding %d); tried to allocate %d bytes.",
				m.limit, m.byDest[inv.dest], topBytes, allocated)}
		}
	}
	m.used += need
	m.byDest[inv.dest] += need
	inv.loan += need
	return nil
}

// largest returns the destination holding the most. m.mu is held.
func (m *memory) largest() (*destination, int64) {
	var top *destination
	var most int64
	for d, n := range m.byDest {
		if n > most {
			top, most = d, n
		}
	}
	return top, most
}

// giveBack returns inv's loan.
func (m *memory) giveBack(inv *invocation) {
	if inv.loan == 0 {
		return
	}
	m.mu.Lock()
	wasSpent := m.used >= m.limit
	m.used -= inv.loan
	if left := m.byDest[inv.dest] - inv.loan; left > 0 {
		m.byDest[inv.dest] = left
	} else {
		delete(m.byDest, inv.dest)
	}
	inv.loan = 0
	if wasSpent {
		close(m.freed)
		m.freed = make(chan struct{})
	}
	m.mu.Unlock()
}

// defaultHogMemory is the budget when none is configured: a quarter of the
// memory limit of the process's cgroup, or 256 MiB without one. The VM's
// counts are estimates, and garbage waits for the collector, so the
// process needs a good margin above the budget.
func defaultHogMemory() int64 {
	if limit, err := memlimit.FromCgroup(); err == nil && limit > 0 && limit < 1<<60 {
		return max(int64(limit/4), 32<<20)
	}
	return 256 << 20
}
