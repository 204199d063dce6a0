package persons

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// setRuns returns one run per distinct id, each of one event that $sets
// key to val, all read by a destination.
func setRuns(ids []string, key string, val any) ([][]*Event, [][]bool) {
	runs, reads := make([][]*Event, len(ids)), make([][]bool, len(ids))
	for i, d := range ids {
		runs[i], reads[i] = []*Event{ev("e", d, obj("$set", obj(key, val)))}, []bool{true}
	}
	return runs, reads
}

func names(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return ids
}

func processRuns(t *testing.T, s *Store, runs [][]*Event, reads [][]bool) [][]*Profile {
	t.Helper()
	profs, err := s.ProcessRuns(context.Background(), "shop", runs, reads, 4)
	if err != nil {
		t.Fatalf("ProcessRuns: %v", err)
	}
	return profs
}

// The runs of a message whose writes need no read (new distinct ids, and
// persons the store wrote last) are written in one atomic batch: one
// round trip for them all, every person stored at the revision the store
// keeps, and destinations see each event's own updates.
func TestProcessRunsWritesTogether(t *testing.T) {
	h := newHarness(t)
	s := h.store(nil)
	shopBucket(t, s)
	// Runs of several events, one of them not read.
	runs, reads := setRuns(names("new", 30), "plan", "free")
	runs[0] = append(runs[0], ev("e", "new0", obj("$set", obj("plan", "pro"))), ev("e", "new0", obj("$unset", []any{"x"})))
	reads[0] = []bool{true, false, true}
	before := s.cfg.Conn.Stats()
	profs := processRuns(t, s, runs, reads)
	after := s.cfg.Conn.Stats()
	if out, in := after.OutMsgs-before.OutMsgs, after.InMsgs-before.InMsgs; out != 60 || in != 1 {
		t.Fatalf("30 new persons sent %d messages in %d round trips, want 60 (links and persons) in one", out, in)
	}
	if p := profs[0][0].Person; p.Properties["plan"] != "free" || p.Version != 1 {
		t.Fatalf("new0 after its first event: %+v", p)
	}
	if profs[0][1] != nil || profs[0][2].Person.Properties["plan"] != "pro" || profs[0][2].Person.Version != 2 {
		t.Fatalf("new0's later profiles: %+v, %+v", profs[0][1], profs[0][2])
	}
	// Updates of the persons written: one batch again, each a swap.
	runs, reads = setRuns(names("new", 30), "plan", "team")
	before = s.cfg.Conn.Stats()
	processRuns(t, s, runs, reads)
	after = s.cfg.Conn.Stats()
	if out, in := after.OutMsgs-before.OutMsgs, after.InMsgs-before.InMsgs; out != 30 || in != 1 {
		t.Fatalf("30 updates of cached persons sent %d messages in %d round trips, want 30 in one", out, in)
	}
	kv := shopBucket(t, s)
	other := h.store(nil)
	for i, d := range names("new", 30) {
		p := lookup(t, other, d)
		want := int64(2)
		if i == 0 {
			want = 3
		}
		if p.ID != DerivedID("shop", d) || p.Properties["plan"] != "team" || p.Version != want {
			t.Fatalf("%s: %+v", d, p)
		}
		// The revision kept is the one stored: the next swap succeeds.
		e, err := kv.Get(context.Background(), personKey(p.ID))
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := s.people.get("shop", p.ID); !ok || c.rev != e.Revision() {
			t.Fatalf("%s: cached at revision %d, stored at %d", d, c.rev, e.Revision())
		}
	}
}

// A batch that fails (a distinct id stored meanwhile by another node, a
// cached person changed by it) writes nothing, and every run is then
// processed on its own: each event is applied once, and no distinct id
// gets a second person.
func TestProcessRunsConflictFallsBack(t *testing.T) {
	h := newHarness(t)
	a, b := h.store(nil), h.store(nil)
	runs, reads := setRuns(names("old", 5), "a", float64(1))
	processRuns(t, a, runs, reads)
	// b stores one of a's new distinct ids and changes one of a's cached
	// persons.
	process(t, b, ev("e", "new3", obj("$set", obj("b", true))))
	process(t, b, ev("e", "old2", obj("$set", obj("b", true))))
	ids := append(names("new", 5), names("old", 5)...)
	runs, reads = setRuns(ids, "a", float64(2))
	processRuns(t, a, runs, reads)
	if a.togetherPause.Load() != togetherPause {
		t.Fatal("the batch did not fail")
	}
	// With its cache right again, a writes the next message together.
	a.togetherPause.Store(0)
	runs, reads = setRuns(ids, "a", float64(3))
	before := a.cfg.Conn.Stats()
	processRuns(t, a, runs, reads)
	if in := a.cfg.Conn.Stats().InMsgs - before.InMsgs; in != 1 {
		t.Fatalf("10 updates of cached persons took %d round trips, want 1", in)
	}
	other := h.store(nil)
	for _, d := range ids {
		p := lookup(t, other, d)
		want := int64(2) // new: a's two events
		if d[:3] == "old" {
			want = 3
		}
		if d == "new3" || d == "old2" {
			want++ // and b's
			if p.Properties["b"] != true {
				t.Fatalf("%s lost b's update: %+v", d, p)
			}
		}
		if p.ID != DerivedID("shop", d) || p.Properties["a"] != float64(3) || p.Version != want {
			t.Fatalf("%s: %+v, want its derived person at version %d", d, p, want)
		}
	}
}

// Two nodes process the same new distinct ids at once, in runs written
// together: each event is applied once, and each distinct id has one
// person, its derived one.
func TestConcurrentNodesProcessRuns(t *testing.T) {
	h := newHarness(t)
	nodes := []*Store{h.store(nil), h.store(nil)}
	const messages = 20
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for i, s := range nodes {
		name := string(rune('a' + i))
		// Messages overlap: each holds ten distinct ids, half of them in
		// the message before.
		var runs [][][]*Event
		var reads [][][]bool
		for m := range messages {
			ids := make([]string, 10)
			for j := range ids {
				ids[j] = fmt.Sprintf("u%d", m*5+j)
			}
			r, rd := setRuns(ids, name, float64(m))
			runs, reads = append(runs, r), append(reads, rd)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range runs {
				// Every message tries its batch, conflicts or not.
				s.togetherPause.Store(0)
				if _, err := s.ProcessRuns(context.Background(), "shop", runs[m], reads[m], 4); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	other := h.store(nil)
	for k := range messages*5 + 5 {
		d := fmt.Sprintf("u%d", k)
		p := lookup(t, other, d)
		// u0…u4 and the last five are in one message of each node, the
		// others in two.
		want := int64(4)
		if k < 5 || k >= messages*5 {
			want = 2
		}
		if p.ID != DerivedID("shop", d) || p.Version != want || p.Properties["a"] == nil || p.Properties["b"] == nil {
			t.Fatalf("%s reads as %+v, want its derived person with %d events of both nodes", d, p, want)
		}
	}
}

// Runs that change nothing in persons the store has cached, read by a
// destination, read their persons in one request; a person changed or
// deleted by another node since is seen as stored, not as cached.
func TestProcessRunsReadsTogether(t *testing.T) {
	h := newHarness(t)
	a, b := h.store(nil), h.store(nil)
	ids := names("u", 10)
	runs, reads := setRuns(ids, "plan", "free")
	processRuns(t, a, runs, reads)
	runs, reads = setRuns(ids, "plan", "free")
	before := a.cfg.Conn.Stats()
	profs := processRuns(t, a, runs, reads)
	after := a.cfg.Conn.Stats()
	if out, in := after.OutMsgs-before.OutMsgs, after.InMsgs-before.InMsgs; out != 1 || in != 11 {
		t.Fatalf("10 reads sent %d requests and received %d messages, want 1 and 11 (the persons and the end)", out, in)
	}
	for i, d := range ids {
		if p := profs[i][0].Person; p.ID != DerivedID("shop", d) || p.Properties["plan"] != "free" || p.Version != 1 {
			t.Fatalf("%s: %+v", d, p)
		}
	}
	process(t, b, ev("e", "u3", obj("$set", obj("b", true))))
	if _, err := b.Delete(context.Background(), "shop", DerivedID("shop", "u5")); err != nil {
		t.Fatal(err)
	}
	runs, reads = setRuns(ids, "plan", "free")
	profs = processRuns(t, a, runs, reads)
	for i, d := range ids {
		p := profs[i][0].Person
		switch {
		case d == "u3" && (p.Properties["b"] != true || p.Version != 2):
			t.Fatalf("u3, changed by another node: %+v", p)
		case d == "u5" && (p.Properties["plan"] != "free" || p.Version != 1 || len(p.Properties) != 1):
			t.Fatalf("u5, deleted by another node: %+v, want a new person", p)
		case p.Properties["plan"] != "free":
			t.Fatalf("%s: %+v", d, p)
		}
	}
	if p := lookup(t, b, "u5"); p.Version != 1 || p.Properties["plan"] != "free" {
		t.Fatalf("u5 stored anew: %+v", p)
	}
}

// Runs of distinct ids whose persons the store has not cached read those
// persons in one request, by the link the store knows or, while most
// distinct ids it meets are stored already, by their derived ids; then
// the runs that change them write them in one batch.
func TestProcessRunsReadUncachedTogether(t *testing.T) {
	h := newHarness(t)
	a := h.store(nil)
	ids := names("u", 10)
	runs, reads := setRuns(ids, "plan", "free")
	processRuns(t, a, runs, reads)
	h.readFirst = true
	b := h.store(nil)
	shopBucket(t, b)
	for _, s := range []*Store{a, b} {
		s.people.mu.Lock()
		s.people.m = nil // a knows the links, b nothing
		s.people.mu.Unlock()
		name := "a"
		if s == b {
			name = "b"
		}
		runs, reads = setRuns(ids, name, true)
		before := s.cfg.Conn.Stats()
		processRuns(t, s, runs, reads)
		after := s.cfg.Conn.Stats()
		if out, in := after.OutMsgs-before.OutMsgs, after.InMsgs-before.InMsgs; out != 11 || in != 12 {
			t.Fatalf("%s: 10 updates of persons not cached sent %d messages and received %d, want 11 (a read, the writes) and 12 (10 persons, the end, the ack)", name, out, in)
		}
	}
	for _, d := range ids {
		if p := lookup(t, h.store(nil), d); p.ID != DerivedID("shop", d) || p.Version != 3 || p.Properties["a"] != true || p.Properties["b"] != true {
			t.Fatalf("%s: %+v", d, p)
		}
	}
}
