package persons

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// ProcessRuns processes runs of events as ProcessRun processes each, the
// runs at once on up to workers goroutines: the events of each run in
// order, those of different runs in any order. Each run's events must be
// of other distinct ids than the other runs' (a run holding a merge, which
// joins two distinct ids, must be the only one). It returns each run's
// profiles as ProcessRun would.
//
// The runs whose writes need no read (a new distinct id, or a person this
// store wrote or read last, changed by set and unset properties) are
// written together first, in one atomic batch whose every write is the
// compare-and-swap ProcessRun would make: a message of a hundred users
// costs one round trip instead of a hundred. When one of them fails (a
// distinct id stored already, a person changed by another node), none is
// written, and each run is processed on its own, as ProcessRun would.
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
// writeTogether, well within the server's limit (1,000 by default).
const maxTogetherMsgs = 256

// writeTogether writes the runs whose writes need no read (see
// ProcessRuns) in atomic batches, and sets out[i] for each run written.
// It writes nothing unless at least two runs qualify: one write alone
// costs what ProcessRun's does. A batch that fails leaves its runs to
// ProcessRun, and the next messages' runs too for a while (see
// togetherPause), as conflicts are likely to recur.
func (s *Store) writeTogether(ctx context.Context, kv jetstream.KeyValue, project string, runs [][]*Event, plans [][]plan, reads [][]bool, out [][]*Profile) error {
	if len(runs) < 2 || !s.atomicOK(project) {
		return nil
	}
	if p := s.togetherPause.Load(); p > 0 {
		s.togetherPause.CompareAndSwap(p, p-1)
		return nil
	}
	var ws, confirms []*togetherWrite
	// Two distinct ids of one person cannot both write it in one batch:
	// the second write's swap would fail the batch.
	ids := map[string]bool{}
	for i, evs := range runs {
		w := s.planTogether(project, evs, plans[i], reads[i])
		switch {
		case w == nil || ids[w.p.ID]:
		case !w.changed:
			confirms = append(confirms, w)
		default:
			ids[w.p.ID] = true
			ws = append(ws, w)
		}
		if w != nil {
			w.run = i
		}
	}
	if len(confirms) >= 2 {
		if err := s.confirmTogether(ctx, kv, project, confirms, runs, reads, out); err != nil {
			return err
		}
	}
	if len(ws) < 2 {
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

// confirmTogether reads the persons of runs that change nothing in the
// persons this store has cached, in one request, and sets out for each
// run whose person is stored still at the revision cached: what
// destinations see is then the stored person, read, as update reads it.
// The other runs are left to ProcessRun.
func (s *Store) confirmTogether(ctx context.Context, kv jetstream.KeyValue, project string, ws []*togetherWrite, runs [][]*Event, reads [][]bool, out [][]*Profile) error {
	prefix := "$KV." + s.cfg.Bucket + project + "."
	for len(ws) > 0 {
		n := min(len(ws), maxTogetherMsgs)
		byKey := make(map[string]*togetherWrite, n)
		keys := make([]string, 0, n)
		for _, w := range ws[:n] {
			k := prefix + personKey(w.p.ID)
			if byKey[k] == nil {
				byKey[k] = w
				keys = append(keys, k)
			}
		}
		revs, err := s.lastRevisions(ctx, project, keys)
		if err != nil {
			return err
		}
		for k, w := range byKey {
			if revs[k] != w.rev {
				continue
			}
			if err := s.profiles(ctx, kv, w, runs, reads, out); err != nil {
				return err
			}
		}
		ws = ws[n:]
	}
	return nil
}

// togetherPause is how many messages after a failed batch of
// writeTogether are processed run by run.
const togetherPause = 16

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// planTogether applies a run's updates to its person when its write needs
// no read: the run only sets and unsets properties of one distinct id,
// which this store has cached the person of, or has not seen while new
// distinct ids prevail (see claimOrRead) and whose updates store a new
// person. It returns nil for any other run, and for a run that changes
// nothing unless its person is cached and a destination sees it (the
// person is read then, see update and confirmTogether).
func (s *Store) planTogether(project string, evs []*Event, plans []plan, reads []bool) *togetherWrite {
	if len(evs) == 0 || !simpleRun(evs, plans) {
		return nil
	}
	d := evs[0].DistinctID
	w := &togetherWrite{after: make([]*Person, len(evs))}
	if e := s.cached(project, d); e.v != nil {
		w.p, w.rev = e.v.clone(), e.rev
	} else {
		if _, seen := s.ids.get(cacheKey(project, d)); seen || s.claims.Load() < 0 {
			return nil
		}
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
	id := nuid.Next()
	n := 0
	for _, w := range ws {
		n += 1 + boolInt(w.rev == 0)
	}
	seq := 0
	// send publishes the batch's next message; the last one commits the
	// batch and returns its stored sequence (the others have no reply:
	// the server answers the batch at its commit).
	send := func(subject string, data []byte, expect uint64) (uint64, error) {
		seq++
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{
			batchID: {id}, batchSeq: {strconv.Itoa(seq)}, expectSubjectSeq: {strconv.FormatUint(expect, 10)}}}
		if seq < n {
			return 0, s.cfg.Conn.PublishMsg(m)
		}
		m.Header[batchCommit] = []string{"1"}
		return s.publish(ctx, m)
	}
	// at[i] is the batch sequence (from 1) of ws[i]'s person.
	at := make([]int, len(ws))
	var last uint64
	for i, w := range ws {
		if w.rev == 0 {
			if _, err := send(prefix+distinctKey(w.p.DistinctIDs[0]), []byte(`"`+w.p.ID+`"`), 0); err != nil {
				return fmt.Errorf("persons: storing person %s: %w", w.p.ID, err)
			}
		}
		b, err := encode(w.p)
		if err != nil {
			return err
		}
		at[i] = seq + 1
		if last, err = send(prefix+personKey(w.p.ID), b, w.rev); err != nil {
			if seq < n {
				return fmt.Errorf("persons: storing person %s: %w", w.p.ID, err)
			}
			return s.batchFailed(project, "persons", err)
		}
	}
	// An atomic batch is stored whole, in order, under consecutive
	// sequences, the commit's last: each person's revision follows from
	// it. Were it not so, a wrong revision cached would fail the next
	// swap, which reads the person then.
	for i, w := range ws {
		if w.rev == 0 {
			s.ids.put(cacheKey(project, w.p.DistinctIDs[0]), w.p.ID)
		}
		s.people.put(project, w.p, last-uint64(n-at[i]))
	}
	return nil
}

// lastRevisions reads the revisions at which the keys' last values are
// stored (the subjects of the bucket's stream), all in one direct get of
// the stream (as key-value reads are made), keyed by subject. A key
// deleted, purged or never written is left out, as is every key when the
// stream answers no direct gets: its run is then read on its own.
func (s *Store) lastRevisions(ctx context.Context, project string, subjects []string) (map[string]uint64, error) {
	st, err := s.stream(ctx, project)
	if err != nil {
		return nil, err
	}
	if !st.CachedInfo().Config.AllowDirect {
		return nil, nil
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
		return nil, err
	}
	nc := s.cfg.Conn
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("persons: reading persons: %w", err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+st.CachedInfo().Config.Name, inbox, req); err != nil {
		return nil, fmt.Errorf("persons: reading persons: %w", err)
	}
	revs := make(map[string]uint64, len(subjects))
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("persons: reading persons: %w", err)
		}
		// A status ends the answer: 204 after the last message, 404 when
		// no key has a value, others (503: no responders) for a stream
		// that cannot answer.
		if m.Header.Get("Status") != "" {
			return revs, nil
		}
		if m.Header.Get(kvOperation) != "" {
			continue
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("persons: reading persons: a message without its sequence: %w", err)
		}
		revs[m.Header.Get("Nats-Subject")] = seq
	}
}
