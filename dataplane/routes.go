package dataplane

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/configsync"
	"github.com/hogwire/hogwire/dataplane/telemetry"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/metrics"
	"github.com/hogwire/hogwire/resourcename"
)

// route is one destination as one configuration has it.
type route struct {
	d *hogwirev1.Destination
	// prep is the prepared code; nil for a destination that does not run
	// (disabled), which is never prepared.
	prep *executor.Destination
	dest *destination
	// skip is the metric to count instead of running ("" runs it):
	// disabled destinations and quarantined ones are skipped.
	skip string
	// span names the invocation span; built once, not per invocation.
	span string
	// concurrency is the lane's limit.
	concurrency int
	// pinned is set on a route of a kept revision that a rerun runs (see
	// pinnedRoute): not the destination's current one, which it follows
	// only for being deleted, disabled or quarantined.
	pinned bool
	// events lists, while a message is routed, the indexes of its events
	// the route may want, and results what its filters said of each (see
	// Node.handle); guarded by the project's mu.
	events  []int32
	results []filterResult
	// sel is what the index reads of the destination's filters, set when
	// it is indexed.
	sel *selection
}

// selection is what the routing index reads of a destination's filters:
// the event names it may run for and the property test its filters
// require. Reading them parses the free expression, so a route of the
// same revision in the next routing takes it over.
type selection struct {
	names    []string
	all      bool
	need     filters.Need
	needable bool
}

// selection returns the selection of d, prev's when d is unchanged.
func (r *routing) selection(d *hogwirev1.Destination) *selection {
	if r != nil {
		if old := r.prepared[d.Name]; old != nil && old.sel != nil && sameRevision(old.d, d) {
			return old.sel
		}
	}
	s := &selection{}
	s.names, s.all = eventNames(d)
	s.need, s.needable = filters.Requirement(d.Filters)
	return s
}

// destination is what a node keeps of a destination across configuration
// changes: its lane, its place in the CPU's queue, and its current route,
// which queued and running invocations read to obey a change at once.
type destination struct {
	name    string
	project *project
	// cur is the current route; nil once the destination is deleted.
	cur   atomic.Pointer[route]
	lane  lane
	batch batcher
	// parkLane parks the events that arrive while the destination is
	// quarantined, one at a time, in order.
	parkLane lane
	reorder  reorderBuf
	cpu      cpuQueue
	flow     flow
	// held counts the destination's invocations queued or running.
	held atomic.Int64
	// drain measures how fast held goes down, for the events it
	// overflows.
	drain drain
	// running holds the invocations running, each with its cancel
	// function and its index here, so that disabling the destination
	// stops their fetches at once.
	runningMu sync.Mutex
	running   []*invocation
	// selected counts events the filters let through (or failed on), and
	// flushed what of it and of the project's events was last turned into
	// the "filtered" count (see Node.flushFiltered). Both are guarded by
	// the project's mu.
	selected                   int64
	flushedSel, flushedProject int64
	// lastURL is the last URL its records showed (see safeURL).
	lastURL atomic.Pointer[shownURL]
	// meters are its handles on the node's telemetry and metrics (see
	// Node.meters).
	meters atomic.Pointer[destMeters]
}

// destMeters are a destination's handles on the node's telemetry and
// metrics: every invocation records to both, and a handle spares it the
// lookups by name, each under a lock every destination shares.
type destMeters struct {
	tel *telemetry.Dest
	im  *metrics.Dest // nil when the node has no metrics
}

// meters are d's handles, made on first use. Both recorders keep a
// destination's counts for as long as they live, so a handle stays good
// across the destination's edits, deletion and return.
func (n *Node) meters(d *destination) *destMeters {
	if m := d.meters.Load(); m != nil {
		return m
	}
	d.meters.CompareAndSwap(nil, &destMeters{tel: n.tel.Dest(d.name), im: n.im.Dest(d.name)})
	return d.meters.Load()
}

// project is what a node keeps of a project across configuration changes.
type project struct {
	// mu is held while a message of the project is routed, and while its
	// filtered counts are flushed, so that the flush sees every event with
	// its selections.
	mu sync.Mutex
	// events counts the project's events routed by this node.
	events int64
}

// projectRoutes selects a project's destinations by event name, then by
// the property tests of their filters (see filters.Index), so that
// destinations whose filter cannot match an event cost nothing for it.
type projectRoutes struct {
	rt *project
	// globals is the project's part of every event's globals.
	globals *executor.Project
	byEvent map[string]*filters.Index[*route]
	// anyEvent match every event name (filters without an event list, or
	// with an entry that matches all).
	anyEvent filters.Index[*route]
	// routed lists the destinations the index holds, for the filtered
	// counts.
	routed []*destination
	// transforms are the project's transformations, in order (see
	// transform.go).
	transforms []*transform
}

// wants reports whether a destination may want events of this name.
func (p *projectRoutes) wants(name string) bool {
	return p.byEvent[name] != nil || (p.anyEvent.Len() > 0 && name != executor.HealthEvent)
}

// candidates appends to dst the routes whose filters an event may match:
// their filters must still run on it. The events hogwire itself emits
// into a project reach only the destinations that name them: a
// destination sending every event to an analytics tool must not send it
// hogwire's own health notices.
func (p *projectRoutes) candidates(dst []*route, g *executor.Globals) []*route {
	props, person := g.PropertyDicts()
	if named := p.byEvent[g.Event()]; named != nil {
		dst = named.Candidates(dst, props, person)
	}
	if g.Event() == executor.HealthEvent {
		return dst
	}
	return p.anyEvent.Candidates(dst, props, person)
}

// routing is an immutable view built from one config snapshot.
type routing struct {
	revision int64
	projects map[string]*projectRoutes
	tokens   map[string]string
	// prepared is kept to reuse unchanged destinations on the next build,
	// transforms the same for transformations.
	prepared   map[string]*route
	transforms map[string]*transform
	// webhooks are the enabled source webhooks by id (see webhook.go).
	webhooks map[string]*webhook
	// routed lists the destinations of every project's index.
	routed []*destination
}

// noRoom reports whether every routed destination holds more than most
// events (false when there are none).
func (r *routing) noRoom(most int64) bool {
	for _, d := range r.routed {
		if d.held.Load() <= most {
			return false
		}
	}
	return len(r.routed) > 0
}

// registry holds the destinations and projects a node keeps across
// configuration changes.
type registry struct {
	mu       sync.Mutex
	dests    map[string]*destination
	projects map[string]*project
	// filterVM runs every destination's filters, so that routing an event
	// through many of them runs on one warm run state.
	filterVM *executor.FilterVM
}

func newRegistry() registry {
	return registry{dests: map[string]*destination{}, projects: map[string]*project{}, filterVM: executor.NewFilterVM()}
}

// stopped is a destination that must no longer run, and why; byUser is
// set when a user disabled or deleted it (its backlog is dropped).
// resumed marks instead one that runs again after it did not.
type stopped struct {
	dest    *destination
	reason  string
	byUser  bool
	resumed bool
}

// buildRouting prepares every destination of next, reusing the code of
// prev's routes whose destination did not change (same revision), and
// points each destination's current route at its new one: work already
// queued obeys the new configuration from now on. It returns the
// destinations that may no longer run and did before.
func (rt *registry) buildRouting(prev *routing, next *configsync.Snapshot, source executor.Source, defaultConcurrency int, log *slog.Logger) (*routing, []stopped) {
	var stops []stopped
	r := &routing{
		revision:   next.Revision,
		projects:   make(map[string]*projectRoutes, len(next.Projects)),
		tokens:     next.Tokens,
		prepared:   make(map[string]*route, len(next.Destinations)),
		transforms: map[string]*transform{},
		webhooks:   map[string]*webhook{},
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for id, p := range next.Projects {
		pr := rt.projects[id]
		if pr == nil {
			pr = &project{}
			rt.projects[id] = pr
		}
		r.projects[id] = &projectRoutes{rt: pr, globals: executor.NewProject(p, source), byEvent: map[string]*filters.Index[*route]{}}
	}
	for id := range rt.projects {
		if _, ok := next.Projects[id]; !ok {
			delete(rt.projects, id)
		}
	}
	for name, d := range next.Destinations {
		pr := r.projects[projectOf(name)]
		if pr == nil {
			continue
		}
		if executor.IsSourceWebhook(d) {
			if wh := addWebhook(prev, d, pr, rt.filterVM, log); wh != nil {
				r.webhooks[resourcename.ID(name)] = wh
			}
			continue
		}
		if executor.IsTransformation(d) {
			if t := pr.addTransform(prev, d, rt.filterVM, log); t != nil {
				r.transforms[name] = t
			}
			continue
		}
		dest := rt.dests[name]
		if dest == nil || dest.project != pr.rt {
			dest = &destination{name: name, project: pr.rt}
			// Filtered counts start from the project's events now.
			pr.rt.mu.Lock()
			dest.flushedProject = pr.rt.events
			pr.rt.mu.Unlock()
			rt.dests[name] = dest
		}
		rte := &route{d: d, dest: dest, skip: skipMetric(d), span: "invoke " + d.DisplayName,
			concurrency: int(d.GetLimits().GetMaxConcurrency())}
		if rte.concurrency <= 0 {
			rte.concurrency = defaultConcurrency
		}
		if d.Enabled {
			rte.prep = prev.reuse(d)
			if rte.prep == nil {
				prep, err := executor.Prepare(d, executor.WithFilterVM(rt.filterVM))
				if err != nil {
					// The control plane compiled it, so this is a version
					// skew or a bug; skip the destination loudly rather than
					// crash.
					log.Error("cannot prepare destination; skipping it", "destination", name, "err", err)
					rte.skip = "disabled"
				}
				rte.prep = prep
			}
		}
		r.prepared[name] = rte
		old := dest.cur.Swap(rte)
		if rte.skip != "" && (old == nil || old.skip == "" || (!d.Enabled && old.d.Enabled)) {
			stops = append(stops, stopped{dest: dest, reason: rte.skip, byUser: !d.Enabled})
		}
		if rte.skip == "" && old != nil && old.skip != "" {
			stops = append(stops, stopped{dest: dest, resumed: true})
		}
		if !d.Enabled || rte.prep == nil {
			// A disabled destination is not routed: its filters do not run
			// and its events count nothing.
			continue
		}
		pr.routed = append(pr.routed, dest)
		r.routed = append(r.routed, dest)
		rte.sel = prev.selection(d)
		if rte.sel.all {
			pr.anyEvent.AddNeed(rte.sel.need, rte.sel.needable, rte)
			continue
		}
		for _, n := range rte.sel.names {
			ix := pr.byEvent[n]
			if ix == nil {
				ix = &filters.Index[*route]{}
				pr.byEvent[n] = ix
			}
			ix.AddNeed(rte.sel.need, rte.sel.needable, rte)
		}
	}
	for _, pr := range r.projects {
		pr.sortTransforms()
	}
	for name, dest := range rt.dests {
		if _, ok := next.Destinations[name]; !ok || r.prepared[name] == nil {
			// Deleted: what is queued for it is skipped.
			dest.cur.Store(nil)
			delete(rt.dests, name)
			stops = append(stops, stopped{dest: dest, reason: skipDeleted, byUser: true})
		}
	}
	return r, stops
}

// reuse returns prev's prepared code for d if d is unchanged.
func (r *routing) reuse(d *hogwirev1.Destination) *executor.Destination {
	if r == nil {
		return nil
	}
	old := r.prepared[d.Name]
	if old == nil || !sameRevision(old.d, d) {
		return nil
	}
	return old.prep
}

// sameRevision reports whether d is the revision of a Hog function that
// old was, so that what was prepared for old still runs it: health
// changes arrive as the same revision with a new health.
func sameRevision(old, d *hogwirev1.Destination) bool {
	return d.GetRevision() != 0 && old.GetRevision() == d.GetRevision()
}

// skipMetric says why a destination does not run, as the metric to count.
func skipMetric(d *hogwirev1.Destination) string {
	if !d.Enabled {
		return "disabled"
	}
	switch d.GetHealth().GetState() {
	case hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY:
		return skipQuarantined
	case hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY:
		return "disabled_permanently"
	}
	return ""
}

// skipQuarantined is the metric of work whose destination the health
// manager quarantined for a while.
const skipQuarantined = "disabled_temporarily"

// skipDeleted is the metric of work whose destination was deleted.
const skipDeleted = "disabled_permanently"

// skipDisabledByHealth is the metric of work whose destination the health
// manager disabled until a user brings it back (the same as a deletion's,
// PostHog's "disabled_permanently").
const skipDisabledByHealth = skipDeleted

// skipEdited stops a running invocation whose destination's code changed:
// it runs again with the new code when it has not fetched yet.
const skipEdited = "edited"

// check says whether an invocation that started with r may go on under
// its destination's current route, and returns that route: a Stop when
// the destination was deleted, disabled, quarantined or edited since.
func (r *route) check() (*route, *executor.Stop) {
	cur := r.dest.cur.Load()
	switch {
	case cur == r:
		return r, nil
	case cur == nil:
		return nil, &executor.Stop{Reason: skipDeleted}
	case cur.skip != "":
		return nil, &executor.Stop{Reason: cur.skip}
	case r.pinned:
		// It runs its revision's code whatever the current one is.
		return r, nil
	case cur.prep != r.prep:
		return nil, &executor.Stop{Reason: skipEdited}
	}
	// Another change (its health, say): the code that runs is the same.
	return cur, nil
}

// mappings returns the names of the route's mappings that match an event
// its destination's filters matched: nil for a destination without
// mappings, which runs once.
func (r *route) mappings(g *executor.Globals) ([]string, error) {
	if r.prep == nil || !r.prep.HasMappings() {
		return nil, nil
	}
	return r.prep.MatchMappings(make([]string, 0, 2), g)
}

// eventNames are the event names a destination may run for (all: every
// name): its filters', narrowed to its enabled mappings' when its filters
// name none, so that the index passes an event to a destination with
// mappings only when one of them may match it.
func eventNames(d *hogwirev1.Destination) (names []string, all bool) {
	names, all = filters.EventNames(d.Filters)
	if !all {
		return names, false
	}
	var union []string
	enabled := 0
	for _, m := range d.GetMappings() {
		if m.GetDisabled() {
			continue
		}
		enabled++
		mn, mall := filters.EventNames(m.GetFilters())
		if mall {
			return nil, true
		}
		for _, n := range mn {
			if !slices.Contains(union, n) {
				union = append(union, n)
			}
		}
	}
	if enabled == 0 && len(d.GetMappings()) == 0 {
		return nil, true
	}
	return union, false
}

func projectOf(name string) string { return resourcename.ProjectOf(name) }
