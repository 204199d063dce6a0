package persons

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hogwire/hogwire/embednats"
)

var benchPersons = flag.Int("persons.n", 10_000, "persons stored before the benchmarks measure (e.g. 1000000)")

// benchStore is one store with *benchPersons persons, shared by the
// benchmarks of a run: filling it is the slow part.
var benchStore struct {
	once sync.Once
	s    *Store
	err  error
	took time.Duration
}

// fill stores n persons, each with one distinct id ("u<i>") and a few
// properties, writing their keys directly from many goroutines (as
// Process would, without its reads and checks).
func fill(b *testing.B) *Store {
	benchStore.once.Do(func() {
		ns, err := embednats.Start(embednats.Config{StoreDir: b.TempDir()})
		if err != nil {
			benchStore.err = err
			return
		}
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			benchStore.err = err
			return
		}
		s, err := New(Config{Conn: nc, Memory: true})
		if err != nil {
			benchStore.err = err
			return
		}
		ctx := context.Background()
		kv, err := s.bucket(ctx, "bench", true)
		if err != nil {
			benchStore.err = err
			return
		}
		start := time.Now()
		// Asynchronous publishes, a window of them outstanding per
		// goroutine: a fill is bound by the server's storing rather than
		// by round trips. The machine may be busy: a slow acknowledgement
		// is not a failure.
		js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1<<16), jetstream.WithPublishAsyncTimeout(time.Minute))
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 1)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var window []jetstream.PubAckFuture
				wait := func() bool {
					for _, f := range window {
						select {
						case <-f.Ok():
						case err := <-f.Err():
							trySend(errs, err)
							return false
						}
					}
					window = window[:0]
					return true
				}
				for i := next.Add(1) - 1; i < int64(*benchPersons); i = next.Add(1) - 1 {
					d := fmt.Sprintf("u%d", i)
					p := &Person{ID: DerivedID("bench", d), DistinctIDs: []string{d}, Version: 1, CreatedAt: start,
						Properties: map[string]any{"email": d + "@example.com", "plan": "free", "n": float64(i)}}
					b, _ := encode(p)
					for _, m := range [][2]string{{distinctKey(d), `"` + p.ID + `"`}, {personKey(p.ID), string(b)}} {
						f, err := js.PublishAsync("$KV."+s.cfg.Bucket+"bench."+m[0], []byte(m[1]))
						if err != nil {
							trySend(errs, err)
							return
						}
						window = append(window, f)
					}
					if len(window) >= 1024 && !wait() {
						return
					}
				}
				wait()
			}()
		}
		wg.Wait()
		select {
		case benchStore.err = <-errs:
			return
		default:
		}
		st, err := kv.Status(ctx)
		if err != nil || st.Values() != uint64(2**benchPersons) {
			benchStore.err = fmt.Errorf("stored %v keys (%v), want %d", st, err, 2**benchPersons)
			return
		}
		benchStore.s, benchStore.took = s, time.Since(start)
	})
	if benchStore.err != nil {
		b.Fatal(benchStore.err)
	}
	b.Logf("%d persons stored (filled in %v)", *benchPersons, benchStore.took.Round(time.Millisecond))
	return benchStore.s
}

func trySend(c chan error, err error) {
	select {
	case c <- err:
	default:
	}
}

// BenchmarkLookup reads the person of a random stored distinct id, as a
// node does for an event that changes nothing, from 16 goroutines.
func BenchmarkLookup(b *testing.B) {
	s := fill(b)
	var i atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := (i.Add(7919) * 104729) % int64(*benchPersons)
			ev := &Event{UUID: fmt.Sprint(n), Name: "e", DistinctID: fmt.Sprintf("u%d", n)}
			if _, err := s.Process(context.Background(), "bench", ev, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	reportCPU(b, cpu0)
}

// BenchmarkUpdate applies a $set to a random stored person and reads the
// result, as a node does for an event with a $set, from 16 goroutines.
func BenchmarkUpdate(b *testing.B) {
	benchSets(b, "updates/s", func(k int64) string { return fmt.Sprintf("u%d", (k*104729)%int64(*benchPersons)) })
}

// BenchmarkCreate applies a $set to a distinct id never seen before, which
// stores a new person, and reads the result, from 16 goroutines.
func BenchmarkCreate(b *testing.B) {
	run := time.Now().UnixNano()
	benchSets(b, "creates/s", func(k int64) string { return fmt.Sprintf("new-%d-%d", run, k) })
}

// benchSets measures $set events on the distinct ids that distinct gives
// for 1, 2, 3…, reporting them per second as unit.
func benchSets(b *testing.B, unit string, distinct func(int64) string) {
	s := fill(b)
	run := time.Now().UnixNano()
	var i atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := i.Add(1)
			ev := &Event{UUID: fmt.Sprintf("e%d-%d", run, k), Name: "e", DistinctID: distinct(k),
				Properties: map[string]any{"$set": map[string]any{"seen": float64(k)}}}
			if _, err := s.Process(context.Background(), "bench", ev, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	reportCPU(b, cpu0)
}

// cpuTime is the CPU time the process (the store and the embedded NATS
// server both) has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since cpu0: a measure of
// work that a busy machine disturbs less than the time per operation.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkMessage processes messages of 100 events of 100 distinct ids,
// as the data plane does a capture batch of a server SDK relaying many
// users (ProcessRuns), and reports the CPU time per event, the embedded
// NATS server's included. The cases: every distinct id new (create),
// then each message again with new values (update: the persons cached)
// and with the same (unchanged: read only). "alone" processes each run
// on its own (ProcessRun), 16 at once, as the data plane did before
// ProcessRuns.
func BenchmarkMessage(b *testing.B) {
	for _, mode := range []string{"together", "alone"} {
		for _, kind := range []string{"create", "update", "unchanged"} {
			b.Run(kind+"/"+mode, func(b *testing.B) { benchMessages(b, kind, mode == "together") })
		}
	}
}

func benchMessages(b *testing.B, kind string, together bool) {
	ns, err := embednats.Start(embednats.Config{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Close)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	s, err := New(Config{Conn: nc, Memory: true})
	if err != nil {
		b.Fatal(err)
	}
	const size = 100
	message := func(m, value int) ([][]*Event, [][]bool) {
		runs, reads := make([][]*Event, size), make([][]bool, size)
		for i := range runs {
			runs[i] = []*Event{{UUID: fmt.Sprintf("%d-%d-%d", m, i, value), Name: "e", DistinctID: fmt.Sprintf("m%d-%d", m, i),
				Properties: map[string]any{"$set": map[string]any{"seen": float64(value)}}}}
			reads[i] = []bool{true}
		}
		return runs, reads
	}
	process := func(m, value int) {
		runs, reads := message(m, value)
		if together {
			if _, err := s.ProcessRuns(context.Background(), "bench", runs, reads, 16); err != nil {
				b.Fatal(err)
			}
			return
		}
		// As the data plane did before ProcessRuns: each run on its own,
		// 16 at once.
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for r := next.Add(1) - 1; r < size; r = next.Add(1) - 1 {
					if _, err := s.ProcessRun(context.Background(), "bench", runs[r], reads[r]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	// Updates cycle through the persons of 50 messages, which the store
	// keeps cached.
	cycle := b.N
	if kind != "create" {
		cycle = min(b.N, 50)
		for m := range cycle {
			process(m, 0)
		}
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for m := range b.N {
		value := 0
		if kind == "update" {
			value = 1 + m/cycle
		}
		process(m%cycle, value)
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*size), "cpu-ns/event")
}
