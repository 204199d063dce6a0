package dataplane

import (
	"log/slog"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/configsync"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/resourcename"
)

// route is one destination ready to run.
type route struct {
	d    *hogwirev1.Destination
	prep *executor.Destination
	// skip is the metric to count instead of running ("" runs it):
	// disabled destinations and quarantined ones are skipped.
	skip string
	// span names the invocation span; built once, not per invocation.
	span string
}

// projectRoutes selects a project's destinations by event name, so that
// destinations whose filter cannot match an event cost nothing for it.
type projectRoutes struct {
	// globals is the project's part of every event's globals.
	globals *executor.Project
	byEvent map[string][]*route
	// anyEvent match every event name (filters without an event list, or
	// with an entry that matches all).
	anyEvent []*route
}

func (p *projectRoutes) forEvent(name string) (named, any []*route) {
	return p.byEvent[name], p.anyEvent
}

// routing is an immutable view built from one config snapshot.
type routing struct {
	revision int64
	projects map[string]*projectRoutes
	tokens   map[string]string
	// prepared is kept to reuse unchanged destinations on the next build.
	prepared map[string]*route
}

// buildRouting prepares every destination of next, reusing the routes of
// prev whose destination did not change (same revision and health).
func buildRouting(prev *routing, next *configsync.Snapshot, source executor.Source, log *slog.Logger) *routing {
	r := &routing{
		revision: next.Revision,
		projects: make(map[string]*projectRoutes, len(next.Projects)),
		tokens:   next.Tokens,
		prepared: make(map[string]*route, len(next.Destinations)),
	}
	for id, p := range next.Projects {
		r.projects[id] = &projectRoutes{globals: executor.NewProject(p, source), byEvent: map[string][]*route{}}
	}
	for name, d := range next.Destinations {
		pr := r.projects[projectOf(name)]
		if pr == nil {
			continue
		}
		rt := prev.reuse(d)
		if rt == nil {
			prep, err := executor.Prepare(d)
			if err != nil {
				// The control plane compiled it, so this is a version skew or
				// a bug; skip the destination loudly rather than crash.
				log.Error("cannot prepare destination; skipping it", "destination", name, "err", err)
				continue
			}
			rt = &route{d: d, prep: prep}
		}
		rt.skip, rt.span = skipMetric(d), "invoke "+d.DisplayName
		r.prepared[name] = rt
		names, all := filters.EventNames(d.Filters)
		if all {
			pr.anyEvent = append(pr.anyEvent, rt)
			continue
		}
		for _, n := range names {
			pr.byEvent[n] = append(pr.byEvent[n], rt)
		}
	}
	return r
}

// reuse returns prev's route for d if d is unchanged.
func (r *routing) reuse(d *hogwirev1.Destination) *route {
	if r == nil {
		return nil
	}
	old := r.prepared[d.Name]
	if old == nil || old.d.Revision != d.Revision || old.d.Revision == 0 {
		return nil
	}
	// Health changes arrive as the same revision of the destination with a
	// new health; the prepared code is still valid.
	return &route{d: d, prep: old.prep}
}

// skipMetric says why a destination does not run, as the metric to count.
func skipMetric(d *hogwirev1.Destination) string {
	if !d.Enabled {
		return "disabled"
	}
	switch d.GetHealth().GetState() {
	case hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY:
		return "disabled_temporarily"
	case hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY:
		return "disabled_permanently"
	}
	return ""
}

func projectOf(name string) string { return resourcename.ProjectOf(name) }
