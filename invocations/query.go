package invocations

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/resourcename"
	"github.com/hogwire/hogwire/streamscan"
)

// ErrNotFound is returned for a record or event that is not stored (never
// was, or expired).
var ErrNotFound = errors.New("invocations: not found")

// Slack widens a time range mapped onto the stream's storage times:
// records are stored after the invocation started (after its fetches and
// the writer's batching), and nodes' clocks are not ours.
const Slack = 5 * time.Minute

// maxIndexEntries bounds the index messages one lookup reads (each may
// hold many entries, and an entry point at many records).
const maxIndexEntries = 100000

// Filter selects records; zero fields select all.
type Filter struct {
	// Destination is a destination id of the project.
	Destination string
	// Start and End bound the invocation's start time: [Start, End).
	Start, End time.Time
	// Statuses selects any of them.
	Statuses []hogwirev1.InvocationStatus
	// ErrorKind selects one error kind (or skip reason).
	ErrorKind  string
	EventUUID  string
	DistinctID string
	// Rerun selects the records of one rerun (by its id).
	Rerun string
}

func (f *Filter) match(r *hogwirev1.Invocation, dest string) bool {
	if f.Destination != "" && dest != f.Destination {
		return false
	}
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, r.GetStatus()) {
		return false
	}
	if f.ErrorKind != "" && r.GetErrorKind() != f.ErrorKind {
		return false
	}
	if f.EventUUID != "" && r.GetEventUuid() != f.EventUUID {
		return false
	}
	if f.DistinctID != "" && r.GetDistinctId() != f.DistinctID {
		return false
	}
	if f.Rerun != "" && !strings.HasSuffix(r.GetRerun(), "/reruns/"+f.Rerun) {
		return false
	}
	t := r.GetStartTime().AsTime()
	if !f.Start.IsZero() && t.Before(f.Start) {
		return false
	}
	if !f.End.IsZero() && !t.Before(f.End) {
		return false
	}
	return true
}

// subjects are the record subjects f selects, for a consumer's filter.
func (f *Filter) subjects(project string) []string {
	dest := "*"
	if f.Destination != "" {
		dest = f.Destination
	}
	kind := "*"
	if f.ErrorKind != "" {
		kind = token(f.ErrorKind)
	}
	if len(f.Statuses) == 0 {
		return []string{recordPrefix + project + "." + dest + ".*." + kind}
	}
	var out []string
	for _, s := range f.Statuses {
		if w := statusWord(s); w != "" {
			out = append(out, recordPrefix+project+"."+dest+"."+w+"."+kind)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Cursor is a place in the stream: a record's message and its place in
// it. As a record's id it names the record; as where a List goes on, the
// first record to read. The zero Cursor is the start.
type Cursor struct {
	Seq  uint64
	Item int
}

func (c Cursor) String() string { return strconv.FormatUint(c.Seq, 10) + "-" + strconv.Itoa(c.Item) }

// ParseCursor reads a Cursor's String (a record's id).
func ParseCursor(s string) (Cursor, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Cursor{}, false
	}
	seq, err1 := strconv.ParseUint(a, 10, 64)
	item, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || seq == 0 || item < 0 {
		return Cursor{}, false
	}
	return Cursor{seq, item}, true
}

// reached reports whether the record at seq and item is at c or after.
func (c Cursor) reached(seq uint64, item int) bool {
	return seq > c.Seq || seq == c.Seq && item >= c.Item
}

// List returns up to size records of project that f selects, in the order
// they were stored, starting at the cursor from, and the cursor to go on
// from (zero when there are no more).
//
// With an event uuid or a distinct id, the index answers; otherwise a
// consumer filtered on the record subjects, started at f.Start, reads only
// what it selects. A call reads a bounded number of messages: past them,
// the page may be short, with a cursor to go on.
func (s *Store) List(ctx context.Context, project string, f Filter, size int, from Cursor) ([]*hogwirev1.Invocation, Cursor, error) {
	if size <= 0 {
		return nil, Cursor{}, nil
	}
	if f.EventUUID != "" || f.DistinctID != "" || f.Rerun != "" {
		return s.listIndexed(ctx, project, f, size, from)
	}
	subjects := f.subjects(project)
	if len(subjects) == 0 {
		return nil, Cursor{}, nil
	}
	cfg := jetstream.ConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	if len(subjects) == 1 {
		cfg = jetstream.ConsumerConfig{FilterSubject: subjects[0], DeliverPolicy: jetstream.DeliverAllPolicy}
	}
	if from.Seq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from.Seq
	} else if !f.Start.IsZero() {
		since := f.Start.Add(-Slack)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	var out []*hogwirev1.Invocation
	var next Cursor
	stopAt := time.Time{}
	if !f.End.IsZero() {
		stopAt = f.End.Add(Slack)
	}
	// A call reads at most maxScan messages and about maxScanBytes: a
	// page may be short then, and its cursor goes on.
	const maxScan, maxScanBytes = 20000, 32 << 20
	scanned := 0
	_, err := s.scan(ctx, cfg, maxScan, func(m jetstream.Msg, md *jetstream.MsgMetadata) bool {
		seq := md.Sequence.Stream
		if !stopAt.IsZero() && md.Timestamp.After(stopAt) {
			next = Cursor{}
			return false
		}
		full := false
		unpack(m.Data(), func(i int, item []byte) bool {
			if !from.reached(seq, i) {
				return true
			}
			if len(out) == size {
				full, next = true, Cursor{seq, i}
				return false
			}
			if r, dest, ok := decode(project, m.Subject(), item, seq, i); ok && f.match(r, dest) {
				out = append(out, r)
			}
			return true
		})
		if full {
			return false
		}
		next = Cursor{seq + 1, 0}
		if md.NumPending == 0 {
			next = Cursor{}
		}
		scanned += len(m.Data())
		return len(out) < size && scanned < maxScanBytes
	})
	if err != nil {
		return nil, Cursor{}, err
	}
	return out, next, nil
}

// listIndexed answers a lookup by event uuid or distinct id from the
// index.
func (s *Store) listIndexed(ctx context.Context, project string, f Filter, size int, from Cursor) ([]*hogwirev1.Invocation, Cursor, error) {
	kind, key := byte(indexDistinct), f.DistinctID
	switch {
	case f.EventUUID != "":
		kind, key = indexEvent, f.EventUUID
	case f.Rerun != "":
		kind, key = indexRerun, f.Rerun
	}
	refs, err := s.lookup(ctx, project, kind, key, false, from.Seq)
	if err != nil {
		return nil, Cursor{}, err
	}
	var out []*hogwirev1.Invocation
	var m *jetstream.RawStreamMsg
	for i, r := range refs {
		if !from.reached(r.seq, r.item) {
			continue
		}
		if len(out) == size {
			return out, Cursor{refs[i].seq, refs[i].item}, nil
		}
		if m == nil || m.Sequence != r.seq {
			if m, err = s.msg(ctx, r.seq); errors.Is(err, ErrNotFound) {
				m = nil
				continue // expired since the index entry was read
			} else if err != nil {
				return nil, Cursor{}, err
			}
		}
		if rec, dest, ok := decodeItem(project, m, r.item); ok && f.match(rec, dest) {
			out = append(out, rec)
		}
	}
	return out, Cursor{}, nil
}

// lookup returns where the index of kind says key's records (or stored
// events) are, in stream order, reading the index from the sequence from:
// an entry is stored after what it points at, so the entries before a
// cursor point only before it.
func (s *Store) lookup(ctx context.Context, project string, kind byte, key string, events bool, from uint64) ([]ref, error) {
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return nil, err
	}
	var refs []ref
	from = max(from, 1)
	read := 0
	readSubject := func(seq uint64, subject string, decode func([]byte, string, []ref) []ref) error {
		for read < maxIndexEntries {
			n, next, done, err := s.readIndex(ctx, st, subject, seq, min(indexBatch, maxIndexEntries-read), func(data []byte) {
				refs = decode(data, key, refs)
			})
			if err != nil {
				return err
			}
			read += n
			if done || n == 0 {
				return nil
			}
			seq = next
		}
		return nil
	}
	// An event uuid's entries may be in its packed subject too: those
	// written while its time was recent (see indexPacked).
	if kind == indexEvent {
		if slot, ok := uuidSlot(key); ok {
			if err := readSubject(from, string(appendPackedSubject(nil, project, slot, key)), decodeEntries); err != nil {
				return nil, err
			}
		}
	}
	if err := readSubject(from, indexSubject(project, kind, key), decodeEntry); err != nil {
		return nil, err
	}
	refs = slices.DeleteFunc(refs, func(r ref) bool { return r.event != events })
	slices.SortFunc(refs, func(a, b ref) int {
		if a.before(b) {
			return -1
		}
		if b.before(a) {
			return 1
		}
		return 0
	})
	return slices.Compact(refs), nil
}

// indexBatch is how many index messages a lookup asks the server for at
// once: a packed subject holds a message per flush of its slot, hundreds
// at a busy node's rate, and a request each made such a lookup take
// seconds.
const indexBatch = 256

// readIndex calls fn with the data of up to max messages of subject from
// the sequence from on, in one request, and returns how many there were,
// the sequence after the last, and whether none is left after it. A
// server without batched reads (before NATS 2.11) is asked for one
// message at a time.
func (s *Store) readIndex(ctx context.Context, st jetstream.Stream, subject string, from uint64, max int, fn func([]byte)) (n int, next uint64, done bool, err error) {
	msgs, err := jetstreamext.GetBatch(ctx, s.js, StreamName, max, jetstreamext.GetBatchSubject(subject), jetstreamext.GetBatchSeq(from))
	if err != nil {
		return 0, 0, false, err
	}
	next = from
	for m, err := range msgs {
		switch {
		case errors.Is(err, jetstreamext.ErrNoMessages):
			return n, next, true, nil
		case errors.Is(err, jetstreamext.ErrBatchUnsupported):
			m, err := st.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return 0, from, true, nil
			}
			if err != nil {
				return 0, 0, false, err
			}
			fn(m.Data)
			return 1, m.Sequence + 1, false, nil
		case err != nil:
			return n, next, false, err
		}
		fn(m.Data)
		n++
		next = m.Sequence + 1
		done = m.Header.Get("Nats-Num-Pending") == "0"
	}
	return n, next, done, nil
}

// Get returns a record of project by id.
func (s *Store) Get(ctx context.Context, project, id string) (*hogwirev1.Invocation, error) {
	c, ok := ParseCursor(id)
	if !ok {
		return nil, ErrNotFound
	}
	m, err := s.msg(ctx, c.Seq)
	if err != nil {
		return nil, err
	}
	r, _, ok := decodeItem(project, m, c.Item)
	if !ok {
		return nil, ErrNotFound
	}
	return r, nil
}

func (s *Store) msg(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return nil, err
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrNotFound
	}
	return m, err
}

// Event returns the stored wire encoding of one of project's events.
func (s *Store) Event(ctx context.Context, project, uuid string) ([]byte, error) {
	refs, err := s.lookup(ctx, project, indexEvent, uuid, true, 0)
	if err != nil {
		return nil, err
	}
	for _, r := range slices.Backward(refs) {
		m, err := s.msg(ctx, r.seq)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m.Subject != eventPrefix+project {
			continue
		}
		var data []byte
		unpack(m.Data, func(i int, item []byte) bool {
			if i == r.item {
				data = item
				return false
			}
			return true
		})
		if data != nil {
			return data, nil
		}
	}
	return nil, ErrNotFound
}

// IndexLag is how long after a record is stored the index may still not
// point at it, or at its stored event: a Writer writes index entries
// IndexInterval (1s by default) after their records, so that a key's
// entries of several batches go out as one.
const IndexLag = 10 * time.Second

// Unindexed reports whether the record id was stored so recently (less
// than IndexLag ago) that lookups by its event uuid, distinct id or rerun
// may not find it yet, nor Event its event: what did not find it may ask
// again a little later. False for an id that is not stored.
func (s *Store) Unindexed(ctx context.Context, id string) bool {
	c, ok := ParseCursor(id)
	if !ok {
		return false
	}
	m, err := s.msg(ctx, c.Seq)
	if err != nil {
		return false
	}
	return time.Since(m.Time) < IndexLag
}

// decodeItem reads the record at item of a stored message.
func decodeItem(project string, m *jetstream.RawStreamMsg, item int) (*hogwirev1.Invocation, string, bool) {
	var r *hogwirev1.Invocation
	var dest string
	ok := false
	unpack(m.Data, func(i int, data []byte) bool {
		if i == item {
			r, dest, ok = decode(project, m.Subject, data, m.Sequence, i)
			return false
		}
		return true
	})
	return r, dest, ok
}

// decode reads a stored record of project; ok is false for anything else.
func decode(project, subject string, data []byte, seq uint64, item int) (*hogwirev1.Invocation, string, bool) {
	rest, ok := strings.CutPrefix(subject, recordPrefix+project+".")
	if !ok {
		return nil, "", false
	}
	dest, _, _ := strings.Cut(rest, ".")
	r := &hogwirev1.Invocation{}
	if proto.Unmarshal(data, r) != nil {
		return nil, "", false
	}
	r.Id = Cursor{seq, item}.String()
	r.Name = resourcename.Project(project) + "/invocations/" + r.Id
	if r.Destination == "" {
		r.Destination = resourcename.Destination(project, dest)
	}
	return r, dest, true
}

// scan reads what cfg selects of the stream (see streamscan.Scan).
func (s *Store) scan(ctx context.Context, cfg jetstream.ConsumerConfig, limit int, fn func(jetstream.Msg, *jetstream.MsgMetadata) bool) (int, error) {
	n, err := streamscan.Scan(ctx, s.js, StreamName, cfg, limit, fn)
	if err != nil {
		return n, fmt.Errorf("invocations: reading: %w", err)
	}
	return n, nil
}
