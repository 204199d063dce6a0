package invocations

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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
				EventUUID: fmt.Sprintf("01900000-0000-7000-8000-%012d", ev), EventName: "$pageview",
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
				for !w.Event("shop", r.EventUUID, []byte(`{"uuid":"`+r.EventUUID+`","event":"$pageview","properties":{"$current_url":"https://example.com/pricing","plan":"pro"}}`)) {
					w.Flush(ctx)
				}
			}
		}
		w.Flush(ctx)
		bench.end = time.Now()
		st, _ := s.js.Stream(ctx, StreamName)
		info, _ := st.Info(ctx)
		fmt.Printf("stored %d records (%d messages, %d bytes) in %v\n", *benchRecords, info.State.Msgs, info.State.Bytes, bench.end.Sub(bench.start).Round(time.Millisecond))
		bench.s = s
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.s
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
		uuid := fmt.Sprintf("01900000-0000-7000-8000-%012d", (i*7919)%(*benchRecords/10))
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
		if _, err := s.Event(ctx, "shop", fmt.Sprintf("01900000-0000-7000-8000-%012d", (i*7919)%(*benchRecords/10))); err != nil {
			b.Fatal(err)
		}
	}
}
