package persons

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Get returns a stored person by id; ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, project, personID string) (*Person, error) {
	if !validPersonID(personID) {
		return nil, ErrNotFound
	}
	kv, err := s.bucket(ctx, project, false)
	if err != nil {
		return nil, err
	}
	for range maxAttempts {
		e, err := get[Person](ctx, kv, personKey(personID))
		if err != nil {
			return nil, err
		}
		if e.v == nil {
			return nil, ErrNotFound
		}
		if e.v.MergedInto == "" {
			return e.v, nil
		}
		// Merged away: finish the merge and answer with the person it
		// joined, as its distinct ids now lead there.
		into := e.v.MergedInto
		if err := s.finishMerge(ctx, kv, project, e, 0, nil); err != nil {
			return nil, err
		}
		personID = into
	}
	return nil, fmt.Errorf("persons: person %s: %w", personID, errConflict)
}

// Lookup returns the stored person of a distinct id; ErrNotFound when
// there is none.
func (s *Store) Lookup(ctx context.Context, project, distinctID string) (*Person, error) {
	kv, err := s.bucket(ctx, project, false)
	if err != nil {
		return nil, err
	}
	e, err := s.resolve(ctx, kv, project, distinctID)
	if err != nil {
		return nil, err
	}
	if e.v == nil {
		return nil, ErrNotFound
	}
	return e.v, nil
}

// List returns up to size stored persons in the order they were last
// written, starting at token ("" for the first page), and the token of
// the next page ("" after the last). A person updated while one pages
// moves to the end, so it may show again on a later page.
func (s *Store) List(ctx context.Context, project string, size int, token string) ([]*Person, string, error) {
	var from uint64 = 1
	if token != "" {
		n, err := strconv.ParseUint(token, 10, 64)
		if err != nil || n == 0 {
			return nil, "", fmt.Errorf("persons: %w: %q", ErrBadToken, token)
		}
		from = n
	}
	kv, err := s.bucket(ctx, project, false)
	if errors.Is(err, ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, "", err
	}
	if st.Values() == 0 {
		return nil, "", nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := kv.WatchFiltered(ctx, []string{"p.>"}, jetstream.ResumeFromRevision(from), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, "", err
	}
	defer func() { _ = w.Stop() }()
	var out []*Person
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case e = <-w.Updates():
		}
		if e == nil {
			return out, "", nil // caught up: the last page
		}
		var p Person
		if err := json.Unmarshal(e.Value(), &p); err != nil {
			s.log.Warn("skipping an unreadable person", "project", project, "key", e.Key(), "err", err)
		} else if p.MergedInto == "" {
			out = append(out, &p)
		}
		if len(out) == size {
			if e.Delta() == 0 {
				return out, "", nil
			}
			return out, strconv.FormatUint(e.Revision()+1, 10), nil
		}
		if e.Delta() == 0 {
			return out, "", nil
		}
	}
}

// ErrBadToken reports a page token List did not make.
var ErrBadToken = errors.New("invalid page token")

// Delete removes a person, all its distinct ids and its properties (a
// GDPR erasure), and returns what was removed. Events of its distinct ids
// that arrive later start a new, empty person.
func (s *Store) Delete(ctx context.Context, project, personID string) (*Person, error) {
	p, err := s.Get(ctx, project, personID)
	if err != nil {
		return nil, err
	}
	kv, err := s.bucket(ctx, project, false)
	if err != nil {
		return nil, err
	}
	return p, s.remove(ctx, kv, project, p)
}

// remove deletes a person first, so that nothing reads it once this
// starts, then the links of its distinct ids that still lead to it.
func (s *Store) remove(ctx context.Context, kv jetstream.KeyValue, project string, p *Person) error {
	if err := kv.Purge(ctx, personKey(p.ID)); err != nil {
		return fmt.Errorf("persons: deleting person %s: %w", p.ID, err)
	}
	s.people.drop(project, p.ID)
	for _, d := range p.DistinctIDs {
		s.ids.drop(cacheKey(project, d))
		m, err := kv.Get(ctx, distinctKey(d))
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return fmt.Errorf("persons: deleting distinct id %q: %w", d, err)
		}
		if string(m.Value()) != `"`+p.ID+`"` {
			continue // linked to another person since
		}
		if err := kv.Purge(ctx, distinctKey(d), jetstream.LastRevision(m.Revision())); err != nil &&
			!errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("persons: deleting distinct id %q: %w", d, err)
		}
	}
	return nil
}
