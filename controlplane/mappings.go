package controlplane

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/inputs"
)

// maxMappings bounds a destination's mappings: every matching one is an
// invocation per event.
const maxMappings = 50

// compileMappings validates d's mappings in place and compiles their
// filters and inputs. A mapping's inputs are its own schema's values and
// overrides of the destination's (not secret: secrets are kept on the
// destination, which seals them).
func (s *destinationServer) compileMappings(d *hogwirev1.Destination, v *violations) {
	if len(d.Mappings) == 0 {
		return
	}
	if len(d.Mappings) > maxMappings {
		v.add("destination.mappings", "has %d mappings; at most %d are allowed", len(d.Mappings), maxMappings)
		return
	}
	if d.Batch != nil {
		v.add("destination.mappings", "cannot be used with batch delivery")
	}
	destSchema := map[string]*hogwirev1.InputSchema{}
	for _, sc := range d.InputsSchema {
		destSchema[sc.Key] = sc
	}
	names := map[string]int{}
	for i, m := range d.Mappings {
		p := fmt.Sprintf("destination.mappings[%d].", i)
		if m == nil {
			v.add(p[:len(p)-1], "is empty")
			continue
		}
		switch name := strings.TrimSpace(m.Name); {
		case name == "":
			v.add(p+"name", "is required")
		case len(m.Name) > 100:
			v.add(p+"name", "is longer than 100 bytes")
		default:
			if j, ok := names[m.Name]; ok {
				v.add(p+"name", "%q is also the name of mappings[%d]", m.Name, j)
			}
			names[m.Name] = i
		}
		own := map[string]bool{}
		for j, sc := range m.InputsSchema {
			own[sc.GetKey()] = true
			if sc.GetSecret() {
				v.add(fmt.Sprintf("%sinputs_schema[%d].secret", p, j), "a mapping's inputs cannot be secret: declare secrets on the destination")
			}
		}
		if m.Inputs == nil {
			m.Inputs = map[string]*hogwirev1.InputValue{}
		}
		// Overrides of the destination's inputs are checked against its
		// schema, without its defaults or required: the destination's
		// value stands where the mapping gives none.
		var over []*hogwirev1.InputSchema
		overVals := map[string]*hogwirev1.InputValue{}
		for k, val := range m.Inputs {
			if own[k] {
				continue
			}
			sc := destSchema[k]
			if sc == nil {
				v.add(p+"inputs."+k, "is declared neither in the mapping's inputs_schema nor in the destination's")
				delete(m.Inputs, k)
				continue
			}
			if sc.Secret {
				v.add(p+"inputs."+k, "overrides a secret input, which only the destination may set")
				delete(m.Inputs, k)
				continue
			}
			c := proto.CloneOf(sc)
			c.Required, c.Default, c.DefaultJson = false, nil, ""
			over = append(over, c)
			overVals[k] = val
			delete(m.Inputs, k)
		}
		report := func(field, msg string) { v.add(p+field, "%s", msg) }
		inputs.CompileAll(m.InputsSchema, m.Inputs, report)
		inputs.CompileAll(over, overVals, report)
		for k, val := range overVals {
			m.Inputs[k] = val
		}
		if m.Filters == nil {
			m.Filters = &hogwirev1.Filters{}
		}
		if s.compileFilters != nil {
			bc, err := s.compileFilters(m.Filters)
			if err != nil {
				addFilterError(v, p, err)
			} else {
				m.Filters.Bytecode = bc
			}
		}
	}
}

// addFilterError records a filters compile error under the field prefix p
// ("destination.", "destination.mappings[1].").
func addFilterError(v *violations, p string, err error) {
	var fe *filters.FieldError
	switch {
	case errors.As(err, &fe) && fe.Line > 0:
		v.add(p+fe.Field, "line %d, column %d: %s", fe.Line, fe.Column, fe.Msg)
	case errors.As(err, &fe):
		v.add(p+fe.Field, "%s", fe.Msg)
	default:
		v.add(p+"filters", "%v", err)
	}
}

// templateMappings returns the mappings a destination created from t
// starts with: those included by default, their inputs at their defaults.
func templateMappings(t *hogwirev1.Template) []*hogwirev1.Mapping {
	var out []*hogwirev1.Mapping
	for _, mt := range t.MappingTemplates {
		if !mt.IncludeByDefault {
			continue
		}
		c := proto.CloneOf(mt)
		out = append(out, &hogwirev1.Mapping{Name: c.Name, Filters: c.Filters, InputsSchema: c.InputsSchema})
	}
	return out
}
