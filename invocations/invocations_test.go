package invocations

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embednats/natstest"
)

const (
	succeeded = hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED
	failed    = hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED
	skipped   = hogwirev1.InvocationStatus_INVOCATION_STATUS_SKIPPED
)

func openStore(t testing.TB, memory bool) *Store {
	t.Helper()
	nc := natstest.Connect(t)
	s, err := Open(context.Background(), Config{Conn: nc, Memory: memory})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWriteListGetAndLookups(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, false)
	w := s.NewWriter(WriterConfig{})
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	// Three destinations, twenty events of two persons; hook fails every
	// third event.
	for i := range 20 {
		uuid := fmt.Sprintf("0190-%04d", i)
		distinct := []string{"ada", "bob.smith@example.com"}[i%2]
		if !w.Event("shop", uuid, []byte(`{"uuid":"`+uuid+`"}`)) {
			t.Fatal("event dropped")
		}
		for _, d := range []string{"hook", "slack", "crm"} {
			r := &Record{Destination: "projects/shop/destinations/" + d, Status: succeeded, EventUUID: uuid, EventName: "signed_up",
				DistinctID: distinct, PersonID: "p-" + distinct, Start: base.Add(time.Duration(i) * time.Second), Duration: time.Millisecond,
				Fetches: []Fetch{{Method: "POST", URL: "https://example.com/" + d, Status: 200, Duration: time.Millisecond, Attempt: 1}}}
			if d == "hook" && i%3 == 0 {
				r.Status, r.ErrorKind, r.Error = failed, "http_5xx", "HTTP 503"
				r.Fetches[0].Status = 503
			}
			if d == "crm" && i == 19 {
				r.Status, r.ErrorKind = skipped, "disabled_temporarily"
				r.Fetches = nil
			}
			w.Record(r)
		}
	}
	// Another project's records are never seen from this one.
	w.Record(&Record{Destination: "projects/other/destinations/hook", Status: failed, ErrorKind: "http_5xx", EventUUID: "0190-0000", DistinctID: "ada", Start: base})
	w.Flush(ctx)
	if d := w.Dropped(); d != 0 {
		t.Fatalf("dropped %d", d)
	}

	list := func(f Filter, size int, from Cursor) ([]*hogwirev1.Invocation, Cursor) {
		t.Helper()
		out, next, err := s.List(ctx, "shop", f, size, from)
		if err != nil {
			t.Fatal(err)
		}
		return out, next
	}
	fails, _ := list(Filter{Destination: "hook", Statuses: []hogwirev1.InvocationStatus{failed}}, 100, Cursor{})
	if len(fails) != 7 {
		t.Fatalf("hook failures: got %d, want 7", len(fails))
	}
	for _, r := range fails {
		if r.GetStatus() != failed || r.GetErrorKind() != "http_5xx" || r.GetDestination() != "projects/shop/destinations/hook" ||
			len(r.GetFetches()) != 1 || r.GetFetches()[0].GetStatus() != 503 {
			t.Fatalf("bad record %v", r)
		}
	}
	// Time range: events 5..9 only.
	ranged, _ := list(Filter{Destination: "hook", Start: base.Add(5 * time.Second), End: base.Add(10 * time.Second)}, 100, Cursor{})
	if len(ranged) != 5 {
		t.Fatalf("time range: got %d, want 5", len(ranged))
	}
	byKind, _ := list(Filter{ErrorKind: "disabled_temporarily"}, 100, Cursor{})
	if len(byKind) != 1 || byKind[0].GetStatus() != skipped || byKind[0].GetEventUuid() != "0190-0019" {
		t.Fatalf("by error kind: %v", byKind)
	}
	// Paging through all 60 of the project in pages of 25.
	var all []*hogwirev1.Invocation
	var from Cursor
	for range 10 {
		page, next := list(Filter{}, 25, from)
		all = append(all, page...)
		if next == (Cursor{}) {
			break
		}
		from = next
	}
	if len(all) != 60 {
		t.Fatalf("paged: got %d, want 60", len(all))
	}
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r.GetId()] {
			t.Fatalf("record %s listed twice", r.GetId())
		}
		seen[r.GetId()] = true
	}

	// By event uuid, across destinations.
	byEvent, _ := list(Filter{EventUUID: "0190-0003"}, 100, Cursor{})
	if len(byEvent) != 3 {
		t.Fatalf("by event: got %d, want 3", len(byEvent))
	}
	dests := map[string]hogwirev1.InvocationStatus{}
	for _, r := range byEvent {
		dests[r.GetDestination()] = r.GetStatus()
	}
	if dests["projects/shop/destinations/hook"] != failed || dests["projects/shop/destinations/slack"] != succeeded {
		t.Fatalf("by event: %v", dests)
	}
	// By distinct id (with characters no subject may hold), paged.
	var bob []*hogwirev1.Invocation
	from = Cursor{}
	for range 10 {
		page, next := list(Filter{DistinctID: "bob.smith@example.com"}, 7, from)
		bob = append(bob, page...)
		if next == (Cursor{}) {
			break
		}
		from = next
	}
	if len(bob) != 30 {
		t.Fatalf("by distinct id: got %d, want 30", len(bob))
	}
	for _, r := range bob {
		if r.GetDistinctId() != "bob.smith@example.com" {
			t.Fatalf("by distinct id: %v", r)
		}
	}
	failedBob, _ := list(Filter{DistinctID: "bob.smith@example.com", Statuses: []hogwirev1.InvocationStatus{failed}}, 100, Cursor{})
	if len(failedBob) != 3 { // events 3, 9, 15
		t.Fatalf("bob's failures: got %d, want 3", len(failedBob))
	}

	// Get by id, and not from another project.
	got, err := s.Get(ctx, "shop", fails[0].GetId())
	if err != nil || got.GetEventUuid() != fails[0].GetEventUuid() || got.GetName() != "projects/shop/invocations/"+fails[0].GetId() ||
		got.GetId() != fails[0].GetId() {
		t.Fatalf("get: %v, %v", got, err)
	}
	if _, err := s.Get(ctx, "other", fails[0].GetId()); err != ErrNotFound {
		t.Fatalf("get from another project: %v", err)
	}
	if _, err := s.Get(ctx, "shop", "nope"); err != ErrNotFound {
		t.Fatalf("get bad id: %v", err)
	}

	// The event, stored once.
	ev, err := s.Event(ctx, "shop", "0190-0007")
	if err != nil || string(ev) != `{"uuid":"0190-0007"}` {
		t.Fatalf("event: %q, %v", ev, err)
	}
	if _, err := s.Event(ctx, "other", "0190-0007"); err != ErrNotFound {
		t.Fatalf("event of another project: %v", err)
	}
}

func TestWriterDropsWhenFullAndNeverBlocks(t *testing.T) {
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{MaxBuffered: 3})
	for range 5 {
		w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded})
	}
	if d := w.Dropped(); d != 2 {
		t.Fatalf("dropped %d, want 2", d)
	}
	var nilWriter *Writer
	if nilWriter.Record(&Record{}) {
		t.Fatal("a nil writer recorded")
	}
}

func TestRunWritesAndDrainsOnStop(t *testing.T) {
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	for i := range 10 {
		w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: fmt.Sprint(i), Start: time.Now()})
	}
	cancel() // the interval never came: stopping writes what waits
	<-done
	out, _, err := s.List(context.Background(), "shop", Filter{}, 100, Cursor{})
	if err != nil || len(out) != 10 {
		t.Fatalf("got %d records, %v", len(out), err)
	}
}

// A full batch is written as soon as it is full, not at the interval:
// Record wakes Run then (and only then).
func TestRunWritesFullBatchBeforeInterval(t *testing.T) {
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{Interval: time.Hour, Batch: 5})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() { defer close(done); w.Run(ctx) }()
	for i := range 4 {
		w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: fmt.Sprint(i), Start: time.Now()})
	}
	w.Event("shop", "0", []byte("event"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, err := s.List(context.Background(), "shop", Filter{EventUUID: "0"}, 100, Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a full batch was not written before the interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if data, err := s.Event(context.Background(), "shop", "0"); err != nil || string(data) != "event" {
		t.Fatalf("event: %q, %v", data, err)
	}
}

// A node that starts first makes the stream with its event log's storage;
// the control plane then sets the retention without failing on it.
func TestOpenKeepsStorageSetsRetention(t *testing.T) {
	ctx := context.Background()
	nc := natstest.Connect(t)
	if _, err := Open(ctx, Config{Conn: nc, Memory: true, Attach: true}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Config{Conn: nc, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if c := st.CachedInfo().Config; c.MaxAge != time.Hour || c.Storage != jetstream.MemoryStorage {
		t.Fatalf("stream config %+v", c)
	}
	// A node attaching later changes nothing.
	if _, err := Open(ctx, Config{Conn: nc, Attach: true}); err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.Config.MaxAge != time.Hour {
		t.Fatalf("after a node attached: %v, %v", info, err)
	}
}

// Record keeps a copy: the caller may reuse its record and fetch rows at
// once, and records the writer reuses for later ones keep nothing of the
// earlier ones; several batches (and messages larger than one pack)
// store every record as it was given.
func TestRecordCopiesAndReuses(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{Batch: 7})
	r := Record{Destination: "projects/shop/destinations/hook", Status: succeeded, Fetches: make([]Fetch, 1)}
	long := strings.Repeat("x", maxPack/3)
	for i := range 30 {
		r.EventUUID, r.DistinctID, r.Start = fmt.Sprintf("e%02d", i), fmt.Sprintf("u%d", i%3), time.Unix(int64(1000+i), 0)
		r.Fetches = r.Fetches[:1]
		r.Fetches[0] = Fetch{Method: "POST", URL: fmt.Sprintf("https://example.com/%d", i), Status: 200, Attempt: 1}
		if i%2 == 0 {
			r.Fetches = append(r.Fetches, Fetch{Method: "GET", URL: "https://example.com/again", Status: 500, Attempt: 2})
		}
		r.Error, r.RerunOf = "", ""
		if i%10 == 3 {
			r.Error = long // three of these exceed one pack
		}
		if i == 5 {
			r.RerunOf = "r0"
		}
		w.Record(&r)
		if i%7 == 6 {
			w.Flush(ctx)
		}
	}
	w.Flush(ctx)
	out, _, err := s.List(ctx, "shop", Filter{}, 100, Cursor{})
	if err != nil || len(out) != 30 {
		t.Fatalf("got %d records, %v", len(out), err)
	}
	for _, got := range out {
		var i int
		fmt.Sscanf(got.GetEventUuid(), "e%d", &i)
		want := 1
		if i%2 == 0 {
			want = 2
		}
		if len(got.GetFetches()) != want || got.GetFetches()[0].GetUrl() != fmt.Sprintf("https://example.com/%d", i) ||
			got.GetDistinctId() != fmt.Sprintf("u%d", i%3) || got.GetStartTime().AsTime().Unix() != int64(1000+i) ||
			(got.GetError() == long) != (i%10 == 3) || (got.GetRerunOf() == "r0") != (i == 5) {
			t.Errorf("record %d: %v", i, got)
		}
	}
	// The index still finds them by distinct id.
	byPerson, _, err := s.List(ctx, "shop", Filter{DistinctID: "u1"}, 100, Cursor{})
	if err != nil || len(byPerson) != 10 {
		t.Errorf("by distinct id: %d records, %v", len(byPerson), err)
	}
}

// indexMsgs counts the stored index messages of key (its bucket's
// subject may hold other keys' too).
func indexMsgs(t *testing.T, s *Store, project string, kind byte, key string) int {
	t.Helper()
	ctx := context.Background()
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(indexSubject(project, kind, key)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(decodeEntry(m.Data, key, nil)) > 0 {
			n++
		}
		seq = m.Sequence + 1
	}
}

// An event's records on several destinations, and a person's records,
// that end in different batches share one index entry: the entries wait
// for IndexInterval (here, Flush) rather than going out with each batch,
// which stored one message per key and batch.
func TestIndexEntriesSpanBatches(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{Interval: time.Hour, IndexInterval: time.Hour})
	w.Event("shop", "e1", []byte("event"))
	for i, d := range []string{"hook", "slack", "crm", "hook", "slack"} {
		uuid := "e1"
		if i >= 3 {
			uuid = "e2" // the same person's next event
		}
		w.Record(&Record{Destination: "projects/shop/destinations/" + d, Status: succeeded, EventUUID: uuid, DistinctID: "ada", Start: time.Now()})
		// Each record in a batch of its own, as Run writes them.
		w.writeQueued(ctx)
	}
	if got := indexMsgs(t, s, "shop", indexEvent, "e1"); got != 0 {
		t.Fatalf("%d index messages before IndexInterval, want 0", got)
	}
	w.Flush(ctx)
	for _, k := range []struct {
		kind byte
		key  string
		want int // records
	}{{indexEvent, "e1", 3}, {indexEvent, "e2", 2}, {indexDistinct, "ada", 5}} {
		if got := indexMsgs(t, s, "shop", k.kind, k.key); got != 1 {
			t.Errorf("index %c %s: %d messages, want 1", k.kind, k.key, got)
		}
		f := Filter{EventUUID: k.key}
		if k.kind == indexDistinct {
			f = Filter{DistinctID: k.key}
		}
		if out, _, err := s.List(ctx, "shop", f, 100, Cursor{}); err != nil || len(out) != k.want {
			t.Errorf("lookup %c %s: %d records, %v; want %d", k.kind, k.key, len(out), err, k.want)
		}
	}
	if data, err := s.Event(ctx, "shop", "e1"); err != nil || string(data) != "event" {
		t.Errorf("stored event: %q, %v", data, err)
	}
	if d := w.Dropped(); d != 0 {
		t.Errorf("dropped %d", d)
	}
}

// A stored event's index entry waits a few flushes for its records', so
// that one entry points at both; one whose records never come is written
// alone after eventWaits flushes, and Flush writes everything at once.
func TestIndexEventWaitsForItsRecords(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{Interval: time.Hour, IndexInterval: time.Hour})
	w.Event("shop", "e1", []byte("one"))
	w.Event("shop", "e2", []byte("two"))
	w.writeQueued(ctx)
	w.flushIndex(ctx, false)
	if got := indexMsgs(t, s, "shop", indexEvent, "e1"); got != 0 {
		t.Fatalf("%d index messages for an event alone after one flush, want 0", got)
	}
	w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: "e1", DistinctID: "ada", Start: time.Now()})
	w.writeQueued(ctx)
	w.flushIndex(ctx, false)
	if got := indexMsgs(t, s, "shop", indexEvent, "e1"); got != 1 {
		t.Fatalf("%d index messages for an event and its record, want 1", got)
	}
	if data, err := s.Event(ctx, "shop", "e1"); err != nil || string(data) != "one" {
		t.Errorf("stored event: %q, %v", data, err)
	}
	if out, _, err := s.List(ctx, "shop", Filter{EventUUID: "e1"}, 10, Cursor{}); err != nil || len(out) != 1 {
		t.Errorf("lookup e1: %d records, %v", len(out), err)
	}
	// e2's records never come: its entry goes out alone in the end.
	for range eventWaits - 1 {
		w.flushIndex(ctx, false)
	}
	if got := indexMsgs(t, s, "shop", indexEvent, "e2"); got != 1 {
		t.Fatalf("%d index messages for an event alone after %d flushes, want 1", got, eventWaits+1)
	}
	if data, err := s.Event(ctx, "shop", "e2"); err != nil || string(data) != "two" {
		t.Errorf("stored event: %q, %v", data, err)
	}
	w.Event("shop", "e3", []byte("three"))
	w.Flush(ctx)
	if got := indexMsgs(t, s, "shop", indexEvent, "e3"); got != 1 {
		t.Errorf("%d index messages for an event after Flush, want 1", got)
	}
	if w.indexPending() {
		t.Error("entries still wait after Flush")
	}
}

// Run writes the index entries IndexInterval after their records, even
// when no other batch comes; and when too many wait, write does at once.
func TestIndexIntervalAndBounds(t *testing.T) {
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{Interval: time.Hour, Batch: 2, IndexInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() { defer close(done); w.Run(ctx) }()
	for i := range 2 {
		w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: "e1", DistinctID: fmt.Sprint(i), Start: time.Now()})
	}
	deadline := time.Now().Add(30 * time.Second)
	for indexMsgs(t, s, "shop", indexEvent, "e1") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the index was not written after IndexInterval")
		}
		time.Sleep(10 * time.Millisecond)
	}

	s2 := openStore(t, true)
	w2 := s2.NewWriter(WriterConfig{Interval: time.Hour, IndexInterval: time.Hour})
	w2.maxKeys = 4
	for i := range 4 {
		w2.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: fmt.Sprint("k", i), Start: time.Now()})
		w2.writeQueued(context.Background())
	}
	for i := range 4 {
		if got := indexMsgs(t, s2, "shop", indexEvent, fmt.Sprint("k", i)); got != 1 {
			t.Errorf("key %d: %d index messages once maxKeys wait, want 1", i, got)
		}
	}
}

// When too many entries wait, write flushes them at once, but a stored
// event's entry still waits for its records' (at a node's full rate the
// bound is reached about every second, and writing those alone cost an
// index message more per event); unless such entries alone fill half
// the room, when everything goes.
func TestIndexBoundKeepsEventsWaiting(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{Interval: time.Hour, IndexInterval: time.Hour})
	w.maxKeys = 4
	w.Event("shop", "e1", []byte("one"))
	w.writeQueued(ctx)
	for i := range 3 {
		w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: fmt.Sprint("k", i), Start: time.Now()})
		w.writeQueued(ctx)
	}
	for i := range 3 {
		if got := indexMsgs(t, s, "shop", indexEvent, fmt.Sprint("k", i)); got != 1 {
			t.Errorf("key k%d: %d index messages once maxKeys wait, want 1", i, got)
		}
	}
	if got := indexMsgs(t, s, "shop", indexEvent, "e1"); got != 0 {
		t.Fatalf("%d index messages for an event alone after a flush for room, want 0", got)
	}
	w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: "e1", Start: time.Now()})
	w.writeQueued(ctx)
	w.Flush(ctx)
	if got := indexMsgs(t, s, "shop", indexEvent, "e1"); got != 1 {
		t.Errorf("%d index messages for an event and its record, want 1", got)
	}
	if out, _, err := s.List(ctx, "shop", Filter{EventUUID: "e1"}, 10, Cursor{}); err != nil || len(out) != 1 {
		t.Errorf("lookup e1: %d records, %v", len(out), err)
	}
	if data, err := s.Event(ctx, "shop", "e1"); err != nil || string(data) != "one" {
		t.Errorf("stored event: %q, %v", data, err)
	}

	// Events alone filling the room are written, not kept.
	s2 := openStore(t, true)
	w2 := s2.NewWriter(WriterConfig{Interval: time.Hour, IndexInterval: time.Hour})
	w2.maxKeys = 4
	for i := range 4 {
		w2.Event("shop", fmt.Sprint("v", i), []byte("event"))
		w2.writeQueued(ctx)
	}
	for i := range 4 {
		if got := indexMsgs(t, s2, "shop", indexEvent, fmt.Sprint("v", i)); got != 1 {
			t.Errorf("event v%d: %d index messages once only events fill the room, want 1", i, got)
		}
	}
	if w2.indexPending() {
		t.Error("entries still wait once only events fill the room")
	}
}

// A key with more refs than one index message holds gets several, and
// a lookup reads them all.
func TestIndexEntrySplit(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{})
	w.maxEntry = 4
	for i := range 10 {
		w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: fmt.Sprint("e", i), DistinctID: "ada", Start: time.Now()})
	}
	w.Flush(ctx)
	if got := indexMsgs(t, s, "shop", indexDistinct, "ada"); got != 3 {
		t.Errorf("%d index messages for 10 refs of at most 4, want 3", got)
	}
	if out, _, err := s.List(ctx, "shop", Filter{DistinctID: "ada"}, 100, Cursor{}); err != nil || len(out) != 10 {
		t.Errorf("lookup: %d records, %v", len(out), err)
	}
	if w.Dropped() != 0 {
		t.Errorf("dropped %d", w.Dropped())
	}

	// More messages than one request reads (indexBatch): the lookup asks
	// again from where the last answer ended.
	w.maxEntry = 1
	const n = indexBatch*2 + 10
	for i := range n {
		w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: fmt.Sprint("f", i), DistinctID: "bob", Start: time.Now()})
	}
	w.Flush(ctx)
	if got := indexMsgs(t, s, "shop", indexDistinct, "bob"); got != n {
		t.Fatalf("%d index messages for %d refs of one each, want %d", got, n, n)
	}
	if out, _, err := s.List(ctx, "shop", Filter{DistinctID: "bob"}, 2*n, Cursor{}); err != nil || len(out) != n {
		t.Errorf("lookup over %d messages: %d records, %v", n, len(out), err)
	}
}

// A record stored moments ago may not be indexed yet: Unindexed says so,
// for a rerun to ask for its event again rather than call it missing.
func TestUnindexed(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{IndexInterval: time.Hour})
	w.Event("shop", "e1", []byte("event"))
	w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: failed, EventUUID: "e1", Start: time.Now()})
	w.writeQueued(ctx) // the records, not the index
	out, _, err := s.List(ctx, "shop", Filter{}, 10, Cursor{})
	if err != nil || len(out) != 1 {
		t.Fatalf("%d records, %v", len(out), err)
	}
	if _, err := s.Event(ctx, "shop", "e1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("event before the index: %v", err)
	}
	if !s.Unindexed(ctx, out[0].GetId()) {
		t.Error("a record stored moments ago is not Unindexed")
	}
	for _, id := range []string{"999-0", "x"} {
		if s.Unindexed(ctx, id) {
			t.Errorf("Unindexed(%q)", id)
		}
	}
	w.Flush(ctx)
	if data, err := s.Event(ctx, "shop", "e1"); err != nil || string(data) != "event" {
		t.Errorf("event after the index: %q, %v", data, err)
	}
}

// The same key string in two projects, or as two kinds of key, makes
// entries of its own each: the pending index keeps them apart.
func TestIndexSameKeyProjectsAndKinds(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{Interval: time.Hour, IndexInterval: time.Hour})
	for _, r := range []Record{
		{Destination: "projects/shop/destinations/hook", EventUUID: "k", DistinctID: "k", Rerun: "k"},
		{Destination: "projects/shop/destinations/hook", EventUUID: "other", DistinctID: "k"},
		{Destination: "projects/acme/destinations/hook", EventUUID: "k", DistinctID: "x"},
		{Destination: "projects/acme/destinations/crm", EventUUID: "y", DistinctID: "x", Rerun: "k"},
		{Destination: "projects/acme/destinations/crm", EventUUID: "z", DistinctID: "x", Rerun: "k"},
	} {
		r.Status, r.Start = succeeded, time.Now()
		w.Record(&r)
		w.writeQueued(ctx)
	}
	w.Flush(ctx)
	for _, c := range []struct {
		project string
		f       Filter
		want    int
	}{
		{"shop", Filter{EventUUID: "k"}, 1},
		{"shop", Filter{DistinctID: "k"}, 2},
		{"shop", Filter{Rerun: "k"}, 1},
		{"acme", Filter{EventUUID: "k"}, 1},
		{"acme", Filter{DistinctID: "k"}, 0},
		{"acme", Filter{DistinctID: "x"}, 3},
		{"acme", Filter{Rerun: "k"}, 2},
	} {
		if out, _, err := s.List(ctx, c.project, c.f, 100, Cursor{}); err != nil || len(out) != c.want {
			t.Errorf("%s %+v: %d records, %v; want %d", c.project, c.f, len(out), err, c.want)
		}
	}
	for _, c := range []struct {
		project string
		kind    byte
		want    int
	}{{"shop", indexEvent, 1}, {"shop", indexDistinct, 1}, {"shop", indexRerun, 1}, {"acme", indexEvent, 1}, {"acme", indexDistinct, 0}, {"acme", indexRerun, 1}} {
		if got := indexMsgs(t, s, c.project, c.kind, "k"); got != c.want {
			t.Errorf("%s %c k: %d index messages, want %d", c.project, c.kind, got, c.want)
		}
	}
}

// An entry that waits for its records is carried from flush to flush with
// its refs and its count of flushes waited: records that come a few
// flushes later share its entry, and one whose records never come goes
// out alone on exactly the flush after eventWaits; entries of the same
// uuid in another project wait apart.
func TestIndexCarriedEntries(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{Interval: time.Hour, IndexInterval: time.Hour})
	w.Event("shop", "e1", []byte("shop e1"))
	w.Event("acme", "e1", []byte("acme e1"))
	w.Event("shop", "e2", []byte("shop e2"))
	w.writeQueued(ctx)
	for range eventWaits - 1 {
		w.flushIndex(ctx, false)
	}
	w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: "e1", DistinctID: "ada", Start: time.Now()})
	w.writeQueued(ctx)
	w.flushIndex(ctx, false) // eventWaits flushes for the events
	if got := indexMsgs(t, s, "shop", indexEvent, "e1"); got != 1 {
		t.Fatalf("shop e1: %d index messages once its record came, want 1", got)
	}
	m, err := mustStream(t, s).GetMsg(ctx, 1, jetstream.WithGetMsgSubject(indexSubject("shop", indexEvent, "e1")))
	if err != nil {
		t.Fatal(err)
	}
	if refs := decodeEntry(m.Data, "e1", nil); len(refs) != 2 || !refs[0].event || refs[1].event {
		t.Errorf("shop e1's entry: %+v, want the event's ref and the record's", refs)
	}
	for _, p := range []string{"acme", "shop"} {
		key := map[string]string{"acme": "e1", "shop": "e2"}[p]
		if got := indexMsgs(t, s, p, indexEvent, key); got != 0 {
			t.Fatalf("%s %s: %d index messages after %d flushes alone, want 0", p, key, got, eventWaits)
		}
	}
	w.flushIndex(ctx, false)
	for _, c := range []struct{ project, key, data string }{{"acme", "e1", "acme e1"}, {"shop", "e2", "shop e2"}} {
		if got := indexMsgs(t, s, c.project, indexEvent, c.key); got != 1 {
			t.Errorf("%s %s: %d index messages after %d flushes alone, want 1", c.project, c.key, got, eventWaits+1)
		}
		if data, err := s.Event(ctx, c.project, c.key); err != nil || string(data) != c.data {
			t.Errorf("%s %s: stored event %q, %v", c.project, c.key, data, err)
		}
	}
	if w.indexPending() {
		t.Error("entries still wait")
	}
}

func mustStream(t *testing.T, s *Store) jetstream.Stream {
	t.Helper()
	st, err := s.js.Stream(context.Background(), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// indexSubjects counts the stream's index messages by subject, for the
// subjects under prefix.
func indexSubjects(t *testing.T, s *Store, prefix string) map[string]uint64 {
	t.Helper()
	st, err := s.js.Stream(context.Background(), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// Entries of UUIDv7 event uuids of the last day go, many to a message, to
// their time slot's subject; every event and record is still found by
// its uuid, and older uuids, other keys and entries written a day later
// keep subjects of their own.
func TestPackedEventIndex(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, true)
	w := s.NewWriter(WriterConfig{Interval: time.Hour, IndexInterval: time.Hour})
	w.maxPacked = 200 // bytes: a busy subject's entries need several messages
	const n = 2000
	uuids := make([]string, n)
	for i := range uuids {
		u, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		uuids[i] = u.String()
		w.Event("shop", uuids[i], []byte(uuids[i]))
		w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: uuids[i], DistinctID: "ada", Start: time.Now()})
	}
	old := "01900000-0000-7000-8000-000000000001" // June 2024
	w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: old, Start: time.Now()})
	w.Record(&Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: "e1", Start: time.Now()})
	w.Flush(ctx)

	packed := indexSubjects(t, s, indexPrefix+"shop.t.")
	var msgs uint64
	for _, c := range packed {
		msgs += c
	}
	if len(packed) == 0 || len(packed) > 2<<packedBucketBits || msgs >= n/2 || msgs == uint64(len(packed)) {
		t.Errorf("%d packed index messages in %d subjects for %d events, want fewer than %d in at most %d, some subjects with several", msgs, len(packed), n, n/2, 2<<packedBucketBits)
	}
	if got := len(indexSubjects(t, s, indexPrefix+"shop.e.")); got != 2 {
		t.Errorf("%d subjects of their own, want 2 (the old uuid and e1)", got)
	}
	for _, u := range append(uuids, old, "e1") {
		out, _, err := s.List(ctx, "shop", Filter{EventUUID: u}, 10, Cursor{})
		if err != nil || len(out) != 1 || out[0].GetEventUuid() != u {
			t.Fatalf("lookup %s: %v, %v", u, out, err)
		}
	}
	for _, u := range uuids[:50] {
		if data, err := s.Event(ctx, "shop", u); err != nil || string(data) != u {
			t.Fatalf("stored event %s: %q, %v", u, data, err)
		}
	}
	if out, _, err := s.List(ctx, "shop", Filter{DistinctID: "ada"}, 2*n, Cursor{}); err != nil || len(out) != n {
		t.Errorf("lookup by distinct id: %d records, %v", len(out), err)
	}

	// A day later, a record of the first event (a late retry) is indexed
	// apart: the lookup reads both subjects.
	w.now = func() time.Time { return time.Now().Add(25 * time.Hour) }
	w.Record(&Record{Destination: "projects/shop/destinations/crm", Status: failed, EventUUID: uuids[0], Start: time.Now()})
	w.Flush(ctx)
	if got := indexMsgs(t, s, "shop", indexEvent, uuids[0]); got != 1 {
		t.Errorf("%d index messages of its own for a uuid a day old, want 1", got)
	}
	out, _, err := s.List(ctx, "shop", Filter{EventUUID: uuids[0]}, 10, Cursor{})
	if err != nil || len(out) != 2 {
		t.Fatalf("lookup after a day: %d records, %v", len(out), err)
	}
	// Cursors page through both.
	page, next, err := s.List(ctx, "shop", Filter{EventUUID: uuids[0]}, 1, Cursor{})
	if err != nil || len(page) != 1 || next == (Cursor{}) {
		t.Fatalf("first page: %d, %v, %v", len(page), next, err)
	}
	if page2, _, err := s.List(ctx, "shop", Filter{EventUUID: uuids[0]}, 1, next); err != nil || len(page2) != 1 || page2[0].GetId() == page[0].GetId() {
		t.Fatalf("second page: %v, %v", page2, err)
	}
	if w.Dropped() != 0 {
		t.Errorf("dropped %d", w.Dropped())
	}
}
