package dataplane

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/invocations"
)

// A rerun (see invocations.RerunHeader) is a message of the event log for
// one destination, like an overflow, which the control plane stores at a
// bounded rate. It takes the path of any event: the destination's current
// state (disabled, quarantined: skipped or parked), filters, code, inputs,
// limits and retries. Only its records differ: they link to the rerun and
// to the invocation it runs again. With invocations.RevisionHeader, the
// filters, code, inputs and mappings are a kept revision's instead (see
// pinnedRoute); the state and lane are still the destination's.

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
	if r != nil && m.Redelivered > 0 {
		r.dest.drain.returned(int64(len(m.Data)))
	}
	if r != nil && n.full(r.dest) {
		_ = m.Nak(n.overflowWait([]*route{r}, m))
		return
	}
	var gone error // the revision to run cannot be had
	// A quarantined destination parks the rerun pinned to its revision.
	if v := m.Header.Get(invocations.RevisionHeader); v != "" && r != nil && (r.skip == "" || n.keeps(r.skip)) {
		rev, _ := strconv.ParseInt(v, 10, 64)
		pinned, err := n.pinnedRoute(r, rev)
		switch c := status.Code(err); {
		case c == codes.FailedPrecondition || c == codes.NotFound || c == codes.InvalidArgument:
			gone = err
		case err != nil:
			n.log.Warn("cannot get a destination's revision for a rerun; retrying", "destination", r.dest.name, "revision", rev, "err", err)
			_ = m.Nak(min(n.cfg.BusyRetry<<min(m.Redelivered, 3), 10*time.Second))
			return
		default:
			r = pinned
		}
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
		case gone != nil:
			// Pruned from the history since the rerun was made.
			n.recordRerun(link, &invocations.Record{Destination: r.dest.name, Status: statusSkipped,
				ErrorKind: "revision_unavailable", Error: status.Convert(gone).Message()}, g)
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
					ErrorKind: string(executor.KindFilter), Error: err.Error(), Revision: r.d.GetRevision()}, g)
				continue
			}
			if !match || (names != nil && len(names) == 0) {
				n.recordRerun(link, &invocations.Record{Destination: r.dest.name, Status: statusSkipped, ErrorKind: "filtered",
					Revision: r.d.GetRevision()}, g)
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
	if rec.Revision == 0 {
		rec.Revision = n.revisionOf(rec.Destination)
	}
	n.records.Record(rec)
}

// pinKey names a destination's kept revision.
type pinKey struct {
	dest string
	rev  int64
}

// maxPins bounds the kept revisions a node holds prepared: a rerun runs
// few, and each is asked for once.
const maxPins = 64

// pinnedRoute returns a route that runs the destination of cur as its
// kept revision rev had it (ConfigService.GetDestinationRevision gives it,
// compiled, its secrets in the clear). It shares cur's lane, limits and
// state: a rerun with the original revision still waits its turn, and
// stops when the destination is disabled, quarantined or deleted.
func (n *Node) pinnedRoute(cur *route, rev int64) (*route, error) {
	k := pinKey{cur.dest.name, rev}
	n.pinsMu.Lock()
	pin := n.pins[k]
	n.pinsMu.Unlock()
	if pin == nil {
		ctx, cancel := context.WithTimeout(n.runCtx, 10*time.Second)
		defer cancel()
		resp, err := hogwirev1.NewConfigServiceClient(n.cfg.ControlPlane).GetDestinationRevision(ctx,
			&hogwirev1.GetDestinationRevisionRequest{Name: cur.dest.name, Revision: rev})
		if err != nil {
			return nil, err
		}
		pin = &route{d: resp.GetDestination(), pinned: true}
		if pin.prep, err = executor.Prepare(pin.d); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "revision %d cannot be prepared: %v", rev, err)
		}
		n.pinsMu.Lock()
		if n.pins == nil || len(n.pins) >= maxPins {
			n.pins = map[pinKey]*route{}
		}
		n.pins[k] = pin
		n.pinsMu.Unlock()
	}
	return &route{d: pin.d, prep: pin.prep, dest: cur.dest, skip: cur.skip, span: "invoke " + pin.d.GetDisplayName(),
		concurrency: cur.concurrency, pinned: true}, nil
}
