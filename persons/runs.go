package persons

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ProcessRuns processes runs of events as ProcessRun processes each, the
// runs at once on up to workers goroutines: the events of each run in
// order, those of different runs in any order. Each run's events must be
// of other distinct ids than the other runs' (a run holding a merge, which
// joins two distinct ids, must be the only one). It returns each run's
// profiles as ProcessRun would.
//
// The runs that only set and unset properties of their distinct id are
// processed together first: the persons they need read (those they change
// nothing in, which destinations see as stored, and those this store has
// not cached) are read in one request, and those they change are written
// in one atomic batch whose every write is the compare-and-swap ProcessRun
// would make (a new distinct id's link and person only while neither was
// ever written). A message of a hundred users then costs a round trip or
// two instead of a hundred. When one write of the batch fails (a distinct
// id stored already, a person changed by another node), none is written,
// and each run of the batch is processed on its own, as ProcessRun would.
func (s *Store) ProcessRuns(ctx context.Context, project string, runs [][]*Event, reads [][]bool, workers int) ([][]*Profile, error) {
	kv, err := s.bucket(ctx, project, true)
	if err != nil {
		return nil, err
	}
	plans := make([][]plan, len(runs))
	for i, evs := range runs {
		plans[i] = plansOf(evs, s.log)
	}
	out := make([][]*Profile, len(runs))
	if err := s.writeTogether(ctx, kv, project, runs, plans, reads, out); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	work := func() {
		defer wg.Done()
		for r := int(next.Add(1) - 1); r < len(runs); r = int(next.Add(1) - 1) {
			if out[r] != nil || len(runs[r]) == 0 {
				continue
			}
			profs, err := s.processRun(ctx, kv, project, runs[r], plans[r], reads[r])
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("distinct id %q: %w", runs[r][0].DistinctID, err)
				}
				mu.Unlock()
				cancel()
				return
			}
			out[r] = profs
		}
	}
	for range min(max(workers, 1), len(runs)) {
		wg.Add(1)
		go work()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// togetherWrite is the write of one run that writeTogether makes.
type togetherWrite struct {
	run int
	// p is the person to store, over revision rev (0: a new person,
	// stored with the link of its distinct id).
	p   *Person
	rev uint64
	// after is the person after each event of the run.
	after []*Person
	// changed is set when the run changes the person; a run that does
	// not is of a person cached (rev not 0), which destinations see.
	changed bool
}

// maxTogetherMsgs bounds the messages of one atomic batch of
// writeTogether, well within the server's limit (1,000 by default), and
// the keys of one read of readTogether.
const maxTogetherMsgs = 256

// writeTogether processes the runs whose persons need no read of their
// own (see ProcessRuns) and sets out[i] for each run done. It reads in one
// request the persons that runs change nothing in (cached by this store,
// read to see them as stored) and those it has not cached of distinct ids
// it knows; then it writes, in atomic batches, the runs that change their
// person. It reads or writes nothing unless at least two runs would: one
// alone costs what ProcessRun's does. A batch that fails leaves its runs
// to ProcessRun, and the writes of the next messages' runs too for a
// while (see togetherPause), as conflicts are likely to recur.
func (s *Store) writeTogether(ctx context.Context, kv jetstream.KeyValue, project string, runs [][]*Event, plans [][]plan, reads [][]bool, out [][]*Profile) error {
	if len(runs) < 2 {
		return nil
	}
	var ws, confirms []*togetherWrite
	var fetches []togetherFetch
	// Two distinct ids of one person cannot both write it in one batch:
	// the second write's swap would fail the batch.
	ids := map[string]bool{}
	plan := func(i int, e entry[Person]) *togetherWrite {
		w := s.planTogether(project, runs[i], plans[i], reads[i], e)
		switch {
		case w == nil || ids[w.p.ID]:
			return nil
		case w.changed:
			ids[w.p.ID] = true
			ws = append(ws, w)
		}
		w.run = i
		return w
	}
	for i, evs := range runs {
		if len(evs) == 0 || !simpleRun(evs, plans[i]) {
			continue
		}
		d := evs[0].DistinctID
		if e := s.cached(project, d); e.v != nil {
			if w := plan(i, e); w != nil && !w.changed {
				confirms = append(confirms, w)
			}
		} else if pid, seen := s.ids.get(cacheKey(project, d)); seen {
			fetches = append(fetches, togetherFetch{run: i, pid: pid})
		} else if s.claims.Load() < 0 {
			fetches = append(fetches, togetherFetch{run: i, pid: DerivedID(project, d), derived: true})
		} else {
			plan(i, entry[Person]{})
		}
	}
	if len(confirms)+len(fetches) >= 2 {
		if err := s.readTogether(ctx, kv, project, confirms, fetches, plan, runs, reads, out); err != nil {
			return err
		}
	}
	if len(ws) < 2 || !s.atomicOK(project) {
		return nil
	}
	if p := s.togetherPause.Load(); p > 0 {
		s.togetherPause.CompareAndSwap(p, p-1)
		return nil
	}
	for len(ws) > 0 {
		n, msgs := 0, 0
		for n < len(ws) && msgs+2 <= maxTogetherMsgs {
			msgs += 1 + boolInt(ws[n].rev == 0)
			n++
		}
		switch err := s.commitTogether(ctx, project, ws[:n]); err {
		case nil:
		case errConflict, errNoBatch:
			s.togetherPause.Store(togetherPause)
			return nil
		default:
			return err
		}
		for _, w := range ws[:n] {
			if w.rev == 0 {
				s.noteClaim(true)
			}
			if err := s.profiles(ctx, kv, w, runs, reads, out); err != nil {
				return err
			}
		}
		ws = ws[n:]
	}
	return nil
}

// togetherFetch is a run whose person readTogether reads: pid's, which
// this store has linked the run's distinct id to, or, with derived, the
// person its id is derived from (see Store.derived).
type togetherFetch struct {
	run     int
	pid     string
	derived bool
}

// profiles sets out[w.run] to the profiles of w's run, done.
func (s *Store) profiles(ctx context.Context, kv jetstream.KeyValue, w *togetherWrite, runs [][]*Event, reads [][]bool, out [][]*Profile) error {
	profs := make([]*Profile, len(runs[w.run]))
	for i, ev := range runs[w.run] {
		if !reads[w.run][i] {
			continue
		}
		prof, err := s.profile(ctx, kv, ev, w.after[i])
		if err != nil {
			return err
		}
		profs[i] = prof
	}
	out[w.run] = profs
	return nil
}

// readTogether reads in one request (per maxTogetherMsgs keys) the
// persons of confirms, runs that change nothing in the persons this
// store has cached, and of fetches. A confirmed run whose person is
// stored still at the revision cached is done: what destinations see is
// the stored person, read, as update reads it. A fetched person that
// holds its run's distinct id is cached, as resolve caches it, and its
// run planned with plan (done when it changes nothing, as just read).
// Other runs are left to ProcessRun.
func (s *Store) readTogether(ctx context.Context, kv jetstream.KeyValue, project string, confirms []*togetherWrite, fetches []togetherFetch,
	plan func(int, entry[Person]) *togetherWrite, runs [][]*Event, reads [][]bool, out [][]*Profile) error {
	prefix := "$KV." + s.cfg.Bucket + project + "."
	keys := make([]string, 0, len(confirms)+len(fetches))
	for _, w := range confirms {
		keys = append(keys, prefix+personKey(w.p.ID))
	}
	for _, f := range fetches {
		keys = append(keys, prefix+personKey(f.pid))
	}
	got := make(map[string]storedValue, len(keys))
	for from := 0; from < len(keys); from += maxTogetherMsgs {
		if err := s.lastValues(ctx, project, keys[from:min(from+maxTogetherMsgs, len(keys))], got); err != nil {
			return err
		}
	}
	for _, w := range confirms {
		if v, ok := got[prefix+personKey(w.p.ID)]; ok && v.rev == w.rev {
			if err := s.profiles(ctx, kv, w, runs, reads, out); err != nil {
				return err
			}
		}
	}
	for _, f := range fetches {
		v, ok := got[prefix+personKey(f.pid)]
		if !ok {
			continue
		}
		d := runs[f.run][0].DistinctID
		p := new(Person)
		if err := json.Unmarshal(v.data, p); err != nil {
			return fmt.Errorf("persons: key %s: %w", personKey(f.pid), err)
		}
		if p.MergedInto != "" || !slices.Contains(p.DistinctIDs, d) {
			continue // as resolve, read on its own
		}
		if f.derived {
			s.ids.put(cacheKey(project, d), f.pid)
			s.noteClaim(false)
		}
		// The cache keeps a copy: callers may modify what they read.
		s.people.put(project, p.clone(), v.rev)
		if w := plan(f.run, entry[Person]{p, v.rev}); w != nil && !w.changed {
			if err := s.profiles(ctx, kv, w, runs, reads, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// togetherPause is how many messages after a failed batch of
// writeTogether write their runs one by one.
const togetherPause = 16

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// planTogether applies a run's updates to its person as stored at e (a
// person this store has cached or just read), or to a new person (e.v
// nil: a distinct id this store has not seen, while new distinct ids
// prevail, see claimOrRead), when the run only sets and unsets properties
// of its distinct id. It returns nil for a new person that the run does
// not store, and for a run that changes nothing in a person that no
// destination sees.
func (s *Store) planTogether(project string, evs []*Event, plans []plan, reads []bool, e entry[Person]) *togetherWrite {
	d := evs[0].DistinctID
	w := &togetherWrite{after: make([]*Person, len(evs))}
	if e.v != nil {
		w.p, w.rev = e.v.clone(), e.rev
	} else {
		creates := false
		for i := range plans {
			creates = creates || plans[i].changes.creates()
		}
		if !creates {
			return nil
		}
		w.p = s.empty(project, d)
		w.p.CreatedAt = s.cfg.Now().UTC()
	}
	changed := false
	for i, ev := range evs {
		if !applied(w.p.Applied, ev.UUID) && plans[i].changes.apply(w.p) {
			w.p.Version++
			w.p.Applied = markApplied(w.p.Applied, ev.UUID)
			changed = true
		}
		w.after[i] = w.p
		if reads[i] && i < len(evs)-1 {
			w.after[i] = w.p.clone()
		}
	}
	if !changed {
		read := false
		for _, r := range reads {
			read = read || r
		}
		if w.rev == 0 || !read {
			return nil
		}
	}
	w.changed = changed
	return w
}

// commitTogether stores the persons of ws in one atomic batch, each over
// its revision, and a new one (rev 0) with its distinct id's link, both
// only while never written, as commitNew does for one. It reports
// errConflict when a condition failed, errNoBatch when the stream
// refused the batch; nothing is stored then.
func (s *Store) commitTogether(ctx context.Context, project string, ws []*togetherWrite) error {
	prefix := "$KV." + s.cfg.Bucket + project + "."
	var msgs []batchMsg
	// at[i] is the index in msgs of ws[i]'s person.
	at := make([]int, len(ws))
	for i, w := range ws {
		if w.rev == 0 {
			msgs = append(msgs, batchMsg{prefix + distinctKey(w.p.DistinctIDs[0]), []byte(`"` + w.p.ID + `"`), 0})
		}
		b, err := encode(w.p)
		if err != nil {
			return err
		}
		at[i] = len(msgs)
		msgs = append(msgs, batchMsg{prefix + personKey(w.p.ID), b, w.rev})
	}
	last, err := s.publishBatch(ctx, msgs)
	if err != nil {
		return s.batchFailed(project, "persons", err)
	}
	// An atomic batch is stored whole, in order, under consecutive
	// sequences, the commit's last: each person's revision follows from
	// it. Were it not so, a wrong revision cached would fail the next
	// swap, which reads the person then.
	for i, w := range ws {
		if w.rev == 0 {
			s.ids.put(cacheKey(project, w.p.DistinctIDs[0]), w.p.ID)
		}
		s.people.put(project, w.p, last-uint64(len(msgs)-1-at[i]))
	}
	return nil
}

// storedValue is a key's value as stored, at revision rev.
type storedValue struct {
	rev  uint64
	data []byte
}

// lastValues reads the last values of keys (subjects of the bucket's
// stream) in one direct get of the stream, as key-value reads are made,
// into got, by subject. A key deleted, purged or never written is left
// out, as is every key when the stream answers no direct gets: its run
// is then read on its own.
func (s *Store) lastValues(ctx context.Context, project string, subjects []string, got map[string]storedValue) error {
	st, err := s.stream(ctx, project)
	if err != nil {
		return err
	}
	if !st.CachedInfo().Config.AllowDirect {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	req, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
		Batch     int      `json:"batch"`
	}{subjects, len(subjects)})
	if err != nil {
		return err
	}
	nc := s.cfg.Conn
	inbox := nc.NewInbox()
	// A channel of its own: a synchronous subscription's holds 65,536
	// messages. One more than the keys for the end of the answer; the
	// server sends no more (batch).
	ch := make(chan *nats.Msg, len(subjects)+1)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return fmt.Errorf("persons: reading persons: %w", err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+st.CachedInfo().Config.Name, inbox, req); err != nil {
		return fmt.Errorf("persons: reading persons: %w", err)
	}
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return fmt.Errorf("persons: reading persons: %w", ctx.Err())
		}
		// A status ends the answer: 204 after the last message, 404 when
		// no key has a value, others (503: no responders) for a stream
		// that cannot answer.
		if m.Header.Get("Status") != "" {
			return nil
		}
		if m.Header.Get(kvOperation) != "" {
			continue
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return fmt.Errorf("persons: reading persons: a message without its sequence: %w", err)
		}
		got[m.Header.Get("Nats-Subject")] = storedValue{seq, m.Data}
	}
}
