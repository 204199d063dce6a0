// Package configcache holds the configuration data-plane nodes run with,
// versioned by etcd revision, in the manner of go-control-plane's snapshot
// cache.
//
// A Snapshot is one immutable version: the projects and destinations as of
// a revision. WatchResponses (the messages of ConfigService.Watch) are the
// changes between versions; Snapshot.Apply makes the next version from
// them. Both ends of the stream use it: the control plane keeps a Cache
// (the current snapshot and the recent changes, so that a node resuming at
// its revision gets only what it missed) and a node keeps its current
// Snapshot (package dataplane/configsync).
package configcache

import (
	"maps"
	"sync"

	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/resourcename"
)

// Snapshot is one consistent version of the configuration. It must not be
// modified.
type Snapshot struct {
	// Revision is the etcd revision the snapshot reflects; 0 for none.
	Revision int64
	// Projects by id, and project id by capture token.
	Projects map[string]*hogwirev1.Project
	Tokens   map[string]string
	// Destinations by resource name, secrets in the clear, health set.
	Destinations map[string]*hogwirev1.Destination
}

// Empty returns the snapshot of no configuration at revision 0.
func Empty() *Snapshot {
	return &Snapshot{Projects: map[string]*hogwirev1.Project{}, Tokens: map[string]string{},
		Destinations: map[string]*hogwirev1.Destination{}}
}

// New returns a snapshot at rev of the given resources.
func New(rev int64, projects []*hogwirev1.Project, destinations []*hogwirev1.Destination) *Snapshot {
	return Empty().Apply(&hogwirev1.WatchResponse{Revision: rev, Snapshot: true, Projects: projects, Destinations: destinations})
}

// Apply returns a new snapshot: s with the responses applied in order. A
// first response with Snapshot set replaces everything. Deleting a project
// deletes its destinations.
func (s *Snapshot) Apply(ms ...*hogwirev1.WatchResponse) *Snapshot {
	next := &Snapshot{Revision: s.Revision}
	if len(ms) > 0 && ms[0].Snapshot {
		next.Projects = map[string]*hogwirev1.Project{}
		next.Destinations = map[string]*hogwirev1.Destination{}
	} else {
		next.Projects = maps.Clone(s.Projects)
		next.Destinations = maps.Clone(s.Destinations)
	}
	for _, m := range ms {
		next.Revision = max(next.Revision, m.Revision)
		for _, p := range m.Projects {
			next.Projects[resourcename.ProjectOf(p.Name)] = p
		}
		for _, d := range m.Destinations {
			next.Destinations[d.Name] = d
		}
		for _, name := range m.Deleted {
			if resourcename.IsDestination(name) {
				delete(next.Destinations, name)
				continue
			}
			id := resourcename.ProjectOf(name)
			delete(next.Projects, id)
			for dn := range next.Destinations {
				if resourcename.ProjectOf(dn) == id {
					delete(next.Destinations, dn)
				}
			}
		}
	}
	next.Tokens = make(map[string]string, len(next.Projects))
	for id, p := range next.Projects {
		next.Tokens[p.CaptureToken] = id
	}
	return next
}

// Diff returns the change that turns old into next, at next's revision;
// nil when they hold the same resources.
func Diff(old, next *Snapshot) *hogwirev1.WatchResponse {
	m := &hogwirev1.WatchResponse{Revision: next.Revision}
	for id, p := range next.Projects {
		if q, ok := old.Projects[id]; !ok || !proto.Equal(p, q) {
			m.Projects = append(m.Projects, p)
		}
	}
	for name, d := range next.Destinations {
		if e, ok := old.Destinations[name]; !ok || !proto.Equal(d, e) {
			m.Destinations = append(m.Destinations, d)
		}
	}
	for id := range old.Projects {
		if _, ok := next.Projects[id]; !ok {
			m.Deleted = append(m.Deleted, resourcename.Project(id))
		}
	}
	for name := range old.Destinations {
		// A deleted project takes its destinations with it.
		if _, ok := next.Destinations[name]; !ok && next.Projects[resourcename.ProjectOf(name)] != nil {
			m.Deleted = append(m.Deleted, name)
		}
	}
	if len(m.Projects)+len(m.Destinations)+len(m.Deleted) == 0 {
		return nil
	}
	return m
}

// Cache is the current snapshot and the changes that led to it since a
// base revision, so that watchers at any revision from the base on are
// sent only the changes they miss. It is safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	cur     *Snapshot
	base    int64                      // history brings base (and later) up to cur
	history []*hogwirev1.WatchResponse // ascending revisions, all > base
	limit   int
	changed chan struct{} // closed at the next change
}

// NewCache returns an empty cache that keeps at most limit changes
// (default 1000); watchers further behind get a snapshot.
func NewCache(limit int) *Cache {
	if limit <= 0 {
		limit = 1000
	}
	return &Cache{cur: Empty(), limit: limit, changed: make(chan struct{})}
}

// Current returns the current snapshot.
func (c *Cache) Current() *Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// Set makes s the current snapshot. Watchers already following are sent
// the difference, at s's revision; for the first snapshot, and when s is
// older than the current one (the store was restored from a backup),
// every watcher gets s whole.
func (c *Cache) Set(s *Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur.Revision == 0 || s.Revision < c.cur.Revision {
		c.cur, c.base, c.history = s, s.Revision, nil
		c.notify()
		return
	}
	if m := Diff(c.cur, s); m != nil {
		c.append(m)
	}
	c.cur = s
	c.notify()
}

// Update applies a change at a later revision than the current one.
func (c *Cache) Update(m *hogwirev1.WatchResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Revision <= c.cur.Revision {
		return
	}
	c.cur = c.cur.Apply(m)
	c.append(m)
	c.notify()
}

// Advance records that nothing changed up to rev (an etcd progress
// notification), so that a watcher at rev is up to date.
func (c *Cache) Advance(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev <= c.cur.Revision {
		return
	}
	next := *c.cur
	next.Revision = rev
	c.cur = &next
	c.notify()
}

func (c *Cache) append(m *hogwirev1.WatchResponse) {
	c.history = append(c.history, m)
	if n := len(c.history) - c.limit; n > 0 {
		c.base = c.history[n-1].Revision
		c.history = append(c.history[:0:0], c.history[n:]...)
	}
}

func (c *Cache) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Range returns the oldest revision the cache can bring up to date with
// changes (older ones need a snapshot) and the current revision.
func (c *Cache) Range() (base, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base, c.cur.Revision
}

// Since says what a watcher at rev needs: the changes after rev, or a
// whole snapshot when rev is 0, older than the cache's history or newer
// than its current revision. changed is closed at the next change.
func (c *Cache) Since(rev int64) (changes []*hogwirev1.WatchResponse, snapshot *Snapshot, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur.Revision == 0 {
		return nil, nil, c.changed // nothing loaded yet
	}
	if rev <= 0 || rev < c.base || rev > c.cur.Revision {
		return nil, c.cur, c.changed
	}
	for i, m := range c.history {
		if m.Revision > rev {
			return c.history[i:len(c.history):len(c.history)], nil, c.changed
		}
	}
	return nil, nil, c.changed
}
