package invocations

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embednats"
)

var benchRecords = flag.Int("invocations.records", 1_000_000, "records stored before the query benchmarks run")

// benchStore is one store of *benchRecords records on disk, shared by the
// query benchmarks: 20 destinations, 100,000 events (an event goes to ten
// of them), 10,000 persons, 2% failed over five error kinds. Records
// start when they are written (a record is stored within seconds of its
// start): the queries' time ranges are 1/24 of the writing time.
var bench struct {
	once       sync.Once
	s          *Store
	ns         *embednats.Server
	nc         *nats.Conn
	dir        string
	start, end time.Time
	err        error
}

// TestMain closes the benchmarks' store, which outlives each benchmark.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if bench.nc != nil {
		bench.nc.Close()
	}
	if bench.ns != nil {
		bench.ns.Close()
	}
	if bench.dir != "" {
		_ = os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

func benchStore(b *testing.B) *Store {
	b.Helper()
	bench.once.Do(func() {
		if bench.dir, bench.err = os.MkdirTemp("", "invocations-bench"); bench.err != nil {
			return
		}
		ns, err := embednats.Start(embednats.Config{StoreDir: bench.dir})
		if err != nil {
			bench.err = err
			return
		}
		bench.ns = ns
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			bench.err = err
			return
		}
		bench.nc = nc
		ctx := context.Background()
		s, err := Open(ctx, Config{Conn: nc})
		if err != nil {
			bench.err = err
			return
		}
		w := s.NewWriter(WriterConfig{MaxBuffered: 10000, Batch: 2000})
		rng := rand.New(rand.NewPCG(1, 2))
		kinds := []string{"http_5xx", "http_4xx", "fetch_timeout", "hog_error", "inputs"}
		bench.start = time.Now()
		for i := range *benchRecords {
			ev := i / 10
			r := &Record{Destination: fmt.Sprintf("projects/shop/destinations/d%02d", (ev+i%10)%20), Status: succeeded,
				EventUUID: benchUUID(ev), EventName: "$pageview",
				DistinctID: fmt.Sprintf("user-%d", ev%10000), PersonID: fmt.Sprintf("p%d", ev%10000),
				Start: time.Now(), Duration: 30 * time.Millisecond,
				Fetches: []Fetch{{Method: "POST", URL: "https://api.example.com/v1/track", Status: 200, Duration: 25 * time.Millisecond, Attempt: 1}}}
			if rng.IntN(50) == 0 {
				r.Status, r.ErrorKind, r.Error = failed, kinds[rng.IntN(len(kinds))], "Request failed with status 503"
				r.Fetches[0].Status = 503
			}
			for !w.Record(r) {
				w.Flush(ctx)
			}
			if i%10 == 0 {
				for !w.Event("shop", r.EventUUID, pageview(b, r.EventUUID, r.DistinctID)) {
					w.Flush(ctx)
				}
			}
		}
		w.Flush(ctx)
		bench.end = time.Now()
		st, _ := s.js.Stream(ctx, StreamName)
		info, _ := st.Info(ctx)
		fmt.Printf("stored %d records (%d messages, %d bytes) in %v\n", *benchRecords, info.State.Msgs, info.State.Bytes, bench.end.Sub(bench.start).Round(time.Millisecond))
		rb, eb, ib := w.Stored()
		ev := pageview(b, "01900000-0000-7000-8000-000000000000", "user-0")
		fmt.Printf("payload: records %d bytes (%d per record), index %d bytes (%d per record), events %d bytes (%d per event; a %d-byte posthog-js $pageview)\n",
			rb, rb/int64(*benchRecords), ib, ib/int64(*benchRecords), eb, eb/int64(max(*benchRecords/10, 1)), len(ev))
		bench.s = s
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.s
}

// pageview is the wire encoding of a $pageview as posthog-js sends it: its
// usual properties and a $set_once of the initial ones.
func pageview(b *testing.B, uuid, distinct string) []byte {
	props, err := structpb.NewStruct(map[string]any{
		"$os": "Mac OS X", "$os_version": "14.5.0", "$browser": "Chrome", "$browser_version": 126, "$device_type": "Desktop",
		"$current_url": "https://shop.example.com/pricing?plan=pro", "$host": "shop.example.com", "$pathname": "/pricing",
		"$raw_user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"$screen_height":  1117, "$screen_width": 1728, "$viewport_height": 959, "$viewport_width": 1728, "$lib": "web", "$lib_version": "1.139.2",
		"$insert_id": "k3rb8qkyl6n0xz1c", "$time": 1.7195e9, "distinct_id": distinct, "$device_id": "01900000-0000-7000-8000-0000000000d1",
		"$session_id": "01900000-0000-7000-8000-0000000000e1", "$window_id": "01900000-0000-7000-8000-0000000000f1",
		"$pageview_id": "01900000-0000-7000-8000-000000000011", "$referrer": "https://www.google.com/", "$referring_domain": "www.google.com",
		"$is_identified": true, "$process_person_profile": true, "token": "phc_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG",
		"$set_once": map[string]any{"$initial_referrer": "https://www.google.com/", "$initial_referring_domain": "www.google.com",
			"$initial_current_url": "https://shop.example.com/", "$initial_pathname": "/", "$initial_browser": "Chrome", "$initial_os": "Mac OS X"},
		"title": "Pricing — Example Shop", "$configured_session_timeout_ms": 1800000, "$sent_at": "2024-06-28T09:01:02.345Z",
	})
	if err != nil {
		b.Fatal(err)
	}
	data, err := proto.Marshal(&hogwirev1.Event{Uuid: uuid, Event: "$pageview", DistinctId: distinct, Properties: props,
		Timestamp: timestamppb.Now()})
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkQueryDestinationTimeStatus: one destination's failures in a
// 24th of the time range, first page.
func BenchmarkQueryDestinationTimeStatus(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		hour := bench.end.Sub(bench.start) / 24
		start := bench.start.Add(time.Duration(i%24) * hour)
		out, _, err := s.List(ctx, "shop", Filter{Destination: fmt.Sprintf("d%02d", i%20), Start: start, End: start.Add(hour),
			Statuses: []hogwirev1.InvocationStatus{failed}}, 100, Cursor{})
		if err != nil {
			b.Fatal(err)
		}
		n += len(out)
	}
	b.ReportMetric(float64(n)/float64(b.N), "records/op")
}

// BenchmarkQueryErrorKind: one error kind over the whole project and day.
func BenchmarkQueryErrorKind(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	n := 0
	for b.Loop() {
		out, _, err := s.List(ctx, "shop", Filter{Statuses: []hogwirev1.InvocationStatus{failed}, ErrorKind: "hog_error"}, 100, Cursor{})
		if err != nil {
			b.Fatal(err)
		}
		n += len(out)
	}
	b.ReportMetric(float64(n)/float64(b.N), "records/op")
}

// BenchmarkLookupEventUUID: every destination's record of one event.
func BenchmarkLookupEventUUID(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	n := 0
	for i := 0; b.Loop(); i++ {
		uuid := benchUUID((i * 7919) % (*benchRecords / 10))
		out, _, err := s.List(ctx, "shop", Filter{EventUUID: uuid}, 100, Cursor{})
		if err != nil {
			b.Fatal(err)
		}
		n += len(out)
	}
	b.ReportMetric(float64(n)/float64(b.N), "records/op")
}

// BenchmarkLookupDistinctID: a person's first 100 records (of 100).
func BenchmarkLookupDistinctID(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	n := 0
	for i := 0; b.Loop(); i++ {
		out, _, err := s.List(ctx, "shop", Filter{DistinctID: fmt.Sprintf("user-%d", (i*7919)%10000)}, 100, Cursor{})
		if err != nil {
			b.Fatal(err)
		}
		n += len(out)
	}
	b.ReportMetric(float64(n)/float64(b.N), "records/op")
}

// BenchmarkStoredEvent: the event of a uuid, for a rerun.
func BenchmarkStoredEvent(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Event(ctx, "shop", benchUUID((i*7919)%(*benchRecords/10))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrite: the cost of recording, per invocation of a one-destination
// pipeline (a record, its event, a new person each), NATS in the process
// and in memory as in the pipeline benchmark.
func BenchmarkWrite(b *testing.B) {
	s := openStore(b, true)
	w := s.NewWriter(WriterConfig{})
	ctx := context.Background()
	ev := pageview(b, "01900000-0000-7000-8000-000000000000", "user-0")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		uuid := benchUUID(i)
		r := &Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventUUID: uuid, EventName: "$pageview",
			DistinctID: fmt.Sprintf("user-%d", i), PersonID: "p", Start: time.Now(), Duration: time.Millisecond,
			Fetches: []Fetch{{Method: "POST", URL: "https://api.example.com/v1/track", Status: 200, Duration: time.Millisecond, Attempt: 1}}}
		w.Event("shop", uuid, ev)
		w.Record(r)
		if i%1000 == 999 {
			w.Flush(ctx)
		}
	}
	w.Flush(ctx)
}

// BenchmarkRecord: recording as the data plane does it, Record called
// from as many goroutines as CPUs while Run writes (NATS in the process,
// in memory), until every record is stored: the hand-off and the copy,
// and the writer's and NATS's work. The buffer holds them all, so that
// none is dropped (a dropped one costs less).
func BenchmarkRecord(b *testing.B) {
	s := openStore(b, true)
	w := s.NewWriter(WriterConfig{MaxBuffered: max(b.N, 100000)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	uuids := make([]string, 4096)
	for i := range uuids {
		uuids[i] = benchUUID(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := Record{Destination: "projects/shop/destinations/hook", Status: succeeded, EventName: "$pageview",
			PersonID: "p", Start: time.Now(), Duration: time.Millisecond,
			Fetches: []Fetch{{Method: "POST", URL: "https://api.example.com/v1/track", Status: 200, Duration: time.Millisecond, Attempt: 1}}}
		for i := 0; pb.Next(); i++ {
			r.EventUUID, r.DistinctID = uuids[i%len(uuids)], uuids[(i/7)%len(uuids)]
			w.Record(&r)
		}
	})
	w.Flush(ctx) // beside Run: stopping Run mid-batch would fail it
	cancel()
	<-done
	b.StopTimer()
	b.ReportMetric(float64(w.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkWriteDestinations: the cost of recording, per invocation, of
// events that each run on ten destinations whose records end over several
// batches, as under load (destination d's record of an event comes 30·d
// events after the first's), a new person each; NATS in the process and
// in memory. Run writes a batch of 1,000 items at a time and, at the
// pipeline benchmark's rate, the index about every 20,000.
func BenchmarkWriteDestinations(b *testing.B) {
	s := openStore(b, true)
	w := s.NewWriter(WriterConfig{})
	ctx := context.Background()
	ev := pageview(b, "01900000-0000-7000-8000-000000000000", "user-0")
	const dests, lag = 10, 30
	b.ReportAllocs()
	items, p := 0, benchPacer{w: w, nextBatch: 1000, nextIndex: 20000}
	for i := 0; b.Loop(); i++ {
		step, d := i/dests, i%dests
		e := step - lag*d
		if e < 0 {
			continue
		}
		if d == 0 {
			w.Event("shop", benchUUID(e), ev)
			items++
		}
		w.Record(benchRecord("projects/shop/destinations/hook"+strconv.Itoa(d), e))
		items++
		p.step(ctx, items, true)
	}
	w.Flush(ctx)
}

// BenchmarkWriteOneDestination: the cost of recording, per invocation, of
// the one-destination pipeline: each event is stored when it is routed and
// its one record comes 2,500 events later (a batch or more, as under
// load), a new person each; NATS in the process and in memory. Batches of
// 1,000 items, and the index as Run writes it every IndexInterval (here
// every 20,000 items), with stored events' entries waiting for their
// records'.
func BenchmarkWriteOneDestination(b *testing.B) {
	s := openStore(b, true)
	w := s.NewWriter(WriterConfig{})
	ctx := context.Background()
	ev := pageview(b, "01900000-0000-7000-8000-000000000000", "user-0")
	const lag = 2500
	b.ReportAllocs()
	items, p := 0, benchPacer{w: w, nextBatch: 1000, nextIndex: 20000}
	for i := 0; b.Loop(); i++ {
		w.Event("shop", benchUUID(i), ev)
		items++
		if e := i - lag; e >= 0 {
			w.Record(benchRecord("projects/shop/destinations/hook", e))
			items++
		}
		p.step(ctx, items, false)
	}
	w.Flush(ctx)
}

// benchUUID is the uuid of the benchmarks' event e: a UUIDv7 of the time
// the test binary started, as capture gives events now.
func benchUUID(e int) string {
	return fmt.Sprintf("%08x-%04x-7000-8000-%012d", benchMillis>>16, benchMillis&0xffff, e)
}

// benchMillis is the time of the benchmarks' event uuids.
var benchMillis = time.Now().UnixMilli()

// benchRecord is a delivery of event e to dest, by a new person each.
func benchRecord(dest string, e int) *Record {
	return &Record{Destination: dest, Status: succeeded, EventUUID: benchUUID(e), EventName: "$pageview",
		DistinctID: "user-" + strconv.Itoa(e), PersonID: "p", Start: time.Now(), Duration: time.Millisecond,
		Fetches: []Fetch{{Method: "POST", URL: "https://api.example.com/v1/track", Status: 200, Duration: time.Millisecond, Attempt: 1}}}
}

// benchPacer writes a batch every 1,000 items and the index every 20,000,
// as Run does at the pipeline benchmark's rate.
type benchPacer struct {
	w                    *Writer
	nextBatch, nextIndex int
}

func (p *benchPacer) step(ctx context.Context, items int, all bool) {
	if items >= p.nextBatch {
		p.w.writeQueued(ctx)
		p.nextBatch += 1000
	}
	if items >= p.nextIndex {
		p.w.flushIndex(ctx, all)
		p.nextIndex += 20000
	}
}
