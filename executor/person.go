package executor

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
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
		var pv structpb.Value
		if err := proto.Unmarshal([]byte(val), &pv); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformedEvent, err)
		}
		props[k] = pv.AsInterface()
		return nil
	})
	return props, err
}

func wireMap(b string) (map[string]any, error) {
	var s structpb.Struct
	if err := proto.Unmarshal([]byte(b), &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedEvent, err)
	}
	return s.AsMap(), nil
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
