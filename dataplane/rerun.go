package dataplane

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/invocations"
)

// A rerun (see invocations.RerunHeader) is a message of the event log for
// one destination, like an overflow, which the control plane stores at a
// bounded rate. It takes the path of any event: the destination's current
// state (disabled, quarantined: skipped or parked), filters, code, inputs,
// limits and retries. Only its records differ: they link to the rerun and
// to the invocation it runs again.

// rerunLink is the rerun an invocation belongs to, and the invocation it
// runs again; zero for any other invocation.
type rerunLink struct{ rerun, of string }

// rerunLink is inv's: from its message, or from its parked record once it
// was parked.
func (inv *invocation) rerunLink() rerunLink {
	if p := inv.parked; p != nil {
		return rerunLink{p.Rerun, p.RerunOf}
	}
	if inv.p != nil {
		return inv.p.rerun
	}
	return rerunLink{}
}

// handleRerun runs the events of a rerun's message on the destination
// named (r is nil when it no longer exists).
func (n *Node) handleRerun(m *eventlog.Message, pr *projectRoutes, r *route, rerun, of string) {
	link := rerunLink{rerun, of}
	dest := m.Header.Get(overflowHeader)
	if r != nil && r.dest.held.Load() >= int64(n.cfg.MaxQueuedPerDestination) {
		_ = m.Nak(min(n.cfg.BusyRetry<<min(m.Redelivered, 3), 10*time.Second))
		return
	}
	p := &pending{msg: m, n: n, events: int64(len(m.Data)), rerun: link}
	if !n.track(p) {
		_ = m.Nak(n.cfg.BusyRetry)
		return
	}
	tl := trace.SpanContextFromContext(n.prop.Extract(context.Background(), propagation.HeaderCarrier(m.Header)))
	p.left.Store(1)
	for i, data := range m.Data {
		ev, err := executor.ParseEvent(data)
		var g *executor.Globals
		if err == nil {
			n.storedPerson(m.Project, ev)
			g, err = executor.NewEventFromWire(ev, pr.globals)
		}
		if err != nil {
			n.log.Error("dropping an unreadable event of a rerun", "seq", m.Seq, "index", i, "rerun", rerun, "err", err)
			continue
		}
		switch {
		case r == nil:
			n.skip(dest, skipDeleted, nil)
			n.recordRerun(link, &invocations.Record{Destination: dest, Status: statusSkipped, ErrorKind: skipDeleted}, g)
			continue
		case r.skip != "" && !n.keeps(r.skip):
			n.skip(r.dest.name, r.skip, nil)
			n.recordRerun(link, &invocations.Record{Destination: r.dest.name, Status: statusSkipped, ErrorKind: r.skip}, g)
			continue
		}
		if r.prep != nil && r.skip == "" {
			// The destination's current filters: they may have been fixed
			// (a filter error is rerun too), or may now leave it out.
			pr.rt.mu.Lock()
			match, err := r.prep.Match(g)
			var names []string
			if match && err == nil {
				names, err = r.mappings(g)
			}
			pr.rt.mu.Unlock()
			if err != nil {
				n.recordRerun(link, &invocations.Record{Destination: r.dest.name, Status: statusFailed,
					ErrorKind: string(executor.KindFilter), Error: err.Error()}, g)
				continue
			}
			if !match || (names != nil && len(names) == 0) {
				n.recordRerun(link, &invocations.Record{Destination: r.dest.name, Status: statusSkipped, ErrorKind: "filtered"}, g)
				continue
			}
			// A destination with mappings reruns each mapping its current
			// filters select.
			n.queueMappings(r, g, p, tl, data, names)
			continue
		}
		n.queue(r, g, p, tl, data, nil, "")
	}
	p.done()
}

// recordRerun records a rerun that did not run: its record says why.
func (n *Node) recordRerun(link rerunLink, rec *invocations.Record, g *executor.Globals) {
	if n.records == nil {
		return
	}
	rec.EventUUID, rec.EventName, rec.DistinctID, rec.PersonID = g.UUID(), g.Event(), g.DistinctID(), g.PersonID()
	rec.Start, rec.NodeID, rec.Rerun, rec.RerunOf = time.Now(), n.cfg.NodeID, link.rerun, link.of
	n.records.Record(rec)
}
