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
	Process(ctx context.Context, project string, ev *persons.Event, read bool) (*persons.Profile, error)
}

// personTimeout bounds the person store's work for one message.
const personTimeout = 10 * time.Second

func openPersons(cfg Config) (personStore, error) {
	if !cfg.Persons {
		return nil, nil
	}
	return persons.New(persons.Config{Conn: cfg.NATS, Memory: cfg.EventLog.Memory, Replicas: cfg.EventLog.Replicas,
		Logger: cfg.Logger.With("component", "persons")})
}

// parseMessage reads the events of a message and, with persons on,
// applies their person updates in order and gives each event that goes to
// a destination its stored person. Unreadable events are logged and left
// nil. It reports false when the store failed: nothing of the message
// has run then, and it is redelivered whole (the updates already applied
// are recognised and not applied again).
func (n *Node) parseMessage(m *eventlog.Message, pr *projectRoutes) ([]*executor.WireEvent, bool) {
	evs := make([]*executor.WireEvent, len(m.Data))
	var ctx context.Context
	for i, data := range m.Data {
		ev, err := executor.ParseEvent(data)
		if err != nil {
			n.log.Error("dropping an unreadable event", "seq", m.Seq, "index", i, "err", err)
			continue
		}
		evs[i] = ev
		if n.persons == nil {
			continue
		}
		if ctx == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(n.runCtx, personTimeout)
			defer cancel()
		}
		named, any := pr.forEvent(ev.Name)
		if err := n.applyPerson(ctx, m.Project, ev, len(named)+len(any) > 0); err != nil {
			n.log.Warn("updating a person failed; the events will be redelivered", "seq", m.Seq, "index", i,
				"distinct_id", ev.DistinctID(), "err", err)
			return nil, false
		}
	}
	return evs, true
}

// applyPerson applies ev's person updates and, when read is set, gives ev
// its stored person.
func (n *Node) applyPerson(ctx context.Context, project string, ev *executor.WireEvent, read bool) error {
	pe := &persons.Event{UUID: ev.UUID(), Name: ev.Name, DistinctID: ev.DistinctID()}
	var err error
	if pe.Properties, pe.Set, pe.SetOnce, pe.Groups, err = ev.PersonFields(); err != nil {
		// Routing drops it as unreadable.
		return nil
	}
	prof, err := n.persons.Process(ctx, project, pe, read)
	if err != nil || prof == nil {
		return err
	}
	ev.SetPerson(&executor.Person{ID: prof.Person.ID, Properties: prof.Person.Properties, Groups: prof.Groups})
	return nil
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
	pe := &persons.Event{UUID: ev.UUID(), Name: ev.Name, DistinctID: ev.DistinctID(),
		Properties: map[string]any{"$process_person_profile": false}}
	_, _, _, groups, err := ev.PersonFields()
	if err != nil {
		return
	}
	pe.Groups = groups
	prof, err := n.persons.Process(ctx, project, pe, true)
	if err != nil {
		n.log.Warn("reading a person failed; running with the event's own", "distinct_id", ev.DistinctID(), "err", err)
		return
	}
	ev.SetPerson(&executor.Person{ID: prof.Person.ID, Properties: prof.Person.Properties, Groups: prof.Groups})
}
