package executor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Person is an event's person and groups as a person store holds them.
// Given to a WireEvent (SetPerson), it replaces the person the globals
// would make from the event alone: person.id is its ID and
// person.properties its Properties, with the event's own $set_once and
// $set applied on top as for any person; each of the event's groups gets
// its stored properties.
type Person struct {
	ID         string
	Properties map[string]any
	// Groups are stored group properties by group type and key.
	Groups map[[2]string]map[string]any
}

// SetPerson makes the globals built from e use p (nil: the event's own).
// A person the sender put in the event still wins.
func (e *WireEvent) SetPerson(p *Person) { e.stored = p }

// UUID returns the event's uuid.
func (e *WireEvent) UUID() string { return e.uuid }

// DistinctID returns the event's distinct_id.
func (e *WireEvent) DistinctID() string { return e.distinctID }

// personKeys are the property names a person store reads; an event whose
// encoded properties hold none of them has nothing for it there.
var personKeys = [...]string{"$set", "$unset", "$groups", "$process_person_profile", "$anon_distinct_id", "alias", "$group_"}

// isPersonKey reports the properties PersonFields returns.
func isPersonKey(k string) bool {
	switch k {
	case "$set", "$set_once", "$unset", "$groups", "$process_person_profile", "$anon_distinct_id", "alias",
		"$group_type", "$group_key", "$group_set":
		return true
	}
	return false
}

// PersonFields returns what a person store reads of the event: those of
// its properties a store reads (nil when there are none; the others are
// not decoded here), its set and set_once fields, and its groups (the
// groups field over the $groups property).
func (e *WireEvent) PersonFields() (props, set, setOnce map[string]any, groups map[string]string, err error) {
	for _, k := range personKeys {
		if strings.Contains(e.props, k) {
			if props, err = wirePersonProps(e.props); err != nil {
				return nil, nil, nil, nil, err
			}
			break
		}
	}
	if e.hasSet {
		if set, err = wireMap(e.set); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	if e.hasSetOnce {
		if setOnce, err = wireMap(e.setOnce); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	if gs, ok := props["$groups"].(map[string]any); ok {
		groups = make(map[string]string, len(gs)+len(e.groups))
		for t, k := range gs {
			switch k := k.(type) {
			case string:
				groups[t] = k
			case float64:
				groups[t] = strconv.FormatFloat(k, 'f', -1, 64)
			}
		}
	}
	if len(e.groups) > 0 && groups == nil {
		groups = make(map[string]string, len(e.groups))
	}
	for _, tk := range e.groups {
		groups[tk[0]] = tk[1]
	}
	return props, set, setOnce, groups, nil
}

// wirePersonProps decodes the entries of an encoded Struct that
// isPersonKey names.
func wirePersonProps(b string) (map[string]any, error) {
	props := map[string]any{}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v string, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		k, val, err := mapEntry(v, true)
		if err != nil || !isPersonKey(k) {
			return err
		}
		pv, err := wireAny(val, 1)
		if err != nil {
			return err
		}
		props[strings.Clone(k)] = pv
		return nil
	})
	return props, err
}

// wireMap decodes an encoded google.protobuf.Struct into what structpb's
// AsMap gives, without the Struct in between: a person store keeps these
// values, so their strings are copies, not substrings of the event.
func wireMap(b string) (map[string]any, error) { return wireAnyMap(b, 0) }

func wireAnyMap(b string, depth int) (map[string]any, error) {
	if depth > maxWireDepth {
		return nil, fmt.Errorf("%w: objects nested too deep", ErrMalformedEvent)
	}
	m := map[string]any{}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v string, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		k, val, err := mapEntry(v, true)
		if err != nil {
			return err
		}
		if !utf8.ValidString(k) {
			return fmt.Errorf("%w: key is not valid UTF-8", ErrMalformedEvent)
		}
		x, err := wireAny(val, depth+1)
		if err != nil {
			return err
		}
		m[strings.Clone(k)] = x
		return nil
	})
	return m, err
}

// wireAny decodes a google.protobuf.Value as structpb's AsInterface does
// (see valueField for the rules of the wire).
func wireAny(b string, depth int) (any, error) {
	kind, x, str, msg, err := valueField(b)
	if err != nil {
		return nil, err
	}
	switch kind {
	case 2:
		// As AsInterface: JSON has no number for these.
		switch f := math.Float64frombits(x); {
		case math.IsNaN(f):
			return "NaN", nil
		case math.IsInf(f, 1):
			return "Infinity", nil
		case math.IsInf(f, -1):
			return "-Infinity", nil
		default:
			return f, nil
		}
	case 3:
		if !utf8.ValidString(str) {
			// As protobuf's decoder refuses a string field that is not
			// UTF-8.
			return nil, fmt.Errorf("%w: string is not valid UTF-8", ErrMalformedEvent)
		}
		return strings.Clone(str), nil
	case 4:
		return x != 0, nil
	case 5:
		return wireAnyMap(msg, depth)
	case 6:
		if depth > maxWireDepth {
			return nil, fmt.Errorf("%w: lists nested too deep", ErrMalformedEvent)
		}
		list := []any{}
		err := eachField(msg, func(num protowire.Number, typ protowire.Type, v string, _ uint64) error {
			if num != 1 || typ != protowire.BytesType {
				return nil
			}
			e, err := wireAny(v, depth+1)
			list = append(list, e)
			return err
		})
		if err != nil {
			return nil, err
		}
		return list, nil
	}
	return nil, nil
}

func (p *Person) groupProperties(typ, key string) (map[string]any, bool) {
	if p == nil {
		return nil, false
	}
	props, ok := p.Groups[[2]string{typ, key}]
	return props, ok && props != nil
}

// PersonID returns the id of the event's person.
func (g *Globals) PersonID() string { return g.personID }
