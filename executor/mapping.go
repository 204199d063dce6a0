package executor

import (
	"errors"
	"fmt"
	"slices"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// mapping is one of a destination's mappings, prepared: its filters, and
// the destination's inputs with the mapping's over them.
type mapping struct {
	name       string
	filter     *vm.Program // nil: every event the names let through matches
	eventNames []string    // nil with allEvents
	allEvents  bool
	inputs     []input
	secrets    []string
}

// prepareMappings prepares d's enabled mappings into out; disabled ones
// are left out, as they never run.
func prepareMappings(out *Destination, d *hogwirev1.Destination) error {
	out.hasMappings = len(d.GetMappings()) > 0
	for _, m := range d.GetMappings() {
		if m.GetDisabled() {
			continue
		}
		pm := &mapping{name: m.GetName()}
		f := m.GetFilters()
		if len(f.GetBytecode()) > 0 && !filters.NamesDecide(f) {
			var err error
			if pm.filter, err = link(f.GetBytecode()); err != nil {
				return fmt.Errorf("destination %s: mapping %q: filters bytecode: %w", d.GetName(), m.GetName(), err)
			}
		} else if len(f.GetBytecode()) == 0 && (len(f.GetEvents()) > 0 || len(f.GetProperties()) > 0 || f.GetExpression() != "") {
			return fmt.Errorf("destination %s: mapping %q: filters were not compiled (no bytecode)", d.GetName(), m.GetName())
		}
		pm.eventNames, pm.allEvents = filters.EventNames(f)
		schema := MappingSchema(d.GetInputsSchema(), m.GetInputsSchema())
		values := MappingInputs(d.GetInputs(), m.GetInputs())
		var err error
		if pm.inputs, pm.secrets, err = prepareInputs(schema, values); err != nil {
			return fmt.Errorf("destination %s: mapping %q: %w", d.GetName(), m.GetName(), err)
		}
		out.mappings = append(out.mappings, pm)
	}
	return nil
}

// MappingSchema is the inputs schema a mapping's code sees: the
// destination's, with the mapping's declarations added (a key declared in
// both takes the mapping's).
func MappingSchema(dest, own []*hogwirev1.InputSchema) []*hogwirev1.InputSchema {
	out := make([]*hogwirev1.InputSchema, 0, len(dest)+len(own))
	for _, s := range dest {
		if !slices.ContainsFunc(own, func(o *hogwirev1.InputSchema) bool { return o.GetKey() == s.GetKey() }) {
			out = append(out, s)
		}
	}
	return append(out, own...)
}

// MappingInputs are the input values a mapping's code sees: the
// destination's, with the mapping's over them.
func MappingInputs(dest, own map[string]*hogwirev1.InputValue) map[string]*hogwirev1.InputValue {
	out := make(map[string]*hogwirev1.InputValue, len(dest)+len(own))
	for k, v := range dest {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}

// HasMappings reports whether the destination runs per mapping: each
// invocation then names one (Options.Mapping).
func (d *Destination) HasMappings() bool { return d.hasMappings }

// MappingNames returns the names of the destination's enabled mappings,
// in order.
func (d *Destination) MappingNames() []string {
	out := make([]string, len(d.mappings))
	for i, m := range d.mappings {
		out[i] = m.name
	}
	return out
}

// MatchMappings appends to dst the names of the enabled mappings whose
// filters match the event, in the destination's order. It does not run
// the destination's own filters: the caller has (Match). An error from one
// mapping's filters is returned with the names of those that matched
// before it.
func (d *Destination) MatchMappings(dst []string, g *Globals) ([]string, error) {
	for _, m := range d.mappings {
		ok, err := d.matchMapping(m, g)
		if err != nil {
			return dst, fmt.Errorf("mapping %q: %w", m.name, err)
		}
		if ok {
			dst = append(dst, m.name)
		}
	}
	return dst, nil
}

func (d *Destination) matchMapping(m *mapping, g *Globals) (bool, error) {
	return d.match(m.eventNames, m.allEvents, m.filter, g, nil)
}

// mapping returns the enabled mapping of this name, or nil.
func (d *Destination) mapping(name string) *mapping {
	for _, m := range d.mappings {
		if m.name == name {
			return m
		}
	}
	return nil
}

// ErrNoMapping fails an invocation of a destination with mappings that
// names none of its enabled mappings.
var ErrNoMapping = errors.New("no such enabled mapping")
