package persons

import (
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Person is a person profile.
type Person struct {
	// ID is the person's UUID.
	ID         string         `json:"id"`
	Properties map[string]any `json:"properties"`
	CreatedAt  time.Time      `json:"created_at"`
	// IsIdentified is set once an $identify or a merge named the person.
	IsIdentified bool     `json:"is_identified"`
	DistinctIDs  []string `json:"distinct_ids"`
	// Version counts the updates applied to the person (1 when created).
	Version int64 `json:"version"`
	// MergedInto is set, while a merge is under way, on the person being
	// merged away: whoever reads it finishes the merge.
	MergedInto string `json:"merged_into,omitempty"`
	// Applied marks the last events applied (see eventMark), oldest
	// first, so a redelivered event is recognised.
	Applied []string `json:"applied,omitempty"`
}

// Stored reports whether the person is stored (false: the empty person of
// a distinct id nothing was stored for).
func (p *Person) Stored() bool { return p.Version > 0 }

// Group is a group profile.
type Group struct {
	Type       string         `json:"type"`
	Key        string         `json:"key"`
	Properties map[string]any `json:"properties"`
	CreatedAt  time.Time      `json:"created_at"`
	Version    int64          `json:"version"`
	Applied    []string       `json:"applied,omitempty"`
}

// Event is what the store reads of an event.
type Event struct {
	UUID, Name, DistinctID string
	Properties             map[string]any
	// Set and SetOnce are the event's set and set_once fields (hogwire's
	// API carries them beside the $set and $set_once properties).
	Set, SetOnce map[string]any
	// Groups are the event's groups, type to key (the groups field and
	// the $groups property).
	Groups map[string]string
}

// keepApplied is how many applied events a person or group remembers: an
// event redelivered (after a node died holding it) is recognised while
// fewer than this many other events changed its person since.
const keepApplied = 16

func applied(marks []string, uuid string) bool {
	return uuid != "" && slices.Contains(marks, eventMark(uuid))
}

func markApplied(marks []string, uuid string) []string {
	if uuid == "" {
		return marks
	}
	marks = append(marks, eventMark(uuid))
	if len(marks) > keepApplied {
		marks = slices.Clone(marks[len(marks)-keepApplied:])
	}
	return marks
}

// changes are the person updates one event asks for.
type changes struct {
	setOnce, set []map[string]any
	unset        []string
	identify     bool
}

func (c *changes) any() bool {
	return len(c.setOnce) > 0 || len(c.set) > 0 || len(c.unset) > 0 || c.identify
}

// creates reports whether the changes store a person that is not stored
// yet: an empty person takes any $set, $set_once or identification (an
// $unset alone changes nothing there).
func (c *changes) creates() bool {
	return len(c.setOnce) > 0 || len(c.set) > 0 || c.identify
}

// apply updates props as PostHog does: $set_once where a property is not
// set, then $set, then $unset. It reports whether anything changed.
func (c *changes) apply(p *Person) bool {
	if p.Properties == nil {
		p.Properties = map[string]any{}
	}
	changed := false
	for _, s := range c.setOnce {
		for k, v := range s {
			if _, ok := p.Properties[k]; !ok {
				p.Properties[k], changed = v, true
			}
		}
	}
	for _, s := range c.set {
		for k, v := range s {
			if old, ok := p.Properties[k]; !ok || !reflect.DeepEqual(old, v) {
				p.Properties[k], changed = v, true
			}
		}
	}
	for _, k := range c.unset {
		if _, ok := p.Properties[k]; ok {
			delete(p.Properties, k)
			changed = true
		}
	}
	if c.identify && !p.IsIdentified {
		p.IsIdentified, changed = true, true
	}
	return changed
}

// merge is the merge an event asks for: other's person into the event's
// distinct id's person.
type merge struct {
	other     string
	dangerous bool
}

// groupUpdate is a $groupidentify.
type groupUpdate struct {
	typ, key string
	set      map[string]any
}

// plan is what one event asks of the store.
type plan struct {
	changes
	merge *merge
	group *groupUpdate
	// personless is set by $process_person_profile: false; such events
	// read profiles but write none.
	personless bool
}

// planOf reads what ev asks for. Malformed parts are left out with a log
// line, as PostHog ignores them; the event itself is still delivered.
func planOf(ev *Event, log *slog.Logger) plan {
	var pl plan
	props := ev.Properties
	warn := func(msg string, args ...any) {
		log.Warn(msg, append([]any{"event", ev.Name, "event_uuid", ev.UUID, "distinct_id", ev.DistinctID}, args...)...)
	}
	object := func(key string) map[string]any {
		v, ok := props[key]
		if !ok || v == nil {
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			warn("ignoring a malformed "+key+": not an object", "type", typeName(v))
			return nil
		}
		return m
	}
	if m := object("$set_once"); len(m) > 0 {
		pl.setOnce = append(pl.setOnce, m)
	}
	if len(ev.SetOnce) > 0 {
		pl.setOnce = append(pl.setOnce, ev.SetOnce)
	}
	if m := object("$set"); len(m) > 0 {
		pl.set = append(pl.set, m)
	}
	if len(ev.Set) > 0 {
		pl.set = append(pl.set, ev.Set)
	}
	switch u := props["$unset"].(type) {
	case nil:
	case []any:
		for _, k := range u {
			if s, ok := k.(string); ok {
				pl.unset = append(pl.unset, s)
			} else {
				warn("ignoring a malformed $unset entry: not a string", "type", typeName(k))
			}
		}
	case map[string]any:
		// Some SDKs send {"prop": null}: unset its keys.
		for k := range u {
			pl.unset = append(pl.unset, k)
		}
	default:
		warn("ignoring a malformed $unset: not a list of property names", "type", typeName(u))
	}
	if v, ok := props["$process_person_profile"].(bool); ok && !v {
		pl.personless = true
	}

	switch ev.Name {
	case "$identify":
		pl.identify = true
		if a, ok := props["$anon_distinct_id"]; ok && a != nil {
			s, ok := a.(string)
			if !ok {
				warn("ignoring a malformed $anon_distinct_id: not a string", "type", typeName(a))
				break
			}
			pl.merge = mergeOf(ev, s, false, "$anon_distinct_id", warn)
		}
	case "$create_alias", "$merge_dangerously":
		a, ok := props["alias"].(string)
		if !ok {
			warn("ignoring a "+ev.Name+" without an alias (a string property)", "type", typeName(props["alias"]))
			break
		}
		pl.merge = mergeOf(ev, a, ev.Name == "$merge_dangerously", "alias", warn)
	case "$groupidentify":
		pl.group = groupOf(props, warn)
	}
	return pl
}

func mergeOf(ev *Event, other string, dangerous bool, field string, warn func(string, ...any)) *merge {
	switch {
	case other == ev.DistinctID:
		if ev.Name != "$identify" {
			warn("ignoring an alias of a distinct id to itself")
		}
		return nil
	case illegalID(other) || illegalID(ev.DistinctID):
		warn("refusing to merge a distinct id PostHog treats as illegal", field, other)
		return nil
	}
	return &merge{other: other, dangerous: dangerous}
}

func groupOf(props map[string]any, warn func(string, ...any)) *groupUpdate {
	typ, ok := props["$group_type"].(string)
	if !ok || typ == "" {
		warn("ignoring a $groupidentify without a $group_type")
		return nil
	}
	var key string
	switch k := props["$group_key"].(type) {
	case string:
		key = k
	case float64:
		key = strconv.FormatFloat(k, 'f', -1, 64)
	}
	if key == "" {
		warn("ignoring a $groupidentify without a $group_key", "group_type", typ)
		return nil
	}
	g := &groupUpdate{typ: typ, key: key}
	switch s := props["$group_set"].(type) {
	case nil:
	case map[string]any:
		g.set = s
	default:
		warn("ignoring a malformed $group_set: not an object", "type", typeName(s), "group_type", typ)
	}
	return g
}

// illegalID reports distinct ids that PostHog refuses to merge on, as SDKs
// and integrations send them by mistake for every user.
func illegalID(id string) bool {
	switch strings.ToLower(strings.TrimSpace(id)) {
	case "", "anonymous", "guest", "distinctid", "distinct_id", "id", "not_authenticated", "email",
		"undefined", "true", "false", "null", "0", "nan", "none", "[object object]":
		return true
	}
	return false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return reflect.TypeOf(v).String()
}
