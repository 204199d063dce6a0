package dataplane

import (
	"cmp"
	"log/slog"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/dataplane/telemetry"
	"github.com/hogwire/hogwire/executor"
)

// The transformation stage. A project's transformations run on each of
// its events as it comes out of the event log, in their order, before
// the person store and any destination: what they pass on is what every
// later step sees — persons, filters, destinations, parked retries and
// invocation records. A transformation that returns null drops the event;
// one that fails (or hits a limit) passes it on as it got it. The stored
// message keeps the event as captured, so a message redelivered runs the
// transformations again.

// transform is one transformation as one configuration has it.
type transform struct {
	d    *hogwirev1.Destination
	prep *executor.Destination
	name string
	// skip is the metric counted instead of running it (quarantined by
	// the health manager); "" runs it.
	skip string
}

// addTransform adds d to its project's transformations, reusing prev's
// prepared code when d did not change. Disabled ones are left out.
func (p *projectRoutes) addTransform(prev *routing, d *hogwirev1.Destination, fvm *executor.FilterVM, log *slog.Logger) *transform {
	if !d.Enabled {
		return nil
	}
	t := &transform{d: d, name: d.Name, skip: skipMetric(d)}
	if old := prev.transformOf(d.Name); old != nil && sameRevision(old.d, d) {
		t.prep = old.prep
	} else {
		prep, err := executor.Prepare(d, executor.WithFilterVM(fvm))
		if err != nil {
			// As for destinations: the control plane compiled it, so
			// this is a version skew or a bug.
			log.Error("cannot prepare transformation; skipping it", "transformation", d.Name, "err", err)
			return nil
		}
		t.prep = prep
	}
	p.transforms = append(p.transforms, t)
	return t
}

// transformOf returns the transformation r prepared under name.
func (r *routing) transformOf(name string) *transform {
	if r == nil {
		return nil
	}
	return r.transforms[name]
}

// sortTransforms puts a project's transformations in their order: by
// order, then by name, so that every node runs them alike.
func (p *projectRoutes) sortTransforms() {
	slices.SortFunc(p.transforms, func(a, b *transform) int {
		return cmp.Or(cmp.Compare(a.d.Order, b.d.Order), cmp.Compare(a.name, b.name))
	})
}

// transformCounts are one transformation's counts over one message.
type transformCounts struct {
	succeeded, dropped, failed, filtered, skipped int64
	durations                                     []time.Duration
}

// minTransformsPerWorker is the number of events of a message below
// which its transformations run on one goroutine.
const minTransformsPerWorker = 16

// transformMessage runs the project's transformations on every event of
// m and replaces m.Data with what they pass on, in order, without the
// events they dropped. Events are independent, so a large message is
// spread over the machine's CPUs.
func (n *Node) transformMessage(m *eventlog.Message, pr *projectRoutes) {
	out := make([][]byte, len(m.Data))
	workers := min(goruntime.GOMAXPROCS(0), len(m.Data)/minTransformsPerWorker)
	var (
		next atomic.Int64
		mu   sync.Mutex
		all  = make([]transformCounts, len(pr.transforms))
	)
	work := func() {
		counts := make([]transformCounts, len(pr.transforms))
		for i := int(next.Add(1) - 1); i < len(m.Data); i = int(next.Add(1) - 1) {
			out[i] = n.transformEvent(m, i, pr, counts)
		}
		mu.Lock()
		for k, c := range counts {
			a := &all[k]
			a.succeeded += c.succeeded
			a.dropped += c.dropped
			a.failed += c.failed
			a.filtered += c.filtered
			a.skipped += c.skipped
			a.durations = append(a.durations, c.durations...)
		}
		mu.Unlock()
	}
	inParallel(workers, work)
	m.Data = slices.DeleteFunc(out, func(b []byte) bool { return b == nil })
	for k, t := range pr.transforms {
		c := all[k]
		var ms []telemetry.Metric
		for _, x := range [...]struct {
			name string
			n    int64
		}{{"succeeded", c.succeeded}, {"dropped", c.dropped}, {"failed", c.failed}, {"health_errors", c.failed},
			{"filtered", c.filtered}, {t.skip, c.skipped}} {
			if x.n > 0 {
				ms = append(ms, telemetry.Metric{Name: x.name, N: x.n})
			}
		}
		if len(ms) > 0 {
			n.tel.Record(t.name, ms, -1)
		}
		for _, d := range c.durations {
			n.tel.Duration(t.name, d)
		}
	}
}

// transformEvent runs the transformations on the i-th event of m and
// returns its encoding after them: the same bytes when none changed it,
// nil when one dropped it.
func (n *Node) transformEvent(m *eventlog.Message, i int, pr *projectRoutes, counts []transformCounts) []byte {
	data := m.Data[i]
	ev := &hogwirev1.Event{}
	if err := proto.Unmarshal(data, ev); err != nil {
		// Routing logs and drops it as it would without transformations.
		return data
	}
	changed := false
	for k, t := range pr.transforms {
		c := &counts[k]
		if t.skip != "" {
			c.skipped++
			continue
		}
		res := t.prep.Transform(n.runCtx, ev, pr.globals, n.capture.Limits,
			executor.Options{GeoIP: n.cfg.GeoIP, Redact: true, NoDebugLogs: !n.cfg.ShipDebugLogs})
		if len(res.Logs) > 0 {
			n.shipFunctionLogs(t.name, ev.GetUuid(), res.Result)
		}
		switch {
		case res.Status == executor.Filtered:
			c.filtered++
			continue
		case res.Status != executor.Succeeded:
			// The event goes on as this transformation got it.
			c.failed++
		case res.Dropped:
			c.dropped++
			c.durations = append(c.durations, res.Duration)
			return nil
		default:
			c.succeeded++
			changed = changed || res.Changed
		}
		c.durations = append(c.durations, res.Duration)
	}
	if !changed {
		return data
	}
	b, err := proto.Marshal(ev)
	if err != nil {
		n.log.Error("encoding a transformed event; passing it on as captured", "seq", m.Seq, "index", i, "err", err)
		return data
	}
	return b
}

// shipFunctionLogs sends what a transformation logged of one event, or a
// source webhook of one request (print() output, its error), to its log.
func (n *Node) shipFunctionLogs(name, eventUUID string, res *executor.Result) {
	id := newInvocationID()
	for _, l := range res.Logs {
		n.tel.Log(&hogwirev1.LogEntry{Time: timestamppb.New(l.Time), Level: l.Level, Message: l.Message,
			Destination: name, InvocationId: id, EventUuid: eventUUID, NodeId: n.cfg.NodeID})
	}
}
