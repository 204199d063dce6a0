package dataplane

import (
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
)

// Batch delivery. A destination with a batch (BatchDelivery) gathers the
// events its filters matched, each still an invocation of its own that
// holds its message in the log, in its batcher; when the batch is full
// (max_events, max_bytes), max_wait after its first event, or when the
// node stops, the batch becomes one invocation that holds them all (its
// members) and is queued in the destination's lane like any other. Its
// outcome is counted per event; when it parks, the parked record holds
// every event, so that it is retried as the same batch; its members'
// messages are acknowledged only once it is delivered, failed for good or
// parked, so a node that dies with a partial batch loses nothing: the
// log delivers those events again.

// The defaults of a BatchDelivery's zero fields.
const (
	defaultBatchBytes = 1 << 20
	defaultBatchWait  = time.Second
)

// batchLimits are a destination's batch settings with defaults applied.
type batchLimits struct {
	events int
	bytes  int
	wait   time.Duration
}

// batchOf returns d's batch settings, or false when it delivers per event.
func batchOf(d *hogwirev1.Destination) (batchLimits, bool) {
	b := d.GetBatch()
	if b == nil || b.GetMaxEvents() < 1 {
		return batchLimits{}, false
	}
	l := batchLimits{events: int(b.GetMaxEvents()), bytes: int(b.GetMaxBytes()), wait: b.GetMaxWait().AsDuration()}
	if l.bytes <= 0 {
		l.bytes = defaultBatchBytes
	}
	if l.wait <= 0 {
		l.wait = defaultBatchWait
	}
	return l, true
}

// batcher gathers one destination's invocations into batches.
type batcher struct {
	mu      sync.Mutex
	members []*invocation
	bytes   int
	// r is the route the batch is queued with (its lane's limit).
	r *route
	// timer flushes the batch max_wait after its first event; gen tells
	// a timer that fires late that its batch already left.
	timer *time.Timer
	gen   uint64
}

// addToBatch puts inv in its destination's batch, which it queues once
// full.
func (n *Node) addToBatch(r *route, inv *invocation, l batchLimits) {
	b := &r.dest.batch
	b.mu.Lock()
	if len(b.members) > 0 && b.bytes+len(inv.data) > l.bytes {
		// inv would overflow the batch's bytes: the batch goes without it.
		n.submitBatch(b.cut())
	}
	b.members = append(b.members, inv)
	b.bytes += len(inv.data)
	b.r = r
	var full *invocation
	switch {
	case len(b.members) >= l.events || b.bytes >= l.bytes:
		full = b.cut()
	case len(b.members) == 1:
		gen := b.gen
		b.timer = time.AfterFunc(l.wait, func() { n.flushBatch(r.dest, gen) })
	}
	b.mu.Unlock()
	if full != nil {
		n.submitBatch(full)
	}
}

// cut takes the batch gathered so far as one invocation; b.mu is held.
func (b *batcher) cut() *invocation {
	if len(b.members) == 0 {
		return nil
	}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.gen++
	first := b.members[0]
	lead := first.n.newInvocation(first.dest, first.g, nil, first.link)
	lead.members, lead.route = b.members, b.r
	b.members, b.bytes = nil, 0
	return lead
}

// flushBatch queues d's partial batch: its max_wait passed (gen is the
// batch's generation), or, with anyBatch, whatever it holds now (the node
// stops, or the destination was edited or stopped).
func (n *Node) flushBatch(d *destination, gen uint64) {
	b := &d.batch
	b.mu.Lock()
	var lead *invocation
	if gen == b.gen || gen == anyBatch {
		lead = b.cut()
	}
	b.mu.Unlock()
	n.submitBatch(lead)
}

// anyBatch flushes whatever batch is gathering.
const anyBatch = ^uint64(0)

// flushBatches queues every partial batch, for a node that stops: their
// events are delivered (or parked) within the grace period rather than
// waiting for their max_wait.
func (n *Node) flushBatches() {
	for _, d := range n.destinations() {
		n.flushBatch(d, anyBatch)
	}
}

// flushEdited queues the partial batches of destinations edited between
// prev and next: they run as the destination now stands (its new batch
// settings, or event by event), rather than waiting for the old max_wait.
func (n *Node) flushEdited(prev, next *routing) {
	for name, r := range next.prepared {
		if old := prev.prepared[name]; old != nil && old.d.Revision != r.d.Revision && old.dest == r.dest {
			n.flushBatch(r.dest, anyBatch)
		}
	}
}

// submitBatch queues a batch invocation in its destination's lane.
func (n *Node) submitBatch(lead *invocation) {
	if lead == nil {
		return
	}
	r := lead.route
	lead.route = nil
	lead.dest.lane.submit(n.workers, lead, r.concurrency, n.runInv)
}

// queueBatch queues a batch parked before, with its members, as it was.
func (n *Node) queueBatch(r *route, gs []*executor.Globals, p *pending, events [][]byte, rec *parked) {
	lead := n.newInvocation(r.dest, gs[0], nil, trace.SpanContext{})
	lead.parked = rec
	for i, g := range gs {
		p.left.Add(1)
		n.work.Add(1)
		r.dest.held.Add(1)
		m := n.newInvocation(r.dest, g, p, trace.SpanContext{})
		m.data = events[i]
		lead.members = append(lead.members, m)
	}
	r.dest.lane.submit(n.workers, lead, r.concurrency, n.runInv)
}

// rebatch fits inv to its destination's delivery when that changed since
// it was queued: an event queued alone joins a batch, and a batch whose
// destination no longer batches is queued again event by event. It
// reports whether inv was handed on. Parked invocations resume as they
// were parked, with the code they ran.
func (n *Node) rebatch(inv *invocation, r *route) bool {
	if inv.parked != nil {
		return false
	}
	l, batches := batchOf(r.d)
	switch {
	case batches && inv.members == nil:
		n.addToBatch(r, inv, l)
		return true
	case !batches && inv.members != nil:
		for _, m := range inv.members {
			r.dest.lane.submit(n.workers, m, r.concurrency, n.runInv)
		}
		inv.free()
		return true
	}
	return false
}

// size is how many events the invocation delivers.
func (inv *invocation) size() int {
	if inv.members != nil {
		return len(inv.members)
	}
	return 1
}

// globals are the events' globals of a batch invocation.
func (inv *invocation) globals() []*executor.Globals {
	gs := make([]*executor.Globals, len(inv.members))
	for i, m := range inv.members {
		gs[i] = m.g
	}
	return gs
}

// eventData are the wire encodings of a batch invocation's events.
func (inv *invocation) eventData() [][]byte {
	out := make([][]byte, len(inv.members))
	for i, m := range inv.members {
		out[i] = m.data
	}
	return out
}

// skip counts every event of the invocation as skipped for reason.
func (inv *invocation) skip(reason string) {
	if inv.members == nil {
		inv.n.skip(inv.dest.name, reason, inv.g)
		return
	}
	for _, m := range inv.members {
		inv.n.skip(inv.dest.name, reason, m.g)
	}
}

// finishBatch lets go of a batch invocation's events.
func (inv *invocation) finishBatch() {
	for _, m := range inv.members {
		m.lost = m.lost || inv.lost
		m.finish()
	}
	inv.free()
}

// countItems counts a batch's outcome per event: the events the vendor
// refused are failed, the others succeeded, or filtered or masked when
// the batch left them out.
func (inv *invocation) countItems(res *executor.Result) {
	var by [executor.Parked + 1]int64
	for _, it := range res.Items {
		if int(it.Status) < len(by) {
			by[it.Status]++
		}
	}
	for s, k := range by {
		if k > 0 {
			inv.count(executor.Status(s).Metric(), k)
		}
	}
}
