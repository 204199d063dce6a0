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
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/resourcename"
)

// ErrNotFound is returned for a record or event that is not stored (never
// was, or expired).
var ErrNotFound = errors.New("invocations: not found")

// Slack widens a time range mapped onto the stream's storage times:
// records are stored after the invocation started (after its fetches and
// the writer's batching), and nodes' clocks are not ours.
const Slack = 5 * time.Minute

// maxIndexEntries bounds the index entries one lookup reads (each may
// point at many records).
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

// List returns up to size records of project that f selects, in the order
// they were stored, starting after the sequence after (0 for the start),
// and the sequence to continue after (0 when there are no more).
//
// With an event uuid or a distinct id, the index answers; otherwise a
// consumer filtered on the record subjects, started at f.Start, reads only
// what it selects. At most scan records are read per call: past them, the
// page may be short, with a token to go on.
func (s *Store) List(ctx context.Context, project string, f Filter, size int, after uint64) ([]*hogwirev1.Invocation, uint64, error) {
	if size <= 0 {
		return nil, 0, nil
	}
	if f.EventUUID != "" || f.DistinctID != "" {
		return s.listIndexed(ctx, project, f, size, after)
	}
	subjects := f.subjects(project)
	if len(subjects) == 0 {
		return nil, 0, nil
	}
	cfg := jetstream.ConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	if len(subjects) == 1 {
		cfg = jetstream.ConsumerConfig{FilterSubject: subjects[0], DeliverPolicy: jetstream.DeliverAllPolicy}
	}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	} else if !f.Start.IsZero() {
		since := f.Start.Add(-Slack)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	var out []*hogwirev1.Invocation
	var next uint64
	stopAt := time.Time{}
	if !f.End.IsZero() {
		stopAt = f.End.Add(Slack)
	}
	const maxScan = 200000
	_, err := s.scan(ctx, cfg, maxScan, func(m jetstream.Msg, md *jetstream.MsgMetadata) bool {
		next = md.Sequence.Stream
		if !stopAt.IsZero() && md.Timestamp.After(stopAt) {
			next = 0
			return false
		}
		r, dest, ok := decode(project, m.Subject(), m.Data(), md.Sequence.Stream)
		if ok && f.match(r, dest) {
			out = append(out, r)
		}
		if md.NumPending == 0 {
			next = 0
		}
		return len(out) < size
	})
	if err != nil {
		return nil, 0, err
	}
	return out, next, nil
}

// listIndexed answers a lookup by event uuid or distinct id from the
// index.
func (s *Store) listIndexed(ctx context.Context, project string, f Filter, size int, after uint64) ([]*hogwirev1.Invocation, uint64, error) {
	kind, key := byte(indexDistinct), f.DistinctID
	if f.EventUUID != "" {
		kind, key = indexEvent, f.EventUUID
	}
	seqs, err := s.lookup(ctx, project, kind, key, entryRecord)
	if err != nil {
		return nil, 0, err
	}
	var out []*hogwirev1.Invocation
	for i, seq := range seqs {
		if seq <= after {
			continue
		}
		if len(out) == size {
			return out, seqs[i-1], nil
		}
		r, dest, err := s.get(ctx, project, seq)
		if errors.Is(err, ErrNotFound) {
			continue // expired since the index entry was read
		}
		if err != nil {
			return nil, 0, err
		}
		if f.match(r, dest) {
			out = append(out, r)
		}
	}
	return out, 0, nil
}

// lookup returns the sequences, ascending, that the index of kind holds
// for key and entries of what.
func (s *Store) lookup(ctx context.Context, project string, kind byte, key string, what byte) ([]uint64, error) {
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return nil, err
	}
	subject := indexSubject(project, kind, key)
	var seqs []uint64
	var from uint64 = 1
	for range maxIndexEntries {
		m, err := st.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		from = m.Sequence + 1
		seqs = decodeEntry(m.Data, what, key, seqs)
	}
	slices.Sort(seqs)
	return slices.Compact(seqs), nil
}

// Get returns a record of project by id.
func (s *Store) Get(ctx context.Context, project, id string) (*hogwirev1.Invocation, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil || seq == 0 {
		return nil, ErrNotFound
	}
	r, _, err := s.get(ctx, project, seq)
	return r, err
}

func (s *Store) get(ctx context.Context, project string, seq uint64) (*hogwirev1.Invocation, string, error) {
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return nil, "", err
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", err
	}
	r, dest, ok := decode(project, m.Subject, m.Data, seq)
	if !ok {
		return nil, "", ErrNotFound
	}
	return r, dest, nil
}

// Event returns the stored wire encoding of one of project's events.
func (s *Store) Event(ctx context.Context, project, uuid string) ([]byte, error) {
	seqs, err := s.lookup(ctx, project, indexEvent, uuid, entryEvent)
	if err != nil {
		return nil, err
	}
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return nil, err
	}
	for _, seq := range slices.Backward(seqs) {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m.Subject == eventPrefix+project {
			return m.Data, nil
		}
	}
	return nil, ErrNotFound
}

// decode reads a stored record of project; ok is false for anything else.
func decode(project, subject string, data []byte, seq uint64) (*hogwirev1.Invocation, string, bool) {
	rest, ok := strings.CutPrefix(subject, recordPrefix+project+".")
	if !ok {
		return nil, "", false
	}
	dest, _, _ := strings.Cut(rest, ".")
	r := &hogwirev1.Invocation{}
	if proto.Unmarshal(data, r) != nil {
		return nil, "", false
	}
	r.Id = strconv.FormatUint(seq, 10)
	r.Name = resourcename.Project(project) + "/invocations/" + r.Id
	if r.Destination == "" {
		r.Destination = resourcename.Destination(project, dest)
	}
	return r, dest, true
}

// scan delivers the stored messages cfg selects, in stream order, to fn
// until fn returns false, limit messages were delivered or there are no
// more, and returns how many fn saw. The consumer is ephemeral, unacked,
// and deleted afterwards.
func (s *Store) scan(ctx context.Context, cfg jetstream.ConsumerConfig, limit int, fn func(jetstream.Msg, *jetstream.MsgMetadata) bool) (int, error) {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = time.Minute
	c, err := s.js.CreateConsumer(ctx, StreamName, cfg)
	if err != nil {
		return 0, fmt.Errorf("invocations: reading: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.js.DeleteConsumer(dctx, StreamName, c.CachedInfo().Name)
	}()
	n := 0
	for n < limit {
		batch, err := c.FetchNoWait(min(limit-n, 1000))
		if err != nil {
			return n, err
		}
		got, more := 0, true
		for m := range batch.Messages() {
			got++
			if !more {
				continue // drain
			}
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			n++
			if !fn(m, md) || md.NumPending == 0 || n >= limit {
				more = false
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return n, err
		}
		if !more || got == 0 {
			return n, nil
		}
	}
	return n, nil
}
