package invocations

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

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
	s       *Store
	cfg     WriterConfig
	ch      chan item
	dropped atomic.Int64
	failed  atomic.Int64
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
	return &Writer{s: s, cfg: cfg, ch: make(chan item, cfg.MaxBuffered)}
}

// Record queues a record; false when the buffer was full and it was
// dropped. A nil Writer records nothing.
func (w *Writer) Record(r *Record) bool {
	if w == nil {
		return false
	}
	select {
	case w.ch <- item{rec: r}:
		return true
	default:
		w.dropped.Add(1)
		return false
	}
}

// Event queues an event's wire encoding to be kept with its records, once
// per event whatever the number of its destinations.
func (w *Writer) Event(project, uuid string, data []byte) bool {
	if w == nil || uuid == "" {
		return false
	}
	select {
	case w.ch <- item{project: project, uuid: uuid, data: data}:
		return true
	default:
		w.dropped.Add(1)
		return false
	}
}

// Dropped counts what was not written: dropped for a full buffer, or
// refused by NATS.
func (w *Writer) Dropped() int64 { return w.dropped.Load() + w.failed.Load() }

// Run writes batches until ctx ends, then what is still buffered (for at
// most 5 seconds).
func (w *Writer) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	batch := make([]item, 0, w.cfg.Batch)
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if len(batch) > 0 {
				w.write(fctx, batch)
			}
			w.Flush(fctx)
			return
		case it := <-w.ch:
			batch = append(batch, it)
			if len(batch) >= w.cfg.Batch {
				w.write(ctx, batch)
				batch = batch[:0]
			}
		case <-t.C:
			if len(batch) > 0 {
				w.write(ctx, batch)
				batch = batch[:0]
			}
		}
	}
}

// Flush writes what is buffered now; for tests and shutdown.
func (w *Writer) Flush(ctx context.Context) {
	batch := make([]item, 0, w.cfg.Batch)
	for {
		batch = batch[:0]
	drain:
		for len(batch) < w.cfg.Batch {
			select {
			case it := <-w.ch:
				batch = append(batch, it)
			default:
				break drain
			}
		}
		if len(batch) == 0 || ctx.Err() != nil {
			return
		}
		w.write(ctx, batch)
	}
}

// indexEntry points the index subject's key at what f stored.
type indexEntry struct {
	subject string
	what    byte
	key     string
}

type published struct {
	f       jetstream.PubAckFuture
	entries [2]indexEntry
	n       int
}

// write stores a batch: records and events first, then, once their
// sequences are known, the index entries pointing at them.
func (w *Writer) write(ctx context.Context, batch []item) {
	js := w.s.js
	pending := make([]published, 0, len(batch))
	publish := func(subject string, data []byte) jetstream.PubAckFuture {
		f, err := js.PublishAsync(subject, data)
		if err != nil {
			w.failed.Add(1)
			return nil
		}
		return f
	}
	for _, it := range batch {
		if it.rec == nil {
			if !resourcename.ValidID(it.project) {
				continue
			}
			if f := publish(eventPrefix+it.project, it.data); f != nil {
				pending = append(pending, published{f: f, n: 1,
					entries: [2]indexEntry{{subject: indexSubject(it.project, indexEvent, it.uuid), what: entryEvent, key: it.uuid}}})
			}
			continue
		}
		project, dest, err := resourcename.ParseDestination(it.rec.Destination)
		if err != nil || project == resourcename.Wildcard {
			continue
		}
		pb := it.rec.proto()
		data, err := proto.Marshal(pb)
		if err != nil {
			w.failed.Add(1)
			continue
		}
		f := publish(recordSubject(project, dest, pb), data)
		if f == nil {
			continue
		}
		p := published{f: f}
		if k := it.rec.EventUUID; k != "" {
			p.entries[p.n] = indexEntry{subject: indexSubject(project, indexEvent, k), what: entryRecord, key: k}
			p.n++
		}
		if k := it.rec.DistinctID; k != "" {
			p.entries[p.n] = indexEntry{subject: indexSubject(project, indexDistinct, k), what: entryRecord, key: k}
			p.n++
		}
		pending = append(pending, p)
	}
	// One index entry per key and batch: the records of one event (one
	// per destination) and of one person usually end close together.
	type group struct {
		subject string
		seqs    []uint64
	}
	groups := map[indexEntry]*group{}
	var order []indexEntry
	for i := range pending {
		p := &pending[i]
		select {
		case ack := <-p.f.Ok():
			for _, e := range p.entries[:p.n] {
				g := groups[e]
				if g == nil {
					g = &group{subject: e.subject}
					groups[e] = g
					order = append(order, e)
				}
				g.seqs = append(g.seqs, ack.Sequence)
			}
		case <-p.f.Err():
			w.failed.Add(1)
		case <-ctx.Done():
			w.failed.Add(int64(len(pending) - i))
			return
		}
	}
	acks := make([]jetstream.PubAckFuture, 0, len(order))
	for _, e := range order {
		g := groups[e]
		if f := publish(g.subject, encodeEntry(e.what, e.key, g.seqs)); f != nil {
			acks = append(acks, f)
		}
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case <-f.Err():
			w.failed.Add(1)
		case <-ctx.Done():
			return
		}
	}
}

// encodeEntry makes an index entry: what the sequences point at (a
// record or an event), the key, and the sequences, ascending.
func encodeEntry(what byte, key string, seqs []uint64) []byte {
	buf := make([]byte, 0, 2+len(key)+len(seqs)*binary.MaxVarintLen32)
	buf = append(buf, what)
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	buf = append(buf, key...)
	var prev uint64
	for _, s := range seqs {
		buf = binary.AppendUvarint(buf, s-prev)
		prev = s
	}
	return buf
}

// decodeEntry reads an entry encodeEntry made, appending its sequences to
// seqs when it is of what and key.
func decodeEntry(d []byte, what byte, key string, seqs []uint64) []uint64 {
	if len(d) < 2 || d[0] != what {
		return seqs
	}
	d = d[1:]
	n, k := binary.Uvarint(d)
	if k <= 0 || uint64(len(d)-k) < n || string(d[k:k+int(n)]) != key {
		return seqs
	}
	d = d[k+int(n):]
	var prev uint64
	for len(d) > 0 {
		delta, k := binary.Uvarint(d)
		if k <= 0 {
			break
		}
		prev += delta
		seqs = append(seqs, prev)
		d = d[k:]
	}
	return seqs
}

// proto is the stored form of r; name and id are set when it is read.
func (r *Record) proto() *hogwirev1.Invocation {
	pb := &hogwirev1.Invocation{
		Destination: r.Destination, Status: r.Status, ErrorKind: r.ErrorKind, Error: r.Error,
		EventUuid: r.EventUUID, EventName: r.EventName, DistinctId: r.DistinctID, PersonId: r.PersonID,
		Retries: int32(r.Retries), LogInvocationId: r.LogInvocationID, NodeId: r.NodeID,
	}
	if !r.Start.IsZero() {
		pb.StartTime = timestamppb.New(r.Start)
	}
	if r.Duration > 0 {
		pb.Duration = durationpb.New(r.Duration)
	}
	if !r.RetryTime.IsZero() {
		pb.RetryTime = timestamppb.New(r.RetryTime)
	}
	for _, f := range r.Fetches {
		pb.Fetches = append(pb.Fetches, &hogwirev1.FetchAttempt{Method: f.Method, Url: f.URL, Status: int32(f.Status),
			Duration: durationpb.New(f.Duration), Error: f.Error, Attempt: int32(f.Attempt)})
	}
	return pb
}
