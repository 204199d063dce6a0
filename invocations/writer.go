package invocations

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/resourcename"
)

// Record is what a data-plane node knows of one invocation when it ends;
// the Writer makes the stored record of it off the invocation's goroutine.
type Record struct {
	// Destination is "projects/{project}/destinations/{id}".
	Destination string
	Status      hogwirev1.InvocationStatus
	ErrorKind   string
	// Error must already be redacted.
	Error                string
	EventUUID, EventName string
	DistinctID, PersonID string
	Start                time.Time
	Duration             time.Duration
	Retries              int
	RetryTime            time.Time
	Fetches              []Fetch
	LogInvocationID      string
	NodeID               string
	// RerunOf is, for a rerun, the id of the invocation it ran again, and
	// Rerun the rerun's id (its records are indexed by it).
	RerunOf, Rerun string
	// Mapping is the destination's mapping the invocation ran.
	Mapping string
	// Revision is the destination's revision the invocation ran with (for a
	// rerun with the original revision, the kept revision it ran).
	Revision int64
}

// Fetch is one HTTP request of an invocation.
type Fetch struct {
	Method string
	// URL must be free of secrets already.
	URL      string
	Status   int
	Duration time.Duration
	Error    string
	Attempt  int
}

// WriterConfig configures a Writer.
type WriterConfig struct {
	// MaxBuffered bounds the records and events waiting to be written
	// (default 100,000); past it they are dropped and counted, so a slow
	// or absent NATS never holds up delivery.
	MaxBuffered int
	// Batch is how many are written at once at most (default 1000);
	// Interval how long one waits for company (default 200ms).
	Batch    int
	Interval time.Duration
	// IndexInterval is how long index entries wait for company after
	// their records are stored (default 1s): an event's records on every
	// destination, and a person's, end over more than one batch, and an
	// entry written for each batch was most of what NATS stored. Lookups
	// by event uuid, distinct id or rerun find a record that much later.
	IndexInterval time.Duration
}

type item struct {
	rec *Record
	// An event, when rec is nil.
	project, uuid string
	data          []byte
}

// Writer writes records and events in batches; Record and Event never
// block.
type Writer struct {
	s   *Store
	cfg WriterConfig
	// queue holds what waits to be written, under qmu; spare is the
	// emptied queue of an earlier batch, for the next. Record appends
	// under a lock and wakes Run only when a batch is full, rather than
	// sending each record on a channel: a send per record woke the
	// writer's goroutine, and its select, once per delivery.
	qmu     sync.Mutex
	queue   []item
	spare   []item
	wake    chan struct{}
	dropped atomic.Int64
	failed  atomic.Int64
	// free holds packs NATS is done with, for the next batch.
	mu   sync.Mutex
	free []*pack
	// recs holds records written, for Record to copy the next ones into;
	// under qmu.
	recs []*Record
	// ix gathers the index entries of the batches written since it was
	// last flushed, under ixMu.
	ixMu sync.Mutex
	ix   pendingIndex
	// The bounds of ix and of an index message (maxPendingKeys,
	// maxPendingRefs, maxEntryRefs, maxPackedIndex; tests lower them).
	maxKeys, maxRefs, maxEntry, maxPacked int
	// now tells which event uuids are recent enough for a packed subject
	// (tests move it).
	now func() time.Time
	// Bytes stored, by kind (see Stored).
	recordBytes, eventBytes, indexBytes atomic.Int64
}

// Stored returns the bytes of payload written so far: records, events and
// index entries.
func (w *Writer) Stored() (records, events, index int64) {
	return w.recordBytes.Load(), w.eventBytes.Load(), w.indexBytes.Load()
}

// NewWriter returns a Writer; Run writes what it is given.
func (s *Store) NewWriter(cfg WriterConfig) *Writer {
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = 100000
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	if cfg.IndexInterval <= 0 {
		cfg.IndexInterval = time.Second
	}
	return &Writer{s: s, cfg: cfg, wake: make(chan struct{}, 1),
		maxKeys: maxPendingKeys, maxRefs: maxPendingRefs, maxEntry: maxEntryRefs, maxPacked: maxPackedIndex,
		now: time.Now}
}

// Record queues a copy of r; false when the buffer was full and it was
// dropped. A nil Writer records nothing. The copy is one of the records
// written before when there is one, so that a node recording every
// delivery does not allocate a record for each: r, and its Fetches, are
// the caller's again once Record returns.
func (w *Writer) Record(r *Record) bool {
	if w == nil {
		return false
	}
	// One lock a record: the copy is made under it, into a written
	// record taken from the same lock's free list.
	w.qmu.Lock()
	if len(w.queue) >= w.cfg.MaxBuffered {
		w.qmu.Unlock()
		w.dropped.Add(1)
		return false
	}
	var c *Record
	if n := len(w.recs); n > 0 {
		c = w.recs[n-1]
		w.recs[n-1] = nil
		w.recs = w.recs[:n-1]
	} else {
		c = new(Record)
	}
	fetches := append(c.Fetches[:0], r.Fetches...)
	*c = *r
	c.Fetches = fetches
	w.queue = append(w.queue, item{rec: c})
	full := len(w.queue) == w.cfg.Batch
	w.qmu.Unlock()
	if full {
		w.wakeRun()
	}
	return true
}

// enqueue queues an event, unless MaxBuffered wait already.
func (w *Writer) enqueue(it item) bool {
	w.qmu.Lock()
	if len(w.queue) >= w.cfg.MaxBuffered {
		w.qmu.Unlock()
		w.dropped.Add(1)
		return false
	}
	w.queue = append(w.queue, it)
	full := len(w.queue) == w.cfg.Batch
	w.qmu.Unlock()
	if full {
		w.wakeRun()
	}
	return true
}

// wakeRun tells Run a batch is full.
func (w *Writer) wakeRun() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take returns what is queued, leaving the queue empty.
func (w *Writer) take() []item {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	q := w.queue
	w.queue, w.spare = w.spare[:0], nil
	return q
}

// maxSpare bounds the queue kept for reuse: one grown while NATS was
// away need not hold its memory after.
const maxSpare = 16 << 10

// giveBack keeps q, written now, as the next queue's room.
func (w *Writer) giveBack(q []item) {
	if cap(q) > maxSpare {
		return
	}
	clear(q)
	w.qmu.Lock()
	if w.spare == nil {
		w.spare = q[:0]
	}
	w.qmu.Unlock()
}

// writeAll writes q in batches of at most cfg.Batch; false when ctx ended
// first.
func (w *Writer) writeAll(ctx context.Context, q []item) bool {
	for len(q) > 0 {
		if ctx.Err() != nil {
			return false
		}
		n := min(len(q), w.cfg.Batch)
		w.write(ctx, q[:n])
		q = q[n:]
	}
	return true
}

// maxRecycledFetches bounds the fetches a recycled record keeps room for:
// a record with many more is rare, and need not hold memory after it.
const maxRecycledFetches = 16

// recycle keeps the records of a batch, encoded now, for Record to reuse.
// They are emptied before the lock, which Record waits for.
func (w *Writer) recycle(batch []item) {
	for i := range batch {
		r := batch[i].rec
		if r == nil {
			continue
		}
		// Let go of the strings it held, keep its fetches' room.
		var fetches []Fetch
		if cap(r.Fetches) <= maxRecycledFetches {
			fetches = r.Fetches[:0]
			clear(r.Fetches)
		}
		*r = Record{Fetches: fetches}
	}
	keep := 2 * w.cfg.Batch
	w.qmu.Lock()
	defer w.qmu.Unlock()
	for i := range batch {
		if r := batch[i].rec; r != nil && len(w.recs) < keep {
			w.recs = append(w.recs, r)
		}
		batch[i].rec = nil
	}
}

// Event queues an event's wire encoding to be kept with its records, once
// per event whatever the number of its destinations.
func (w *Writer) Event(project, uuid string, data []byte) bool {
	if w == nil || uuid == "" {
		return false
	}
	return w.enqueue(item{project: project, uuid: uuid, data: data})
}

// Dropped counts what was not written: dropped for a full buffer, or
// refused by NATS.
func (w *Writer) Dropped() int64 { return w.dropped.Load() + w.failed.Load() }

// Run writes batches until ctx ends, then what is still buffered (for at
// most 5 seconds).
func (w *Writer) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	warn := time.NewTicker(time.Minute)
	defer warn.Stop()
	var warned int64
	// index fires IndexInterval after entries began to wait: armed once a
	// batch left some, and not again until it has fired.
	index := time.NewTimer(w.cfg.IndexInterval)
	index.Stop()
	defer index.Stop()
	armed := false
	arm := func() {
		if !armed && w.indexPending() {
			index.Reset(w.cfg.IndexInterval)
			armed = true
		}
	}
	for {
		select {
		case <-warn.C:
			if d := w.Dropped(); d > warned {
				w.s.log.Warn("invocation records were not kept: the buffer was full or NATS refused them", "lost", d-warned, "total", d)
				warned = d
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			w.Flush(fctx)
			return
		case <-w.wake:
			w.writeQueued(ctx)
			arm()
		case <-t.C:
			w.writeQueued(ctx)
			arm()
		case <-index.C:
			armed = false
			w.flushIndex(ctx, false)
			arm()
		}
	}
}

// writeQueued writes what is queued now, once: what comes meanwhile waits
// for its batch to fill or the interval, rather than going out in a small
// batch of its own.
func (w *Writer) writeQueued(ctx context.Context) {
	q := w.take()
	w.writeAll(ctx, q)
	w.giveBack(q)
}

// Flush writes what is buffered now, until nothing is, and the index
// entries of everything written; for tests and shutdown.
func (w *Writer) Flush(ctx context.Context) {
	for {
		q := w.take()
		if len(q) == 0 {
			w.giveBack(q)
			break
		}
		ok := w.writeAll(ctx, q)
		w.giveBack(q)
		if !ok {
			break
		}
	}
	// What was stored is indexed even when ctx ended: the entries go out
	// without waiting, but for the last one's acknowledgement.
	w.flushIndex(ctx, true)
}

// maxPack bounds a stored message's size; an item larger than this is
// stored alone (NATS refuses what exceeds its max_payload).
const maxPack = 256 << 10

// pack is one message of the batch: every record of a batch with the same
// subject (destination, status, kind), or every event of a project.
type pack struct {
	subject string
	project string
	// buf is the message: each item's length, then the item.
	buf  []byte
	n    int
	refs []packRef
	f    jetstream.PubAckFuture
}

// packKey is what a pack's subject is made of, so that a batch makes
// each subject once, not once per record.
type packKey struct {
	// destination is the record's destination name, or the event's
	// project.
	destination string
	status      hogwirev1.InvocationStatus
	kind        string
	event       bool
}

// packRef says which index key points at an item of a pack.
type packRef struct {
	key   string
	item  int
	index byte // indexEvent, indexDistinct or indexRerun
	event bool
}

// pendingKey is one index entry waiting to be written.
type pendingKey struct {
	project string
	key     string
	index   byte // indexEvent, indexDistinct or indexRerun
	// waited counts the flushes an entry of a stored event alone has
	// waited through for its records (see flushIndex).
	waited int
}

// newPack returns an empty pack, one of an earlier batch when one is
// free.
func (w *Writer) newPack(subject, project string) *pack {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.free); n > 0 {
		p := w.free[n-1]
		w.free = w.free[:n-1]
		p.subject, p.project = subject, project
		return p
	}
	return &pack{subject: subject, project: project}
}

// reuse keeps the packs of a batch NATS has acknowledged, with their
// message buffers and refs, for the next batches, which then allocate
// nothing for their messages. It keeps only as many as a batch usually
// needs.
func (w *Writer) reuse(packs []*pack) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range packs {
		if len(w.free) >= maxFreeBuffers {
			return
		}
		if cap(p.buf) > 2*maxPack {
			continue
		}
		clear(p.refs)
		*p = pack{buf: p.buf[:0], refs: p.refs[:0]}
		w.free = append(w.free, p)
	}
}

// pendingIndex holds the index entries of the batches written since the
// last flushIndex: one entry per key, with every ref to it. Its room is
// kept from one flush to the next: they index thousands of keys, and
// growing these anew each time was most of what the writer allocated.
type pendingIndex struct {
	// keys holds the number of each key's entry in order, by project
	// and kind of index (indexSlot): a lookup hashes the key alone,
	// where a map keyed by project, kind and key hashed all three, and
	// that hashing was most of add's cost.
	keys  map[string]*[numIndexes]map[string]int
	order []pendingKey
	refs  []entryRef
	// Where flushIndex gathers each entry's refs, and marks those that
	// wait and keeps them (carry, carryRefs) for after.
	start     []int
	next      []int
	byEntry   []ref
	wait      []bool
	carry     []carried
	carryRefs []ref
	// Where flushIndex groups packed entries (group, groups, gslot,
	// gstart, byGroup) and makes its messages (subjects, data, msgs,
	// scratch).
	group    []int
	groups   map[packedKey]int
	gslot    []int64
	gstart   []int
	byGroup  []int
	subjects []byte
	data     []byte
	msgs     []indexMsg
	scratch  []byte
}

// carried is an entry that waits through a flush, with its count of refs
// in carryRefs.
type carried struct {
	k pendingKey
	n int
}

// numIndexes is the number of kinds of index: indexEvent, indexDistinct
// and indexRerun.
const numIndexes = 3

// indexSlot is where kind's keys are in a project's maps.
func indexSlot(kind byte) int {
	switch kind {
	case indexEvent:
		return 0
	case indexDistinct:
		return 1
	case indexRerun:
		return 2
	}
	panic(fmt.Sprintf("invocations: unknown index kind %q", kind))
}

// entryRef is a ref with the number of its index entry.
type entryRef struct {
	entry int
	ref   ref
}

// add adds p's refs, stored at seq, to their entries.
func (x *pendingIndex) add(p *pack, seq uint64) {
	if len(p.refs) == 0 {
		return
	}
	pk := x.project(p.project)
	for _, r := range p.refs {
		e := x.entry(pk, pendingKey{project: p.project, key: r.key, index: r.index})
		x.refs = append(x.refs, entryRef{e, ref{seq: seq, item: r.item, event: r.event}})
	}
}

// project returns the maps of project's keys, adding them when it has
// none.
func (x *pendingIndex) project(project string) *[numIndexes]map[string]int {
	if x.keys == nil {
		x.keys = make(map[string]*[numIndexes]map[string]int)
	}
	pk := x.keys[project]
	if pk == nil {
		pk = new([numIndexes]map[string]int)
		x.keys[project] = pk
	}
	return pk
}

// entry returns the number of k's entry, adding it when it has none; pk
// holds the keys of k's project.
func (x *pendingIndex) entry(pk *[numIndexes]map[string]int, k pendingKey) int {
	m := pk[indexSlot(k.index)]
	if m == nil {
		m = make(map[string]int)
		pk[indexSlot(k.index)] = m
	}
	e, ok := m[k.key]
	if !ok {
		e = len(x.order)
		m[k.key] = e
		x.order = append(x.order, k)
	}
	return e
}

// reset empties x once its entries are written, but for those carried,
// which it adds back with their refs.
func (x *pendingIndex) reset() {
	for p, pk := range x.keys {
		used := false
		for _, m := range pk {
			if len(m) > 0 {
				used = true
				clear(m)
			}
		}
		if !used {
			// No entry since the last flush: a project gone quiet
			// does not keep its maps.
			delete(x.keys, p)
		}
	}
	clear(x.order)
	clear(x.refs)
	x.order, x.refs = x.order[:0], x.refs[:0]
	rs := x.carryRefs
	for _, c := range x.carry {
		e := x.entry(x.project(c.k.project), c.k)
		for _, r := range rs[:c.n] {
			x.refs = append(x.refs, entryRef{e, r})
		}
		rs = rs[c.n:]
	}
	clear(x.carry)
	x.carry, x.carryRefs = x.carry[:0], x.carryRefs[:0]
}

// Bounds of the index entries waiting for IndexInterval: past either,
// they are written at once. They bound the writer's memory (a pending
// ref and key cost about 100 bytes) and, with maxEntryRefs, a message's
// size.
const (
	maxPendingKeys = 50000
	maxPendingRefs = 200000
)

// maxEntryRefs bounds the refs of one index message (a hot key's refs
// over IndexInterval go out in several, each at most a few tens of KB):
// lookups read every message of the key's subject anyway.
const maxEntryRefs = 8192

// indexPending reports whether index entries wait to be written.
func (w *Writer) indexPending() bool {
	w.ixMu.Lock()
	defer w.ixMu.Unlock()
	return len(w.ix.order) > 0
}

// maxFreeBuffers bounds the packs kept between batches: a batch
// makes one message per destination, status and kind, and per project.
const maxFreeBuffers = 64

// write stores a batch: records and events packed by subject; once their
// sequences are known, what points at them waits for flushIndex, which
// write calls itself when too much waits.
func (w *Writer) write(ctx context.Context, batch []item) {
	js := w.s.js
	open := map[packKey]*pack{}
	var packs []*pack
	// packFor returns the open pack of k, p, for an item of size bytes:
	// a new one when it has none or the item would not fit. subject makes
	// the new one's subject. The caller looks p up, once an item.
	packFor := func(k packKey, p *pack, size int, project string, subject func() string) *pack {
		if p == nil || (p.n > 0 && len(p.buf)+binary.MaxVarintLen32+size > maxPack) {
			p = w.newPack(subject(), project)
			open[k] = p
			packs = append(packs, p)
		}
		return p
	}
	var enc []byte
	for _, it := range batch {
		if it.rec == nil {
			if !resourcename.ValidID(it.project) {
				continue
			}
			k := packKey{destination: it.project, event: true}
			p := packFor(k, open[k], len(it.data), it.project,
				func() string { return eventPrefix + it.project })
			p.buf = binary.AppendUvarint(p.buf, uint64(len(it.data)))
			p.buf = append(p.buf, it.data...)
			p.n++
			p.refs = append(p.refs, packRef{index: indexEvent, key: it.uuid, item: p.n - 1, event: true})
			continue
		}
		r := it.rec
		k := packKey{destination: r.Destination, status: r.Status, kind: r.ErrorKind}
		var project, dest string
		cur := open[k]
		if cur != nil {
			project = cur.project
		} else {
			var err error
			if project, dest, err = resourcename.ParseDestination(r.Destination); err != nil || project == resourcename.Wildcard {
				continue
			}
		}
		var rerun string
		if r.Rerun != "" {
			rerun = RerunName(project, r.Rerun)
		}
		var ok bool
		if enc, ok = appendRecord(enc[:0], r, rerun); !ok {
			w.failed.Add(1)
			continue
		}
		p := packFor(k, cur, len(enc), project, func() string {
			if dest == "" {
				_, dest, _ = resourcename.ParseDestination(r.Destination)
			}
			return recordSubject(project, dest, r.Status, r.ErrorKind)
		})
		p.buf = binary.AppendUvarint(p.buf, uint64(len(enc)))
		p.buf = append(p.buf, enc...)
		p.n++
		if k := r.EventUUID; k != "" {
			p.refs = append(p.refs, packRef{index: indexEvent, key: k, item: p.n - 1})
		}
		if k := r.DistinctID; k != "" {
			p.refs = append(p.refs, packRef{index: indexDistinct, key: k, item: p.n - 1})
		}
		if k := r.Rerun; k != "" {
			p.refs = append(p.refs, packRef{index: indexRerun, key: k, item: p.n - 1})
		}
	}
	w.recycle(batch)
	for _, p := range packs {
		f, err := js.PublishAsync(p.subject, p.buf)
		if err != nil {
			w.failed.Add(int64(p.n))
			continue
		}
		p.f = f
		if strings.HasPrefix(p.subject, eventPrefix) {
			w.eventBytes.Add(int64(len(p.buf)))
		} else {
			w.recordBytes.Add(int64(len(p.buf)))
		}
	}
	// The refs of each pack NATS acknowledged wait for the index flush,
	// with those of the batches before, in the order they were stored:
	// one entry per key then serves the records of one event (one per
	// destination) and of one person that ended close together.
	for i, p := range packs {
		if p.f == nil {
			continue
		}
		select {
		case ack := <-p.f.Ok():
			w.ixMu.Lock()
			w.ix.add(p, ack.Sequence)
			w.ixMu.Unlock()
		case <-p.f.Err():
			w.failed.Add(int64(p.n))
		case <-ctx.Done():
			for _, p := range packs[i:] {
				w.failed.Add(int64(p.n))
			}
			return
		}
	}
	// NATS is done with every message: their buffers serve the next
	// batch.
	w.reuse(packs)
	if w.indexOver(1) {
		// Entries of stored events whose records are not written yet
		// wait on through this flush as through IndexInterval's: at a
		// node's full rate the bound is reached about every second,
		// while the events its destinations hold (thousands) are
		// routed, and writing theirs alone cost an index message more
		// for each. They are bounded all the same: when they alone
		// fill half the room, everything goes.
		w.flushIndex(ctx, false)
		if w.indexOver(2) {
			w.flushIndex(ctx, true)
		}
	}
}

// indexOver reports whether the index entries waiting fill 1/div of
// their room (maxKeys or maxRefs).
func (w *Writer) indexOver(div int) bool {
	w.ixMu.Lock()
	defer w.ixMu.Unlock()
	return len(w.ix.order) >= w.maxKeys/div || len(w.ix.refs) >= w.maxRefs/div
}

// flushIndex writes the index entries waiting: one entry per key, of
// every ref to it written since the last flush (more for a key with more
// than maxEntryRefs), in a message of its own, or with the others of its
// packed subject for an event uuid (see indexPacked). Unless all, an entry that points at a stored event
// alone waits on, for up to eventWaits flushes: the event is stored when
// it is routed and its records when its destinations are done with it,
// under load often a flush or more later, and an entry for each was most
// of the index messages of a destination alone in its project. The
// records' entry then holds the event's ref too; a rerun needs records,
// so none waits for an event that waits.
func (w *Writer) flushIndex(ctx context.Context, all bool) {
	w.ixMu.Lock()
	defer w.ixMu.Unlock()
	x := &w.ix
	if len(x.order) == 0 {
		return
	}
	order, refs := x.order, x.refs
	// Entries that wait are put back once the rest is written.
	defer x.reset()
	// Gather each entry's refs, keeping their order: start[e] is where
	// entry e's begin in byEntry.
	start := append(x.start[:0], make([]int, len(order)+1)...)
	x.start = start
	for _, r := range refs {
		start[r.entry+1]++
	}
	for e := range order {
		start[e+1] += start[e]
	}
	byEntry := append(x.byEntry[:0], make([]ref, len(refs))...)
	x.byEntry = byEntry
	next := append(x.next[:0], start[:len(order)]...)
	x.next = next
	for _, r := range refs {
		byEntry[next[r.entry]] = r.ref
		next[r.entry]++
	}
	// wait marks the entries that wait.
	wait := append(x.wait[:0], make([]bool, len(order))...)
	x.wait = wait
	if !all {
		for i := range order {
			k := &order[i]
			rs := byEntry[start[i]:start[i+1]]
			if k.waited >= eventWaits || slices.ContainsFunc(rs, func(r ref) bool { return !r.event }) {
				continue
			}
			wait[i] = true
			c := carried{k: *k, n: len(rs)}
			c.k.waited++
			x.carry = append(x.carry, c)
			x.carryRefs = append(x.carryRefs, rs...)
		}
	}
	// Entries of event uuids that hold a time recent enough go, many to
	// a message, to their slot and bucket's subject (see indexPacked):
	// group[i] is entry i's group of them, or -1.
	now := w.now()
	group, gslot := x.group[:0], x.gslot[:0]
	if x.groups == nil {
		x.groups = make(map[packedKey]int)
	}
	clear(x.groups)
	for i := range order {
		g := -1
		if k := &order[i]; !wait[i] && k.index == indexEvent {
			if slot, ok := packedSlot(k.key, now); ok {
				pk := packedKey{project: k.project, slot: slot, bucket: keyHash(k.key) >> (64 - packedBucketBits)}
				var seen bool
				if g, seen = x.groups[pk]; !seen {
					g = len(x.groups)
					x.groups[pk] = g
					gslot = append(gslot, slot)
				}
			}
		}
		group = append(group, g)
	}
	x.group, x.gslot = group, gslot
	// Each group's entries in order, as refs are gathered above:
	// byGroup[gstart[g]:gstart[g+1]].
	gstart := append(x.gstart[:0], make([]int, len(x.groups)+1)...)
	x.gstart = gstart
	for _, g := range group {
		if g >= 0 {
			gstart[g+1]++
		}
	}
	for g := range len(x.groups) {
		gstart[g+1] += gstart[g]
	}
	byGroup := append(x.byGroup[:0], make([]int, gstart[len(x.groups)])...)
	x.byGroup = byGroup
	gnext := append(x.next[:0], gstart[:len(x.groups)]...)
	x.next = gnext
	for i, g := range group {
		if g >= 0 {
			byGroup[gnext[g]] = i
			gnext[g]++
		}
	}

	// Every message of the flush is made before any is published, its
	// subject in one buffer and its data in another: a string and a
	// slice each were most of what a flush allocated.
	sb, db, msgs := x.subjects[:0], x.data[:0], x.msgs[:0]
	end := func() { msgs = append(msgs, indexMsg{subject: len(sb), data: len(db)}) }
	for i := range order {
		if wait[i] || group[i] >= 0 {
			continue
		}
		k := &order[i]
		for rs := byEntry[start[i]:start[i+1]]; len(rs) > 0; {
			n := min(len(rs), w.maxEntry)
			sb = appendIndexSubject(sb, k.project, k.index, k.key)
			db = appendEntry(db, k.key, rs[:n])
			end()
			rs = rs[n:]
		}
	}
	e := x.scratch[:0]
	for g := range len(x.groups) {
		entries := byGroup[gstart[g]:gstart[g+1]]
		first := &order[entries[0]]
		slot := gslot[g]
		from := len(db)
		for _, i := range entries {
			k := &order[i]
			for rs := byEntry[start[i]:start[i+1]]; len(rs) > 0; {
				n := min(len(rs), w.maxEntry)
				e = appendEntry(e[:0], k.key, rs[:n])
				rs = rs[n:]
				if len(db) > from && len(db)-from+binary.MaxVarintLen32+len(e) > w.maxPacked {
					sb = appendPackedSubject(sb, first.project, slot, first.key)
					end()
					from = len(db)
				}
				db = binary.AppendUvarint(db, uint64(len(e)))
				db = append(db, e...)
			}
		}
		sb = appendPackedSubject(sb, first.project, slot, first.key)
		end()
	}
	x.subjects, x.data, x.msgs, x.scratch = sb, db, msgs, e

	// The index entries are many (about one per event and one per person
	// written) and small: acknowledging each message cost the writer and
	// the server more than storing it. They go out as plain NATS
	// messages, which the stream stores all the same, and only the last
	// one is acknowledged: the server handles one connection's messages
	// in order, so its acknowledgement says that the stream took every
	// message before it too. What the stream refused without saying is
	// not counted in Dropped.
	subjects := string(sb)
	var s0, d0 int
	for i, m := range msgs {
		subject, data := subjects[s0:m.subject], db[d0:m.data]
		s0, d0 = m.subject, m.data
		w.indexBytes.Add(int64(len(data)))
		if i < len(msgs)-1 {
			// Publish copies the data: one buffer serves them all.
			if err := w.s.nc.Publish(subject, data); err != nil {
				w.failed.Add(1)
			}
			continue
		}
		// The acknowledged publish may send its message again after
		// flushIndex returned: it has a copy of its own.
		f, err := w.s.js.PublishAsync(subject, slices.Clone(data))
		if err != nil {
			w.failed.Add(1)
			return
		}
		select {
		case <-f.Ok():
		case <-f.Err():
			w.failed.Add(1)
		case <-ctx.Done():
		}
	}
}

// indexMsg is a message of an index flush: where its subject and its data
// end in the flush's buffers.
type indexMsg struct{ subject, data int }

// packedKey is a packed index subject: a project's slot and bucket.
type packedKey struct {
	project string
	slot    int64
	bucket  uint64
}

// maxPackedIndex bounds a packed index message's data (but for one
// entry, which maxEntryRefs bounds).
const maxPackedIndex = 64 << 10

// eventWaits is how many flushes an index entry of a stored event alone
// waits for its records' (see flushIndex).
const eventWaits = 5

// ref is where an item is stored: the message's sequence, and its place
// in the message.
type ref struct {
	seq   uint64
	item  int
	event bool
}

func (r ref) before(o ref) bool { return r.seq < o.seq || r.seq == o.seq && r.item < o.item }

// appendEntry appends an index entry to buf: the key, then each item's
// sequence (as the difference from the previous one) and place, and
// whether it is an event.
func appendEntry(buf []byte, key string, refs []ref) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	buf = append(buf, key...)
	var prev uint64
	for _, r := range refs {
		buf = binary.AppendUvarint(buf, r.seq-prev)
		v := uint64(r.item) << 1
		if r.event {
			v |= 1
		}
		buf = binary.AppendUvarint(buf, v)
		prev = r.seq
	}
	return buf
}

// decodeEntry appends to refs those of an entry appendEntry made for key.
func decodeEntry(d []byte, key string, refs []ref) []ref {
	n, k := binary.Uvarint(d)
	if k <= 0 || uint64(len(d)-k) < n || string(d[k:k+int(n)]) != key {
		return refs
	}
	d = d[k+int(n):]
	var prev uint64
	for len(d) > 0 {
		delta, k1 := binary.Uvarint(d)
		if k1 <= 0 {
			break
		}
		v, k2 := binary.Uvarint(d[k1:])
		if k2 <= 0 {
			break
		}
		prev += delta
		refs = append(refs, ref{seq: prev, item: int(v >> 1), event: v&1 == 1})
		d = d[k1+k2:]
	}
	return refs
}

// decodeEntries appends to refs those of the entries for key in a packed
// index message: each entry appendEntry made, after its length.
func decodeEntries(d []byte, key string, refs []ref) []ref {
	for len(d) > 0 {
		n, k := binary.Uvarint(d)
		if k <= 0 || uint64(len(d)-k) < n {
			break
		}
		refs = decodeEntry(d[k:k+int(n)], key, refs)
		d = d[k+int(n):]
	}
	return refs
}

// unpack calls fn with each item of a stored message, in order, until fn
// returns false.
func unpack(data []byte, fn func(i int, item []byte) bool) {
	for i := 0; len(data) > 0; i++ {
		n, k := binary.Uvarint(data)
		if k <= 0 || uint64(len(data)-k) < n {
			return
		}
		if !fn(i, data[k:k+int(n)]) {
			return
		}
		data = data[k+int(n):]
	}
}
