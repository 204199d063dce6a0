package executor

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// GeoIP answers geoipLookup(ip) for transformations. Lookup returns the
// record of the address (PostHog's shape: city, country, continent,
// location, postal, subdivisions…), nil when the database does not know
// it; an error fails the invocation.
type GeoIP interface {
	Lookup(ip string) (map[string]any, error)
}

// Transformation host functions, besides print.
const geoipLookup = "geoipLookup"

// IsTransformation reports whether d is a transformation: its program
// returns the event, changed or not, or null to drop it.
func IsTransformation(d *hogwirev1.Destination) bool {
	return d.GetKind() == hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION
}

// Transformed is what a transformation made of an event.
type Transformed struct {
	// Result is the invocation's, as Invoke returns it.
	*Result
	// Dropped: the program returned null; the event goes no further.
	Dropped bool
	// Changed: the event was rewritten in place (Succeeded and not
	// Dropped).
	Changed bool
}

// Transform runs a transformation on ev, which it rewrites in place with
// what the program returned: its event, distinct_id and properties (uuid,
// timestamp and the rest cannot change). The filters run first unless
// opts.SkipFilters; a transformation whose filters do not match leaves the
// event as it is (Status Filtered). Any failure — a thrown error, a limit,
// a return value that is not an event, an event past limits — leaves ev
// unchanged, with Status Failed and the reason in Error and the logs.
// Fetches are not available: the program cannot pause.
func (d *Destination) Transform(ctx context.Context, ev *hogwirev1.Event, project *Project, lim eventlimits.Limits, opts Options) Transformed {
	g := newEventGlobals(ev, project)
	opts.Park, opts.Resume, opts.Fetcher = false, nil, nil
	res := d.Invoke(ctx, g, opts)
	out := Transformed{Result: res}
	if res.Status != Succeeded {
		return out
	}
	if res.Value.Kind() == vm.KindNull {
		out.Dropped = true
		return out
	}
	next, err := transformedEvent(ev, res.Value, lim)
	if err != nil {
		res.Status, res.ErrorKind, res.Error = Failed, KindHogError, err.Error()
		res.Logs = append(res.Logs, LogEntry{Time: opts.clock()(), Level: hogwirev1.LogLevel_LOG_LEVEL_ERROR,
			Message: "Error transforming event " + ev.GetUuid() + ": " + err.Error() + "; the event goes on unchanged"})
		return out
	}
	ev.Event, ev.DistinctId, ev.Properties, ev.Set, ev.SetOnce = next.Event, next.DistinctId, next.Properties, next.Set, next.SetOnce
	out.Changed = true
	return out
}

// newEventGlobals builds the globals of a decoded event.
func newEventGlobals(ev *hogwirev1.Event, project *Project) *Globals {
	p := eventParts{
		uuid: ev.GetUuid(), name: ev.GetEvent(), distinctID: ev.GetDistinctId(), elementsChain: ev.GetElementsChain(),
		props: dictFromFields(ev.GetProperties().GetFields(), 2),
	}
	if ts := ev.GetTimestamp(); ts != nil {
		p.timestamp, p.hasTimestamp = ts.AsTime(), true
	}
	if s := ev.GetSet(); s != nil {
		p.set = dictFromFields(s.GetFields(), 0)
	}
	if s := ev.GetSetOnce(); s != nil {
		p.setOnce = dictFromFields(s.GetFields(), 0)
	}
	if pe := ev.GetPerson(); pe != nil {
		p.hasPerson, p.personID = true, pe.GetId()
		p.personProps = dictFromFields(pe.GetProperties().GetFields(), 0)
	}
	for t, key := range ev.GetGroups() {
		p.groups = append(p.groups, [2]string{t, key})
	}
	return p.globals(project)
}

// errNotAnEvent is the failure of a transformation that returned neither
// an event nor null.
var errNotAnEvent = errors.New("the transformation must return the event (a dictionary with properties) or null to drop it")

// transformedEvent reads a transformation's return value as the next
// version of ev (a copy: ev is not changed).
func transformedEvent(ev *hogwirev1.Event, v vm.Value, lim eventlimits.Limits) (*hogwirev1.Event, error) {
	d := v.AsDict()
	if d == nil {
		return nil, fmt.Errorf("%w: it returned a %s", errNotAnEvent, v.Kind())
	}
	props, ok := d.GetString("properties")
	if !ok || props.AsDict() == nil {
		return nil, fmt.Errorf("%w: its properties are not a dictionary", errNotAnEvent)
	}
	next := &hogwirev1.Event{Uuid: ev.GetUuid(), Event: ev.GetEvent(), DistinctId: ev.GetDistinctId(),
		Timestamp: ev.GetTimestamp(), ElementsChain: ev.GetElementsChain(), Person: ev.GetPerson(),
		Groups: ev.GetGroups(), Set: ev.GetSet(), SetOnce: ev.GetSetOnce(), Project: ev.GetProject()}
	for _, f := range [...]struct {
		key string
		dst *string
	}{{"event", &next.Event}, {"distinct_id", &next.DistinctId}} {
		s, ok := d.GetString(f.key)
		if !ok {
			continue
		}
		if s.Kind() != vm.KindString || s.AsString() == "" {
			return nil, fmt.Errorf("the returned event's %s must be a non-empty string", f.key)
		}
		*f.dst = s.AsString()
	}
	m, _ := props.ToGo().(map[string]any)
	// $set and $set_once were put among the properties for the code (as
	// PostHog stores them); those that came in the event's own fields go
	// back there.
	for _, f := range [...]struct {
		key string
		dst **structpb.Struct
	}{{"$set", &next.Set}, {"$set_once", &next.SetOnce}} {
		if *f.dst == nil || ev.GetProperties().GetFields()[f.key] != nil {
			continue
		}
		val, ok := m[f.key]
		delete(m, f.key)
		if !ok {
			*f.dst = nil
			continue
		}
		obj, isObj := val.(map[string]any)
		if !isObj {
			return nil, fmt.Errorf("the returned event's properties.%s must be a dictionary", f.key)
		}
		s, err := structpb.NewStruct(obj)
		if err != nil {
			return nil, fmt.Errorf("the returned event's properties.%s: %w", f.key, err)
		}
		*f.dst = s
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("the returned event's properties: %w", err)
	}
	next.Properties = s
	if _, viol := lim.WithDefaults().Check(next); viol != nil {
		return nil, fmt.Errorf("the returned event breaks a limit: %w", viol)
	}
	return next, nil
}

// geoip answers geoipLookup(ip): the address's record, or null when it is
// not a string, the database does not know it or there is none.
func (inv *invocation) geoip(args []vm.Value) (vm.Value, error) {
	if inv.opts.GeoIP == nil || len(args) == 0 || args[0].Kind() != vm.KindString || args[0].AsString() == "" {
		return vm.Null, nil
	}
	rec, err := inv.opts.GeoIP.Lookup(args[0].AsString())
	if err != nil {
		return vm.Null, fmt.Errorf("geoipLookup: %w", err)
	}
	if rec == nil {
		return vm.Null, nil
	}
	return vm.FromGo(rec), nil
}
