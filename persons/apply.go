package persons

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Profile is what destinations see of an event's person and groups.
type Profile struct {
	// Person is never nil: a distinct id nothing was stored for has the
	// empty person of its DerivedID.
	Person *Person
	// Groups holds the stored properties of the event's groups, by type
	// and key; nil unless asked for.
	Groups map[[2]string]map[string]any
}

// Process applies what ev asks of its person and groups, and, when read
// is set, returns the profile destinations see: the person with ev's own
// updates applied, and the stored properties of ev's groups.
//
// Events of one distinct id must be processed one after another to apply
// in order; events of different distinct ids may be processed at once,
// on any number of nodes. Each update is one compare-and-swap, so
// concurrent updates of one person (from its several distinct ids, or
// from nodes racing on redelivered work) all apply, one after another, in
// the order their writes land. An event applied already (redelivered)
// changes nothing.
func (s *Store) Process(ctx context.Context, project string, ev *Event, read bool) (*Profile, error) {
	profs, err := s.ProcessRun(ctx, project, []*Event{ev}, []bool{read})
	if err != nil {
		return nil, err
	}
	return profs[0], nil
}

// ProcessRun processes events in order, as Process would one after
// another, and returns their profiles (nil where reads[i] is not set).
// When the events are all of one distinct id and only set and unset
// properties (a browser's batch of one user's events), they cost one
// compare-and-swap together.
func (s *Store) ProcessRun(ctx context.Context, project string, evs []*Event, reads []bool) ([]*Profile, error) {
	kv, err := s.bucket(ctx, project, true)
	if err != nil {
		return nil, err
	}
	return s.processRun(ctx, kv, project, evs, plansOf(evs, s.log), reads)
}

// plansOf reads what each of evs asks for (see planOf).
func plansOf(evs []*Event, log *slog.Logger) []plan {
	plans := make([]plan, len(evs))
	for i, ev := range evs {
		plans[i] = planOf(ev, log)
	}
	return plans
}

// simpleRun reports whether events are all of one distinct id and only
// set and unset properties: a run whose updates one write of one person
// applies.
func simpleRun(evs []*Event, plans []plan) bool {
	for i, ev := range evs {
		if pl := &plans[i]; pl.merge != nil || pl.group != nil || pl.personless || ev.DistinctID != evs[0].DistinctID {
			return false
		}
	}
	return true
}

// processRun is ProcessRun with the bucket and the events' plans.
func (s *Store) processRun(ctx context.Context, kv jetstream.KeyValue, project string, evs []*Event, plans []plan, reads []bool) ([]*Profile, error) {
	var err error
	out := make([]*Profile, len(evs))
	if len(evs) > 1 && simpleRun(evs, plans) {
		ps, err := s.updateRun(ctx, kv, project, evs, plans, reads)
		if err != nil {
			return nil, err
		}
		for i, p := range ps {
			if reads[i] {
				if out[i], err = s.profile(ctx, kv, evs[i], p); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	for i, ev := range evs {
		if out[i], err = s.process(ctx, kv, project, ev, &plans[i], reads[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) process(ctx context.Context, kv jetstream.KeyValue, project string, ev *Event, pl *plan, read bool) (*Profile, error) {
	var p *Person
	var err error
	switch {
	case pl.personless:
		if read {
			p, err = s.lookup(ctx, kv, project, ev.DistinctID)
		}
	case pl.merge != nil:
		p, err = s.merge(ctx, kv, project, ev, pl)
	case pl.changes.any():
		p, err = s.update(ctx, kv, project, ev.DistinctID, ev.UUID, &pl.changes, read)
	case read:
		p, err = s.lookup(ctx, kv, project, ev.DistinctID)
	}
	if err != nil {
		return nil, err
	}
	if pl.group != nil && !pl.personless {
		if err := s.updateGroup(ctx, kv, ev.UUID, pl.group); err != nil {
			return nil, err
		}
	}
	if !read {
		return nil, nil
	}
	return s.profile(ctx, kv, ev, p)
}

// profile is what destinations see of ev with its person p: p and the
// stored properties of ev's groups.
func (s *Store) profile(ctx context.Context, kv jetstream.KeyValue, ev *Event, p *Person) (*Profile, error) {
	prof := &Profile{Person: p}
	if len(ev.Groups) > 0 {
		prof.Groups = make(map[[2]string]map[string]any, len(ev.Groups))
		for typ, key := range ev.Groups {
			g, err := get[Group](ctx, kv, groupKey(typ, key))
			if err != nil {
				return nil, fmt.Errorf("persons: reading group %s %s: %w", typ, key, err)
			}
			if g.v != nil {
				prof.Groups[[2]string{typ, key}] = g.v.Properties
			}
		}
	}
	return prof, nil
}

// updateRun applies the property changes of events of one distinct id in
// order with one compare-and-swap, and returns the person after each.
func (s *Store) updateRun(ctx context.Context, kv jetstream.KeyValue, project string, evs []*Event, plans []plan, reads []bool) ([]*Person, error) {
	d := evs[0].DistinctID
	after := make([]*Person, len(evs))
	creates, read := false, false
	for i := range plans {
		creates = creates || plans[i].changes.creates()
		read = read || reads[i]
	}
	for attempt := range maxAttempts {
		e, p, claimed, cached, err := s.working(ctx, kv, project, d, attempt, creates)
		if err != nil {
			return nil, err
		}
		changed := false
		for i, ev := range evs {
			if !applied(p.Applied, ev.UUID) && plans[i].changes.apply(p) {
				p.Version++
				p.Applied = markApplied(p.Applied, ev.UUID)
				changed = true
			}
			after[i] = p
			if reads[i] && i < len(evs)-1 {
				after[i] = p.clone()
			}
		}
		if !changed {
			if cached && read {
				continue // see update
			}
			return after, nil
		}
		if err := s.save(ctx, kv, project, d, e, p, claimed); err == errConflict {
			continue
		} else if err != nil {
			return nil, err
		}
		return after, nil
	}
	return nil, fmt.Errorf("persons: updating distinct id %q: %w", d, errConflict)
}

// lookup returns the person of a distinct id (the empty one when none is
// stored).
func (s *Store) lookup(ctx context.Context, kv jetstream.KeyValue, project, distinctID string) (*Person, error) {
	e, err := s.resolve(ctx, kv, project, distinctID)
	if err != nil {
		return nil, err
	}
	if e.v == nil {
		return s.empty(project, distinctID), nil
	}
	return e.v, nil
}

func (s *Store) empty(project, distinctID string) *Person {
	return &Person{ID: DerivedID(project, distinctID), Properties: map[string]any{}, DistinctIDs: []string{distinctID}}
}

// resolve reads the stored person of a distinct id (nil when none),
// finishing a merge it meets on the way.
func (s *Store) resolve(ctx context.Context, kv jetstream.KeyValue, project, distinctID string) (entry[Person], error) {
	ck := cacheKey(project, distinctID)
	if _, cached := s.ids.get(ck); !cached {
		if e, err := s.derived(ctx, kv, project, distinctID); err != nil || e.v != nil {
			return e, err
		}
	}
	return s.resolveLinked(ctx, kv, project, distinctID)
}

// derived reads the person a distinct id's id is derived from (nil when
// it is not the distinct id's person). Most persons keep the id derived
// from their first distinct id: reading that person first finds them with
// one read instead of the link's and the person's. It holds the distinct
// id only while the distinct id is its own (a merge away marks it first,
// then removes it).
func (s *Store) derived(ctx context.Context, kv jetstream.KeyValue, project, distinctID string) (entry[Person], error) {
	pid := DerivedID(project, distinctID)
	e, err := get[Person](ctx, kv, personKey(pid))
	if err != nil {
		return entry[Person]{}, err
	}
	if e.v == nil || e.v.MergedInto != "" || !slices.Contains(e.v.DistinctIDs, distinctID) {
		return entry[Person]{}, nil
	}
	s.ids.put(cacheKey(project, distinctID), pid)
	s.people.put(project, e.v.clone(), e.rev)
	return e, nil
}

// resolveLinked is resolve by the distinct id's link.
func (s *Store) resolveLinked(ctx context.Context, kv jetstream.KeyValue, project, distinctID string) (entry[Person], error) {
	ck := cacheKey(project, distinctID)
	for range maxAttempts {
		pid, cached := s.ids.get(ck)
		if !cached {
			m, err := get[string](ctx, kv, distinctKey(distinctID))
			if err != nil || m.v == nil {
				return entry[Person]{}, err
			}
			pid = *m.v
		}
		e, err := get[Person](ctx, kv, personKey(pid))
		if err != nil {
			return entry[Person]{}, err
		}
		switch {
		case e.v != nil && e.v.MergedInto != "":
			if err := s.finishMerge(ctx, kv, project, e, 0, nil); err != nil {
				return entry[Person]{}, err
			}
			s.ids.drop(ck)
			continue
		case e.v == nil || !slices.Contains(e.v.DistinctIDs, distinctID):
			// Merged away or deleted since the mapping was read.
			s.ids.drop(ck)
			if cached {
				continue
			}
			return entry[Person]{}, nil
		}
		if !cached {
			s.ids.put(ck, pid)
		}
		// The cache keeps a copy: callers may modify what they read.
		s.people.put(project, e.v.clone(), e.rev)
		return e, nil
	}
	return entry[Person]{}, fmt.Errorf("persons: distinct id %q: %w", distinctID, errConflict)
}

// update applies change to the person of a distinct id, creating the
// person when none is stored, as one compare-and-swap retried on conflict.
// read is set when a destination sees the person returned.
func (s *Store) update(ctx context.Context, kv jetstream.KeyValue, project, distinctID, uuid string, c *changes, read bool) (*Person, error) {
	for attempt := range maxAttempts {
		e, p, claimed, cached, err := s.working(ctx, kv, project, distinctID, attempt, c.creates())
		if err != nil {
			return nil, err
		}
		if applied(p.Applied, uuid) || !c.apply(p) {
			if cached && read {
				// A change is checked by its swap, but no change has
				// nothing to check it: what a destination sees is read
				// from the bucket, as the cached copy may be stale (or of
				// a person deleted since).
				continue
			}
			if e.v == nil {
				p.CreatedAt = time.Time{}
			}
			return p, nil
		}
		p.Version++
		p.Applied = markApplied(p.Applied, uuid)
		if err := s.save(ctx, kv, project, distinctID, e, p, claimed); err == errConflict {
			continue
		} else if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("persons: updating distinct id %q: %w", distinctID, errConflict)
}

// working returns the stored person of a distinct id (the entry, nil when
// none is stored) and a copy to change: a new person when none is. The
// first attempt trusts this store's cache (cached reports that it did); a
// retry after a conflict reads.
//
// With creates set (the caller's changes would store a new person), a
// distinct id this store has not seen is claimed: its link to its derived
// person is created, which fails when the distinct id is linked already.
// A new distinct id then costs two writes (the link and the person)
// instead of a read and two writes; claimed is the revision of the link
// made (0: none). Where the bucket takes atomic batches, nothing is
// claimed: claimed is inBatch, and save writes both in one batch, which
// fails as the claim would.
// A link left without its person (the person's write lost to another
// node's, or the node stopped) reads as no person, as a link always
// could. While most distinct ids this store meets are stored already (see
// claims), it reads the derived person first instead, and claims only
// when that is not the distinct id's: a stored person then costs a read
// and a write instead of a failed claim, a read and a write.
func (s *Store) working(ctx context.Context, kv jetstream.KeyValue, project, distinctID string, attempt int, creates bool) (e entry[Person], p *Person, claimed uint64, cached bool, err error) {
	if attempt == 0 {
		e = s.cached(project, distinctID)
		cached = e.v != nil
		if e.v == nil && creates {
			if e, claimed, err = s.claimOrRead(ctx, kv, project, distinctID); err != nil {
				return e, nil, 0, false, err
			}
		}
	}
	if e.v == nil && claimed == 0 {
		if e, err = s.resolve(ctx, kv, project, distinctID); err != nil {
			return e, nil, 0, false, err
		}
	}
	if e.v == nil {
		p := s.empty(project, distinctID)
		p.CreatedAt = s.cfg.Now().UTC()
		return e, p, claimed, false, nil
	}
	return e, e.v.clone(), 0, cached, nil
}

// claimOrRead is the first attempt of working at a distinct id this store
// has not cached: it claims the distinct id or, while claims mostly fail,
// reads its derived person first. It returns the person found that way,
// or the revision of the link made when the claim succeeded; neither when
// the distinct id is linked elsewhere (a read by its link follows).
func (s *Store) claimOrRead(ctx context.Context, kv jetstream.KeyValue, project, distinctID string) (entry[Person], uint64, error) {
	if _, ok := s.ids.get(cacheKey(project, distinctID)); ok {
		return entry[Person]{}, 0, nil
	}
	if s.claims.Load() < 0 {
		e, err := s.derived(ctx, kv, project, distinctID)
		if err != nil || e.v != nil {
			s.noteClaim(false)
			return e, 0, err
		}
	}
	if s.atomicOK(project) {
		// No claim: save writes the link and the person in one batch.
		return entry[Person]{}, inBatch, nil
	}
	rev, err := s.claim(ctx, kv, project, distinctID)
	if err == nil {
		s.noteClaim(rev != 0)
	}
	return entry[Person]{}, rev, err
}

// noteClaim counts whether a distinct id this store had not seen was new
// (a claim would succeed), as a score of the recent ones kept within
// ±maxClaimScore: claims come first while it is not negative.
func (s *Store) noteClaim(new bool) {
	d := int64(1)
	if !new {
		d = -1
	}
	for {
		old := s.claims.Load()
		v := min(max(old+d, -maxClaimScore), maxClaimScore)
		if v == old || s.claims.CompareAndSwap(old, v) {
			return
		}
	}
}

// maxClaimScore bounds noteClaim's score: how many new distinct ids in a
// row turn a store that read first back to claiming first, and the
// other way.
const maxClaimScore = 16

// claim links a distinct id to its derived person unless it is linked
// already, and returns the link's revision (0 when it is linked already,
// or another node linked it first).
func (s *Store) claim(ctx context.Context, kv jetstream.KeyValue, project, distinctID string) (uint64, error) {
	if _, cached := s.ids.get(cacheKey(project, distinctID)); cached {
		return 0, nil
	}
	pid := DerivedID(project, distinctID)
	// Update over revision 0 fails when the key has any revision, in one
	// request; Create would read the key then, to write over a deleted
	// one. A distinct id deleted before goes the way of resolve and link.
	rev, err := kv.Update(ctx, distinctKey(distinctID), []byte(`"`+pid+`"`), 0)
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("persons: linking distinct id %q: %w", distinctID, err)
	}
	s.ids.put(cacheKey(project, distinctID), pid)
	return rev, nil
}

// save stores p over e with a compare-and-swap. A new person is stored
// with its link: in one atomic batch when working left the distinct id
// unclaimed (createAtomically) or found no person by reading
// (createChecked); after the link working claimed (claimed: its
// revision); after a link written first where the bucket takes no
// batches. It returns errConflict when another writer came first, and
// drops the cached copy then.
func (s *Store) save(ctx context.Context, kv jetstream.KeyValue, project, distinctID string, e entry[Person], p *Person, claimed uint64) error {
	if e.v == nil && claimed == inBatch {
		var err error
		if claimed, err = s.createAtomically(ctx, kv, project, distinctID, p); err != nil {
			if err == errConflict {
				s.people.drop(project, p.ID)
			}
			return err
		}
		if claimed == 0 {
			return nil // created, link and person
		}
	}
	if e.v == nil && claimed == 0 && s.atomicOK(project) {
		if err := s.createChecked(ctx, kv, project, distinctID, p); err != errNoBatch {
			if err == errConflict {
				s.people.drop(project, p.ID)
			}
			return err
		}
	}
	if e.v == nil && claimed == 0 {
		if err := s.link(ctx, kv, project, p.ID, distinctID); err != nil {
			return err
		}
	}
	var rev uint64
	var err error
	if e.v == nil && claimed != 0 {
		rev, err = s.createClaimed(ctx, project, distinctID, p, claimed)
	} else if e.rev != 0 {
		rev, err = s.swap(ctx, project, personKey(p.ID), p, e.rev)
	} else {
		rev, err = put(ctx, kv, personKey(p.ID), p, e.rev)
	}
	if err == errConflict {
		s.people.drop(project, p.ID)
		return err
	} else if err != nil {
		return err
	}
	s.people.put(project, p, rev)
	return nil
}

// inBatch, as working's claimed revision, leaves a distinct id
// the store has not seen unclaimed: save stores its link and its new
// person together (see Store.createAtomically).
const inBatch = ^uint64(0)

// createAtomically stores the link of a distinct id this store has not
// seen and its new person p in one atomic batch: one round trip instead
// of a claim's and the person's, and no link is ever left without its
// person. The batch commits only while neither key was ever written;
// errConflict reports that one was (the distinct id is stored or linked
// already, or another node got there first). Where the stream refuses
// the batch (too many under way, or a server that has none) it claims
// the distinct id instead, and returns the claim's revision for save to
// go on as after working's claim; 0 when it created the person.
func (s *Store) createAtomically(ctx context.Context, kv jetstream.KeyValue, project, distinctID string, p *Person) (uint64, error) {
	switch err := s.commitNew(ctx, project, p, []string{distinctID}, make([]uint64, 2)); err {
	case nil:
		s.noteClaim(true)
		return 0, nil
	case errConflict:
		s.noteClaim(false)
		return 0, errConflict
	case errNoBatch:
	default:
		return 0, err
	}
	rev, err := s.claim(ctx, kv, project, distinctID)
	if err != nil {
		return 0, err
	}
	s.noteClaim(rev != 0)
	if rev == 0 {
		return 0, errConflict
	}
	return rev, nil
}

// createChecked stores the new person p of a distinct id that resolve
// found no person for (its link missing, or leading to a person deleted
// or not holding it), with its link, in one atomic batch that commits
// only while both keys are as read here: a link another node wrote since
// (a merge joining the distinct id to its person) fails it with
// errConflict instead of being overwritten, which would leave two
// persons holding the distinct id. errNoBatch reports a stream that
// refused the batch.
func (s *Store) createChecked(ctx context.Context, kv jetstream.KeyValue, project, distinctID string, p *Person) error {
	if p.ID != DerivedID(project, distinctID) {
		return errNoBatch
	}
	return s.commitLinked(ctx, kv, project, p, 0, distinctID)
}

// commitLinked stores p with the distinct ids in ids linked to it, in one
// atomic batch. Each link is written only while its key is as read here,
// where it leads to no person holding the distinct id; p only while its
// key is at revision rev, or, for a new person (rev 0), while no person
// is stored there. Two nodes linking one distinct id to two persons at
// once (two users identifying with one new anonymous id) cannot both
// commit, so a distinct id never ends held by two persons. It reports
// errConflict when a key changed or a distinct id has its person,
// errNoBatch when the stream refused the batch.
func (s *Store) commitLinked(ctx context.Context, kv jetstream.KeyValue, project string, p *Person, rev uint64, ids ...string) error {
	st, err := s.stream(ctx, project)
	if err != nil {
		return err
	}
	prefix := "$KV." + s.cfg.Bucket + project + "."
	last := func(key string) (*jetstream.RawStreamMsg, error) {
		m, err := st.GetLastMsgForSubject(ctx, prefix+key)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("persons: reading %s: %w", key, err)
		}
		return m, nil
	}
	seqs := make([]uint64, len(ids)+1)
	for i, d := range ids {
		m, err := last(distinctKey(d))
		if err != nil {
			return err
		}
		if m == nil {
			continue
		}
		seqs[i] = m.Sequence
		var pid string
		if m.Header.Get(kvOperation) == "" && json.Unmarshal(m.Data, &pid) == nil && pid != p.ID {
			o, err := get[Person](ctx, kv, personKey(pid))
			if err != nil {
				return err
			}
			if o.v != nil && (o.v.MergedInto != "" || slices.Contains(o.v.DistinctIDs, d)) {
				return errConflict // linked to its person since resolve read
			}
		}
	}
	seqs[len(ids)] = rev
	if rev == 0 {
		m, err := last(personKey(p.ID))
		if err != nil {
			return err
		}
		if m != nil {
			if m.Header.Get(kvOperation) == "" {
				return errConflict // a stored person is updated, not created
			}
			seqs[len(ids)] = m.Sequence
		}
	}
	return s.commitNew(ctx, project, p, ids, seqs)
}

// commitNew stores p and the links of ids to it in one atomic batch, the
// link of ids[i] only while its key's last revision is seqs[i] and the
// person only while its key's is seqs[len(ids)] (0: never written). It
// reports errConflict when one changed, errNoBatch when the stream
// refused the batch.
func (s *Store) commitNew(ctx context.Context, project string, p *Person, ids []string, seqs []uint64) error {
	b, err := encode(p)
	if err != nil {
		return err
	}
	prefix := "$KV." + s.cfg.Bucket + project + "."
	link := []byte(`"` + p.ID + `"`)
	// Room for a merge's links and person without an allocation.
	var buf [4]batchMsg
	msgs := buf[:0]
	for i, d := range ids {
		msgs = append(msgs, batchMsg{prefix + distinctKey(d), link, seqs[i]})
	}
	msgs = append(msgs, batchMsg{prefix + personKey(p.ID), b, seqs[len(ids)]})
	seq, err := s.publishBatch(ctx, msgs)
	if err != nil {
		return s.batchFailed(project, "person "+p.ID, err)
	}
	for _, d := range ids {
		s.ids.put(cacheKey(project, d), p.ID)
	}
	s.people.put(project, p, seq)
	return nil
}

// batchMsg is one write of an atomic batch: data stored at subject only
// while the subject's last sequence is expect (0: never written).
type batchMsg struct {
	subject string
	data    []byte
	expect  uint64
}

// publishBatch stores msgs in one atomic batch, the last committing it,
// and returns the last one's stored sequence (the batch is stored under
// consecutive sequences). Its error is publish's or the connection's:
// see batchFailed.
func (s *Store) publishBatch(ctx context.Context, msgs []batchMsg) (uint64, error) {
	id := nuid.Next()
	for i, bm := range msgs {
		seq, expect := strconv.Itoa(i+1), strconv.FormatUint(bm.expect, 10)
		if i == len(msgs)-1 {
			return s.publish(ctx, &nats.Msg{Subject: bm.subject, Data: bm.data, Header: nats.Header{
				batchID: {id}, batchSeq: {seq}, batchCommit: {"1"}, expectSubjectSeq: {expect}}})
		}
		m := &nats.Msg{Subject: bm.subject, Data: bm.data, Header: nats.Header{
			batchID: {id}, batchSeq: {seq}, expectSubjectSeq: {expect}}}
		// Only the commit has a reply: the server answers the batch at
		// its commit, which fails as incomplete when an earlier message
		// was refused.
		if err := s.cfg.Conn.PublishMsg(m); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// batchFailed is the error of an atomic batch of what that the stream did
// not commit (err): errConflict for a condition that failed, errNoBatch
// for a batch refused (and, when the stream takes none, atomicOK false
// from then on), else err.
func (s *Store) batchFailed(project, what string, err error) error {
	var apiErr *jetstream.APIError
	switch {
	case wrongLastSequence(err):
		return errConflict
	case !errors.As(err, &apiErr):
		return fmt.Errorf("persons: storing %s: %w", what, err)
	}
	if apiErr.ErrorCode == jsErrCodeAtomicPublishDisabled {
		s.log.Warn("the persons bucket refuses atomic batches; a new person costs two round trips", "project", project, "err", err)
		s.mu.Lock()
		s.atomic[project] = false
		s.mu.Unlock()
	}
	return errNoBatch
}

// swap writes v over revision rev (not 0) of a key, as put does, by way
// of publish.
func (s *Store) swap(ctx context.Context, project, key string, v *Person, rev uint64) (uint64, error) {
	b, err := encode(v)
	if err != nil {
		return 0, err
	}
	seq, err := s.publish(ctx, &nats.Msg{Subject: "$KV." + s.cfg.Bucket + project + "." + key, Data: b,
		Header: nats.Header{expectSubjectSeq: {strconv.FormatUint(rev, 10)}}})
	if wrongLastSequence(err) {
		return 0, errConflict
	}
	return seq, err
}

// publish stores m in a bucket's stream and returns its sequence, as
// jetstream's PublishMsg does for the writes of every event, with less
// work: the acknowledgement of a stored message is read without a JSON
// decoder, and m carries its headers already. Errors are those of
// PublishMsg (a *jetstream.APIError for a refusal).
func (s *Store) publish(ctx context.Context, m *nats.Msg) (uint64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	resp, err := s.cfg.Conn.RequestMsgWithContext(ctx, m)
	if errors.Is(err, nats.ErrNoResponders) {
		// The stream's leader is changing: PublishMsg retries.
		ack, err := s.js.PublishMsg(ctx, m)
		if err != nil {
			return 0, err
		}
		return ack.Sequence, nil
	} else if err != nil {
		return 0, err
	}
	if seq, ok := ackSeq(resp.Data); ok {
		return seq, nil
	}
	var ack struct {
		Error *jetstream.APIError `json:"error"`
		Seq   uint64              `json:"seq"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("persons: reading the acknowledgement of %s: %w", m.Subject, jetstream.ErrInvalidJSAck)
	}
	if ack.Error != nil {
		return 0, fmt.Errorf("nats: %w", ack.Error)
	}
	return 0, fmt.Errorf("persons: acknowledgement of %s without a sequence: %w", m.Subject, jetstream.ErrInvalidJSAck)
}

// publishTimeout bounds a publish whose context has no deadline, as
// jetstream's default does.
const publishTimeout = 5 * time.Second

// ackSeq reads the sequence of a stored message's acknowledgement
// ({"stream":…,"seq":N,…}); false for anything else (an error, or a form
// it does not know), which a JSON decoder then reads.
func ackSeq(b []byte) (uint64, bool) {
	const key = `"seq":`
	if !bytes.HasPrefix(b, []byte(`{"stream":`)) || bytes.Contains(b, []byte(`"error"`)) {
		return 0, false
	}
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == 0 || n == len(b) || (b[n] != ',' && b[n] != '}') {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(b[:n]), 10, 64)
	if err != nil || seq == 0 {
		return 0, false
	}
	return seq, true
}

// errNoBatch is an atomic batch the stream refused.
var errNoBatch = errors.New("persons: atomic batch refused")

// Headers of JetStream's atomic batch publish and conditional writes,
// which nats.go has no options for.
const (
	batchID          = "Nats-Batch-Id"
	batchSeq         = "Nats-Batch-Sequence"
	batchCommit      = "Nats-Batch-Commit"
	expectSubjectSeq = "Nats-Expected-Last-Subject-Sequence"
	// jsErrCodeAtomicPublishDisabled is the server's error for a batch
	// published to a stream that does not allow them.
	jsErrCodeAtomicPublishDisabled = 10174
	// kvOperation marks a key-value bucket's deletes and purges.
	kvOperation = "KV-Operation"
)

// createClaimed writes the new person of a distinct id this store claimed
// (the link's revision), unless the link changed since: another node that
// read the claim as a link without a person (as it reads) and linked the
// distinct id to its own person. Written then, the new person would hold
// a distinct id that leads elsewhere, and a node that has not cached the
// distinct id would read it first (see derived). The claim succeeding
// means the distinct id was never linked, so nothing made its derived
// person, which the write need not check.
func (s *Store) createClaimed(ctx context.Context, project, distinctID string, p *Person, claimed uint64) (uint64, error) {
	b, err := encode(p)
	if err != nil {
		return 0, err
	}
	prefix := "$KV." + s.cfg.Bucket + project + "."
	ack, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: prefix + personKey(p.ID), Data: b},
		jetstream.WithExpectLastSequenceForSubject(claimed, prefix+distinctKey(distinctID)))
	if wrongLastSequence(err) {
		return 0, errConflict
	} else if err != nil {
		return 0, fmt.Errorf("persons: storing person %s: %w", p.ID, err)
	}
	return ack.Sequence, nil
}

// cached returns the person of a distinct id as this store last saw it,
// if it did: a guess that the compare-and-swap checks.
func (s *Store) cached(project, distinctID string) entry[Person] {
	pid, ok := s.ids.get(cacheKey(project, distinctID))
	if !ok {
		return entry[Person]{}
	}
	e, ok := s.people.get(project, pid)
	if !ok || e.v.MergedInto != "" || !slices.Contains(e.v.DistinctIDs, distinctID) {
		return entry[Person]{}
	}
	return e
}

// link points distinct ids at a person. A distinct id is linked before a
// new person is written, so a crash between the two leaves a link to no
// person, which reads as no person.
func (s *Store) link(ctx context.Context, kv jetstream.KeyValue, project, personID string, distinctIDs ...string) error {
	b := []byte(`"` + personID + `"`)
	for _, d := range distinctIDs {
		if _, err := kv.Put(ctx, distinctKey(d), b); err != nil {
			return fmt.Errorf("persons: linking distinct id %q: %w", d, err)
		}
		s.ids.put(cacheKey(project, d), personID)
	}
	return nil
}

// linkNew links distinct ids that had no person when read to a person,
// unless one got its person since: another node that claimed one of them
// before (a claim reads as no person) and stored its new person after the
// read. Linked elsewhere then, that person would be an orphan holding the
// distinct id, read first by nodes that have not cached the distinct id
// (see derived). Each link is written only while the distinct id's
// derived person is as checked. errConflict reports a distinct id that
// has its person now.
func (s *Store) linkNew(ctx context.Context, project, personID string, distinctIDs ...string) error {
	st, err := s.stream(ctx, project)
	if err != nil {
		return err
	}
	prefix := "$KV." + s.cfg.Bucket + project + "."
	for _, d := range distinctIDs {
		derived := prefix + personKey(DerivedID(project, d))
		var seq uint64
		m, err := st.GetLastMsgForSubject(ctx, derived)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return fmt.Errorf("persons: linking distinct id %q: %w", d, err)
		default:
			seq = m.Sequence
			if op := m.Header.Get(kvOperation); op == "" {
				var p Person
				if err := json.Unmarshal(m.Data, &p); err != nil {
					return fmt.Errorf("persons: linking distinct id %q: %w", d, err)
				}
				if p.MergedInto == "" && slices.Contains(p.DistinctIDs, d) {
					return errConflict
				}
			}
		}
		_, err = s.js.PublishMsg(ctx, &nats.Msg{Subject: prefix + distinctKey(d), Data: []byte(`"` + personID + `"`)},
			jetstream.WithExpectLastSequenceForSubject(seq, derived))
		if wrongLastSequence(err) {
			return errConflict
		} else if err != nil {
			return fmt.Errorf("persons: linking distinct id %q: %w", d, err)
		}
		s.ids.put(cacheKey(project, d), personID)
	}
	return nil
}

// wrongLastSequence reports a publish refused for its expected last
// sequence: a compare-and-swap lost.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// merge applies an $identify, $create_alias or $merge_dangerously: the
// person of the other distinct id joins the person of the event's one.
func (s *Store) merge(ctx context.Context, kv jetstream.KeyValue, project string, ev *Event, pl *plan) (*Person, error) {
	d, a := ev.DistinctID, pl.merge.other
	for range maxAttempts {
		t, err := s.resolve(ctx, kv, project, d)
		if err != nil {
			return nil, err
		}
		o, err := s.resolve(ctx, kv, project, a)
		if err != nil {
			return nil, err
		}
		var p *Person
		var rev uint64
		var link []string
		switch {
		case t.v == nil && o.v == nil:
			// A new person with both distinct ids.
			p, link = s.empty(project, d), []string{d, a}
			p.DistinctIDs = []string{d, a}
			p.IsIdentified = pl.identify
		case o.v == nil:
			p, rev = t.v, t.rev
			if !applied(p.Applied, ev.UUID) {
				p.DistinctIDs, link = append(p.DistinctIDs, a), []string{a}
			}
		case t.v == nil:
			// The other's person takes on the event's distinct id: an
			// anonymous user identifying.
			p, rev = o.v, o.rev
			if !applied(p.Applied, ev.UUID) {
				p.DistinctIDs, link = append(p.DistinctIDs, d), []string{d}
			}
		case t.v.ID == o.v.ID:
			return s.update(ctx, kv, project, d, ev.UUID, &pl.changes, true)
		case o.v.IsIdentified && !pl.merge.dangerous:
			s.log.Warn("refusing to merge an already identified person; send $merge_dangerously to merge it",
				"event", ev.Name, "event_uuid", ev.UUID, "distinct_id", d, "other_distinct_id", a,
				"person_id", t.v.ID, "other_person_id", o.v.ID)
			return s.update(ctx, kv, project, d, ev.UUID, &pl.changes, true)
		default:
			// Mark the other person as merging into the target first:
			// whoever meets the mark finishes the merge, so a crash
			// half-way loses nothing.
			o.v.MergedInto = t.v.ID
			if _, err := put(ctx, kv, personKey(o.v.ID), o.v, o.rev); err == errConflict {
				continue
			} else if err != nil {
				return nil, err
			}
			var out *Person
			err := s.finishMerge(ctx, kv, project, entry[Person]{v: o.v}, 0, func(p *Person) {
				if !applied(p.Applied, ev.UUID) {
					pl.changes.apply(p)
					p.Applied = markApplied(p.Applied, ev.UUID)
				}
				out = p
			})
			if err != nil {
				return nil, err
			}
			return out, nil
		}
		if applied(p.Applied, ev.UUID) {
			return p, nil
		}
		pl.changes.apply(p)
		if rev == 0 {
			p.CreatedAt = s.cfg.Now().UTC()
		}
		p.Version++
		p.Applied = markApplied(p.Applied, ev.UUID)
		if len(link) > 0 && s.atomicOK(project) {
			switch err := s.commitLinked(ctx, kv, project, p, rev, link...); err {
			case nil:
				return p, nil
			case errConflict:
				continue
			case errNoBatch:
			default:
				return nil, err
			}
		}
		if len(link) > 0 {
			// Without atomic batches, two nodes linking one new distinct
			// id to two persons at once can each write theirs: the link
			// and the person are two writes, each checked on one key.
			if err := s.linkNew(ctx, project, p.ID, link...); err == errConflict {
				continue
			} else if err != nil {
				return nil, err
			}
		}
		if _, err := put(ctx, kv, personKey(p.ID), p, rev); err == errConflict {
			continue
		} else if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("persons: merging distinct id %q into %q: %w", a, d, errConflict)
}

// finishMerge completes the merge of o (marked MergedInto) into its
// target: the target takes o's distinct ids, and o's properties where it
// has none of its own (the target's win, as in PostHog); o's distinct ids
// are linked to the target; o is removed. then, when set, also changes
// the target in the same write. Every step is idempotent, so any node may
// finish a merge another began.
func (s *Store) finishMerge(ctx context.Context, kv jetstream.KeyValue, project string, o entry[Person], depth int, then func(*Person)) error {
	from := o.v
	if depth > maxMergeChain {
		// Two persons merging into each other at once (opposite
		// $identify calls racing): undo this half, the other completes.
		s.log.Warn("two persons were merging into each other; undoing one merge", "person_id", from.ID, "into", from.MergedInto)
		from.MergedInto = ""
		if _, err := put(ctx, kv, personKey(from.ID), from, o.rev); err != nil && err != errConflict {
			return err
		}
		return nil
	}
	for range maxAttempts {
		t, err := get[Person](ctx, kv, personKey(from.MergedInto))
		if err != nil {
			return err
		}
		if t.v == nil {
			// The target was deleted meanwhile: so is what joined it.
			return s.remove(ctx, kv, project, from)
		}
		if t.v.MergedInto != "" {
			if err := s.finishMerge(ctx, kv, project, t, depth+1, nil); err != nil {
				return err
			}
			from.MergedInto = t.v.MergedInto
			continue
		}
		p := t.v
		changed := false
		for _, d := range from.DistinctIDs {
			if !slices.Contains(p.DistinctIDs, d) {
				p.DistinctIDs, changed = append(p.DistinctIDs, d), true
			}
		}
		if changed {
			props := maps.Clone(from.Properties)
			if props == nil {
				props = map[string]any{}
			}
			maps.Copy(props, p.Properties)
			p.Properties = props
			if !from.CreatedAt.IsZero() && from.CreatedAt.Before(p.CreatedAt) {
				p.CreatedAt = from.CreatedAt
			}
			p.IsIdentified = true
			for _, m := range from.Applied {
				if !slices.Contains(p.Applied, m) {
					p.Applied = append(p.Applied, m)
				}
			}
			if len(p.Applied) > keepApplied {
				p.Applied = slices.Clone(p.Applied[len(p.Applied)-keepApplied:])
			}
		}
		before := len(p.Applied)
		if then != nil {
			then(p)
		}
		if changed || len(p.Applied) != before {
			p.Version++
			if _, err := put(ctx, kv, personKey(p.ID), p, t.rev); err == errConflict {
				continue
			} else if err != nil {
				return err
			}
		}
		if err := s.link(ctx, kv, project, p.ID, from.DistinctIDs...); err != nil {
			return err
		}
		if err := kv.Delete(ctx, personKey(from.ID)); err != nil {
			return fmt.Errorf("persons: removing merged person %s: %w", from.ID, err)
		}
		return nil
	}
	return fmt.Errorf("persons: merging person %s: %w", from.ID, errConflict)
}

// maxMergeChain bounds how many merges in a row finishMerge follows.
const maxMergeChain = 8

// updateGroup applies a $groupidentify.
func (s *Store) updateGroup(ctx context.Context, kv jetstream.KeyValue, uuid string, u *groupUpdate) error {
	key := groupKey(u.typ, u.key)
	for range maxAttempts {
		e, err := get[Group](ctx, kv, key)
		if err != nil {
			return err
		}
		g := e.v
		if g == nil {
			g = &Group{Type: u.typ, Key: u.key, Properties: map[string]any{}, CreatedAt: s.cfg.Now().UTC()}
		}
		if applied(g.Applied, uuid) {
			return nil
		}
		changed := e.v == nil
		for k, v := range u.set {
			if old, ok := g.Properties[k]; !ok || !reflect.DeepEqual(old, v) {
				g.Properties[k], changed = v, true
			}
		}
		if !changed {
			return nil
		}
		g.Version++
		g.Applied = markApplied(g.Applied, uuid)
		if _, err := put(ctx, kv, key, g, e.rev); err == errConflict {
			continue
		} else if err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("persons: group %s %s: %w", u.typ, u.key, errConflict)
}
