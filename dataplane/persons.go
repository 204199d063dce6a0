package dataplane

import (
	"context"
	"time"

	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/persons"
)

// personStore is what the node needs of the person store (package
// persons): applying an event's person updates and reading the profile
// destinations see.
type personStore interface {
	ProcessRun(ctx context.Context, project string, evs []*persons.Event, reads []bool) ([]*persons.Profile, error)
	ProcessRuns(ctx context.Context, project string, runs [][]*persons.Event, reads [][]bool, workers int) ([][]*persons.Profile, error)
}

// personTimeout bounds the person store's work for one message.
const personTimeout = 10 * time.Second

func openPersons(cfg Config) (personStore, error) {
	if !cfg.Persons {
		return nil, nil
	}
	conn := cfg.NATS
	if cfg.PersonsNATS != nil {
		conn = cfg.PersonsNATS
	}
	return persons.New(persons.Config{Conn: conn, Memory: cfg.EventLog.Memory, Replicas: cfg.EventLog.Replicas,
		Logger: cfg.Logger.With("component", "persons")})
}

// personWorkers bounds the distinct ids of one message whose persons are
// updated at once.
const personWorkers = 16

// parseMessage reads the events of a message and, with persons on,
// applies their person updates and gives each event that goes to a
// destination its stored person. Events of one distinct id are applied in
// their order in the message, with one write for all of them (see
// persons.Store.ProcessRun), those of different distinct ids at once,
// all that need no read written together (persons.Store.ProcessRuns);
// a message holding a merge ($identify, an alias) is applied in order
// whole, as a merge joins two distinct ids. Unreadable events are logged
// and left nil. It reports false when the store failed: nothing of the
// message has run then, and it is redelivered whole (the updates already
// applied are recognised and not applied again).
func (n *Node) parseMessage(m *eventlog.Message, pr *projectRoutes) ([]*executor.WireEvent, bool) {
	evs := make([]*executor.WireEvent, len(m.Data))
	merges := false
	for i, data := range m.Data {
		ev, err := executor.ParseEvent(data)
		if err != nil {
			n.log.Error("dropping an unreadable event", "seq", m.Seq, "index", i, "err", err)
			continue
		}
		evs[i] = ev
		switch ev.Name {
		case "$identify", "$create_alias", "$merge_dangerously":
			merges = true
		}
	}
	if n.persons == nil {
		return evs, true
	}
	// The events of each distinct id, in order; all in one when the
	// message holds a merge.
	var runs [][]*persons.Event
	var reads [][]bool
	var idx [][]int
	byID := map[string]int{}
	for i, ev := range evs {
		if ev == nil {
			continue
		}
		pe, ok := personEvent(ev)
		if !ok {
			continue // routing drops it as unreadable
		}
		key := ev.DistinctID()
		if merges {
			key = ""
		}
		r, ok := byID[key]
		if !ok {
			r = len(runs)
			byID[key] = r
			runs, reads, idx = append(runs, nil), append(reads, nil), append(idx, nil)
		}
		runs[r], reads[r], idx[r] = append(runs[r], pe), append(reads[r], pr.wants(pe.Name)), append(idx[r], i)
	}
	if len(runs) == 0 {
		return evs, true // every event was dropped (by a transformation) or unreadable
	}
	ctx, cancel := context.WithTimeout(n.runCtx, personTimeout)
	defer cancel()
	profs, err := n.persons.ProcessRuns(ctx, m.Project, runs, reads, personWorkers)
	if err != nil {
		n.log.Warn("updating a person failed; the message will be redelivered", "seq", m.Seq, "err", err)
		return nil, false
	}
	for r := range runs {
		for j, prof := range profs[r] {
			if prof != nil {
				evs[idx[r][j]].SetPerson(&executor.Person{ID: prof.Person.ID, Properties: prof.Person.Properties, Groups: prof.Groups})
			}
		}
	}
	return evs, true
}

// personEvent is what the person store reads of ev; false when its
// properties cannot be read.
func personEvent(ev *executor.WireEvent) (*persons.Event, bool) {
	pe := &persons.Event{UUID: ev.UUID(), Name: ev.Name, DistinctID: ev.DistinctID()}
	var err error
	if pe.Properties, pe.Set, pe.SetOnce, pe.Groups, err = ev.PersonFields(); err != nil {
		return nil, false
	}
	return pe, true
}

// storedPerson gives an event read again (parked, or stored again for a
// slow destination) its person as stored now, without applying its
// updates again. Should the store fail, the event runs with the person it
// carries, and a log line says so.
func (n *Node) storedPerson(project string, ev *executor.WireEvent) {
	if n.persons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(n.runCtx, personTimeout)
	defer cancel()
	_, _, _, groups, err := ev.PersonFields()
	if err != nil {
		return
	}
	// Read as a personless event: its updates were applied when it was
	// first processed.
	pe := &persons.Event{UUID: ev.UUID(), Name: ev.Name, DistinctID: ev.DistinctID(),
		Properties: map[string]any{"$process_person_profile": false}, Groups: groups}
	profs, err := n.persons.ProcessRun(ctx, project, []*persons.Event{pe}, []bool{true})
	if err != nil {
		n.log.Warn("reading a person failed; running with the event's own", "distinct_id", ev.DistinctID(), "err", err)
		return
	}
	ev.SetPerson(&executor.Person{ID: profs[0].Person.ID, Properties: profs[0].Person.Properties, Groups: profs[0].Groups})
}
