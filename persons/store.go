// Package persons keeps person and group profiles: the properties that
// events set ($set, $set_once, $unset), the distinct ids that identify and
// alias calls join into one person ($identify, $create_alias,
// $merge_dangerously), and group properties ($groupidentify), following
// PostHog's documented semantics.
//
// Profiles live in one JetStream key-value bucket per project, shared by
// every data-plane node. Every write is a compare-and-swap on the key's
// revision, retried on conflict, so two nodes updating one person never
// lose each other's updates; each person remembers the last events applied
// to it, so an event redelivered after a node died changes nothing.
//
// Keys of a project's bucket:
//
//	d.<distinct id>   the person id the distinct id belongs to
//	p.<person id>     the person (JSON)
//	g.<type>.<key>    a group (JSON)
//
// with distinct ids, group types and keys in unpadded base64url, as keys
// may hold few characters. A distinct id no event has stored anything for
// has no keys: its person is the empty one with the id DerivedID gives, the
// id it keeps once stored.
package persons

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures a Store.
type Config struct {
	// Conn is the connection to the NATS server that holds the buckets.
	Conn *nats.Conn
	// Memory keeps profiles in memory instead of on disk.
	Memory bool
	// Replicas of each project's bucket in a NATS cluster (default 1; give
	// the event stream's, so profiles survive what events survive).
	Replicas int
	// Bucket prefixes each project's bucket name (default
	// "HOGWIRE_PERSONS_"); the project id follows.
	Bucket string
	// CacheSize bounds the distinct id → person id mappings remembered
	// (default 100,000). A mapping that went stale (its person merged
	// away or deleted) is noticed on the person's read and re-read.
	CacheSize int
	Logger    *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Store reads and writes profiles.
type Store struct {
	cfg Config
	js  jetstream.JetStream
	log *slog.Logger

	mu      sync.Mutex
	buckets map[string]jetstream.KeyValue
	streams map[string]jetstream.Stream
	// atomic holds the projects whose bucket takes atomic batches (see
	// createAtomically).
	atomic map[string]bool

	ids idCache
	// people remembers the persons this store last read or wrote, with
	// their revisions, so that an update can try its compare-and-swap
	// without reading first; a person changed elsewhere since fails the
	// swap and is read again. Reads that destinations see never come
	// from it.
	people personCache
	// claims scores whether distinct ids not cached were mostly new of
	// late (see noteClaim and working).
	claims atomic.Int64
	// togetherPause counts the messages whose runs are processed one by
	// one after a batch of writeTogether failed.
	togetherPause atomic.Int64
}

// New returns a store on cfg.Conn; buckets are made on first use.
func New(cfg Config) (*Store, error) {
	if cfg.Conn == nil {
		return nil, errors.New("persons: a NATS connection is required")
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Bucket == "" {
		cfg.Bucket = "HOGWIRE_PERSONS_"
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	return &Store{cfg: cfg, js: js, log: cfg.Logger, buckets: map[string]jetstream.KeyValue{}, streams: map[string]jetstream.Stream{}, atomic: map[string]bool{}, ids: idCache{max: cfg.CacheSize},
		people: personCache{max: max(cfg.CacheSize/10, 1)}}, nil
}

// ErrNotFound reports a person or distinct id the store does not hold.
var ErrNotFound = errors.New("person not found")

// bucket returns the project's bucket, making it on first use when
// create is set; without, ErrNotFound when there is none yet. An existing
// bucket is used as it is: whoever made it chose its replicas.
func (s *Store) bucket(ctx context.Context, project string, create bool) (jetstream.KeyValue, error) {
	s.mu.Lock()
	kv := s.buckets[project]
	s.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	if project == "" || strings.Trim(project, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
		return nil, fmt.Errorf("persons: invalid project id %q", project)
	}
	name := s.cfg.Bucket + project
	kv, err := s.js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if !create {
			return nil, ErrNotFound
		}
		storage := jetstream.FileStorage
		if s.cfg.Memory {
			storage = jetstream.MemoryStorage
		}
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      name,
			Description: "hogwire person and group profiles of project " + project,
			History:     1,
			Storage:     storage,
			Replicas:    s.cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = s.js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("persons: bucket of project %s: %w", project, err)
	}
	atomic := s.allowAtomic(ctx, project)
	s.mu.Lock()
	s.buckets[project] = kv
	s.atomic[project] = atomic
	s.mu.Unlock()
	return kv, nil
}

// allowAtomic lets the stream under a project's bucket take atomic batch
// publishes, which a new person's two writes are made with (see
// createAtomically), and reports whether it does. Buckets made before
// are changed so on first use; a server that cannot leaves them as they
// are, and a new person costs a write more.
func (s *Store) allowAtomic(ctx context.Context, project string) bool {
	st, err := s.stream(ctx, project)
	if err != nil {
		s.log.Warn("cannot read the persons bucket's stream; new persons cost two round trips", "project", project, "err", err)
		return false
	}
	cfg := st.CachedInfo().Config
	if cfg.AllowAtomicPublish {
		return true
	}
	cfg.AllowAtomicPublish = true
	st, err = s.js.UpdateStream(ctx, cfg)
	if err != nil {
		s.log.Warn("cannot let the persons bucket take atomic batches; new persons cost two round trips", "project", project, "err", err)
		return false
	}
	// A server older than atomic batches (NATS 2.12) takes the update
	// and drops the field it does not know.
	return st.CachedInfo().Config.AllowAtomicPublish
}

// atomicOK reports whether a project's bucket takes atomic batches.
func (s *Store) atomicOK(project string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.atomic[project]
}

// stream returns the stream under a project's bucket (made already), for
// the reads and conditional writes a key-value bucket does not offer.
func (s *Store) stream(ctx context.Context, project string) (jetstream.Stream, error) {
	s.mu.Lock()
	st := s.streams[project]
	s.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := s.js.Stream(ctx, "KV_"+s.cfg.Bucket+project)
	if err != nil {
		return nil, fmt.Errorf("persons: bucket of project %s: %w", project, err)
	}
	s.mu.Lock()
	s.streams[project] = st
	s.mu.Unlock()
	return st, nil
}

// DerivedID is the id of the person of a distinct id that has none stored
// yet: a UUID derived from the project and the distinct id (as PostHog
// derives a new person's uuid), so every node names it alike.
func DerivedID(project, distinctID string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("hogwire:person:"+project+"\x00"+distinctID)).String()
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func distinctKey(id string) string { return "d." + enc(id) }
func personKey(id string) string   { return "p." + id }
func groupKey(typ, key string) string {
	return "g." + enc(typ) + "." + enc(key)
}

// validPersonID reports whether id can be a person key (person ids are
// UUIDs; anything else cannot name one).
func validPersonID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && !strings.ContainsAny(id, "{}:")
}

// entry is a record read with its revision (0: not stored).
type entry[T any] struct {
	v   *T
	rev uint64
}

func get[T any](ctx context.Context, kv jetstream.KeyValue, key string) (entry[T], error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return entry[T]{}, nil
	}
	if err != nil {
		return entry[T]{}, err
	}
	v := new(T)
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return entry[T]{}, fmt.Errorf("persons: key %s: %w", key, err)
	}
	return entry[T]{v, e.Revision()}, nil
}

// errConflict is a compare-and-swap that lost to another writer.
var errConflict = errors.New("persons: concurrent update")

// put writes v over the revision read (0: create), reporting errConflict
// when another writer came first.
func put[T any](ctx context.Context, kv jetstream.KeyValue, key string, v *T, rev uint64) (uint64, error) {
	b, err := encode(v)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = kv.Create(ctx, key, b)
	} else {
		rev, err = kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, errConflict
	}
	return rev, err
}

// maxAttempts bounds the compare-and-swap retries of one update; past it
// the update fails and its event is redelivered later.
const maxAttempts = 64

// idCache remembers distinct id → person id mappings, bounded: when full,
// it starts over (mappings are cheap to read again).
type idCache struct {
	max int
	mu  sync.Mutex
	m   map[string]string
}

func cacheKey(project, distinctID string) string { return project + "\x00" + distinctID }

func (c *idCache) get(k string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *idCache) put(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]string, min(c.max, 1024))
	}
	c.m[k] = v
}

func (c *idCache) drop(k string) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// eventMark is how a person remembers an applied event: a short digest of
// its uuid.
func eventMark(uuid string) string {
	h := sha256.Sum256([]byte(uuid))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

// personCache holds persons by project and id, each with the revision it
// was read or written at. Cached persons are never modified: an update
// works on a copy.
type personCache struct {
	max int
	mu  sync.Mutex
	m   map[string]entry[Person]
}

func (c *personCache) get(project, id string) (entry[Person], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[cacheKey(project, id)]
	return e, ok
}

func (c *personCache) put(project string, p *Person, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]entry[Person], min(c.max, 1024))
	}
	c.m[cacheKey(project, p.ID)] = entry[Person]{p, rev}
}

func (c *personCache) drop(project, id string) {
	c.mu.Lock()
	delete(c.m, cacheKey(project, id))
	c.mu.Unlock()
}

// clone returns a copy of p that may be modified.
func (p *Person) clone() *Person {
	c := *p
	c.Properties = maps.Clone(p.Properties)
	c.DistinctIDs = slices.Clone(p.DistinctIDs)
	c.Applied = slices.Clone(p.Applied)
	return &c
}
