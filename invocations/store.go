// Package invocations keeps a record of every run of a destination on an
// event — how it ended, why, its fetches and durations — and the event
// itself, in one JetStream stream, for as long as the retention says.
//
// Data-plane nodes write through a Writer, which batches records off the
// invocation's goroutine; the control plane reads with List, Get and
// Event. The stream's subjects make the common questions cheap:
//
//	invocations.r.<project>.<destination>.<status>.<kind>   records
//	invocations.v.<project>                                 stored events
//	invocations.x.<project>.<e|d|r>.<bucket>                index entries
//	invocations.x.<project>.t.<slot>.<bucket>               index of recent UUIDv7 events
//
// The Writer packs what one batch holds for one subject into one message
// (a record is "<sequence>-<place>"), so that a busy node stores a few
// messages a second, not one per invocation. A query by destination,
// status and error kind is a subject filter, and a time range a start
// time, both served by the server's own indexes. A lookup by event uuid or
// distinct id (or the records of one rerun) reads the index subject of the key's hash bucket: a few
// entries, each naming where records (or the stored event) are, which are
// then read directly.
package invocations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// DefaultMaxAge is how long records and events are kept by default.
const DefaultMaxAge = 7 * 24 * time.Hour

// StreamName is the JetStream stream of records, events and index.
const StreamName = "HOGWIRE_INVOCATIONS"

const (
	prefix        = "invocations"
	recordPrefix  = prefix + ".r."
	eventPrefix   = prefix + ".v."
	indexPrefix   = prefix + ".x."
	noKind        = "none"
	indexEvent    = 'e' // index by event uuid
	indexDistinct = 'd' // index by distinct id
	indexRerun    = 'r' // index by rerun id
	// bucketBits is the width of an index bucket's hash. More buckets hold
	// fewer entries each (a lookup reads one bucket) but cost the server
	// memory per subject: 2^20 per project and index bounds that memory,
	// and still holds about one entry per bucket at a million records.
	bucketBits = 20
	// Event uuids that are UUIDv7 (capture gives them to events without
	// one, and posthog-js makes them) hold the time they were made, and
	// their entries go, many to a message, to the subject of their time
	// slot (slotWidth wide) and a coarse bucket (packedBucketBits of the
	// hash). With one entry a message, each cost NATS a store, most of
	// the index's cost; now a flush stores one message per slot and
	// bucket it touches, and a lookup reads a subject that one slot's
	// flushes fill.
	indexPacked      = 't'
	packedBucketBits = 8
	slotWidth        = 10 * time.Minute
	// A uuid whose time is outside (-packedPast, +packedFuture) of the
	// flush keeps a bucket of its own: a client can give any time, and
	// subjects are bounded by the slots a flush accepts.
	packedPast   = 24 * time.Hour
	packedFuture = time.Hour
)

// Config configures a Store.
type Config struct {
	Conn *nats.Conn
	// MaxAge of records and events (default DefaultMaxAge).
	MaxAge time.Duration
	// Memory keeps the stream in memory (tests and benchmarks).
	Memory bool
	// Replicas of the stream in a NATS cluster (default 1).
	Replicas int
	// Attach uses the stream as it is when it exists, creating it only
	// when it does not: data-plane nodes attach, and the control plane,
	// which owns the retention setting, creates or updates it.
	Attach bool
	Logger *slog.Logger
}

// Store reads and writes the invocation stream.
type Store struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
}

// Open makes sure the stream exists and returns a Store on it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Conn == nil {
		return nil, errors.New("invocations: a NATS connection is required")
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	s := &Store{nc: cfg.Conn, js: js, log: cfg.Logger}
	if cfg.Attach {
		if _, err := js.Stream(ctx, StreamName); err == nil {
			return s, nil
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("invocations: stream %s: %w", StreamName, err)
		}
	}
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	sc := jetstream.StreamConfig{
		Name: StreamName, Description: "a record per destination invocation, the events they ran on, and their index",
		Subjects: []string{prefix + ".>"}, Storage: storage, MaxAge: cfg.MaxAge, Discard: jetstream.DiscardOld,
		Replicas: max(cfg.Replicas, 1), AllowDirect: true,
	}
	if cfg.Attach {
		_, err = js.CreateStream(ctx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil
		}
	} else {
		if st, err := js.Stream(ctx, StreamName); err == nil && st.CachedInfo().Config.Storage != sc.Storage {
			// A node made it first, with its event log's storage; JetStream
			// cannot change it in place, and the retention still applies.
			s.log.Warn("the invocation stream keeps the storage it was created with", "stream", StreamName,
				"storage", st.CachedInfo().Config.Storage.String())
			sc.Storage = st.CachedInfo().Config.Storage
		}
		_, err = js.CreateOrUpdateStream(ctx, sc)
	}
	if err != nil {
		return nil, fmt.Errorf("invocations: stream %s: %w", StreamName, err)
	}
	return s, nil
}

// statusWord is a status's subject token.
func statusWord(s hogwirev1.InvocationStatus) string {
	switch s {
	case hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED:
		return "succeeded"
	case hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED:
		return "failed"
	case hogwirev1.InvocationStatus_INVOCATION_STATUS_SKIPPED:
		return "skipped"
	case hogwirev1.InvocationStatus_INVOCATION_STATUS_MASKED:
		return "masked"
	case hogwirev1.InvocationStatus_INVOCATION_STATUS_PARKED:
		return "parked"
	}
	return ""
}

// token makes s safe as one subject token: the kinds and reasons hogwire
// writes are already, anything else is replaced.
func token(s string) string {
	if s == "" {
		return noKind
	}
	ok := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

func recordSubject(project, dest string, status hogwirev1.InvocationStatus, kind string) string {
	return recordPrefix + project + "." + dest + "." + statusWord(status) + "." + token(kind)
}

func indexSubject(project string, kind byte, key string) string {
	var b [64]byte
	return string(appendIndexSubject(b[:0], project, kind, key))
}

// appendIndexSubject appends the index subject of key to b: the writer
// makes every subject of an index flush in one buffer, and one string of
// it, rather than a string each.
func appendIndexSubject(b []byte, project string, kind byte, key string) []byte {
	b = append(b, indexPrefix...)
	b = append(b, project...)
	b = append(b, '.', kind, '.')
	return strconv.AppendUint(b, keyHash(key)>>(64-bucketBits), 16)
}

// keyHash is FNV-1a, 64 bits, as hash/fnv makes it, without its
// allocations.
func keyHash(key string) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime64
	}
	return h
}

// uuidSlot returns the index slot of the time an event uuid holds, when
// it is a UUIDv7.
func uuidSlot(key string) (int64, bool) {
	u, err := uuid.Parse(key)
	if err != nil || u.Version() != 7 {
		return 0, false
	}
	var ms int64
	for _, c := range u[:6] {
		ms = ms<<8 | int64(c)
	}
	return ms / slotWidth.Milliseconds(), true
}

// packedSlot returns the slot of key's packed index subject, when an
// entry of key flushed at now goes to one (see indexPacked).
func packedSlot(key string, now time.Time) (int64, bool) {
	slot, ok := uuidSlot(key)
	if !ok {
		return 0, false
	}
	ms := slot * slotWidth.Milliseconds()
	if ms < now.Add(-packedPast).UnixMilli() || ms > now.Add(packedFuture).UnixMilli() {
		return 0, false
	}
	return slot, true
}

// appendPackedSubject appends the packed index subject of an event uuid
// in slot to b.
func appendPackedSubject(b []byte, project string, slot int64, key string) []byte {
	b = append(b, indexPrefix...)
	b = append(b, project...)
	b = append(b, '.', indexPacked, '.')
	b = strconv.AppendInt(b, slot, 16)
	b = append(b, '.')
	return strconv.AppendUint(b, keyHash(key)>>(64-packedBucketBits), 16)
}
