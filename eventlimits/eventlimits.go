// Package eventlimits defines, once, what an event may be for the whole
// pipeline: capture refuses what breaks these limits, so that nothing it
// accepts is later dropped by the event log (message size) or by the
// executor (nesting depth).
package eventlimits

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// MaxDepth is how deeply objects and arrays may nest inside an event's
// properties, $set, $set_once and person properties: the object itself is
// level 0, a value nested MaxDepth levels below it is the deepest allowed.
// The executor decodes events with this bound, so it is not configurable.
const MaxDepth = 100

// Defaults of Limits' zero fields.
const (
	// DefaultMaxEventBytes leaves room, under NATS's default 1 MiB
	// max_payload, for the message's headers and framing.
	DefaultMaxEventBytes  = 1_000_000
	DefaultMaxBatchEvents = 10_000
	DefaultMaxProperties  = 10_000
	DefaultMaxStringBytes = 256 << 10
)

// Limits are the configurable limits. The zero value means the defaults.
type Limits struct {
	// MaxEventBytes caps an event's stored size: its protobuf encoding,
	// which is what a JetStream message holds and close to its JSON size.
	MaxEventBytes int
	// MaxBatchEvents caps the events of one request.
	MaxBatchEvents int
	// MaxProperties caps the keys of an event's properties, $set,
	// $set_once and person properties, counted at every level of nesting.
	MaxProperties int
	// MaxStringBytes caps every string of an event: its name, distinct id,
	// uuid, property keys and string values (UTF-8 bytes).
	MaxStringBytes int
}

// WithDefaults fills in zero fields.
func (l Limits) WithDefaults() Limits {
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = DefaultMaxEventBytes
	}
	if l.MaxBatchEvents <= 0 {
		l.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if l.MaxProperties <= 0 {
		l.MaxProperties = DefaultMaxProperties
	}
	if l.MaxStringBytes <= 0 {
		l.MaxStringBytes = DefaultMaxStringBytes
	}
	return l
}

// Rule names a limit in errors, so clients can tell them apart.
type Rule string

// The rules an event or a request can break.
const (
	RuleEventBytes  Rule = "max_event_bytes"
	RuleBatchEvents Rule = "max_batch_events"
	RuleDepth       Rule = "max_depth"
	RuleProperties  Rule = "max_properties"
	RuleStringBytes Rule = "max_string_bytes"
)

// SizeRule reports whether breaking r means "too large" (HTTP 413, gRPC
// RESOURCE_EXHAUSTED) rather than "malformed" (400, INVALID_ARGUMENT).
func (r Rule) SizeRule() bool {
	return r == RuleEventBytes || r == RuleBatchEvents || r == RuleStringBytes
}

// Violation is an event breaking a rule.
type Violation struct {
	Rule Rule
	// Field is the path of the offending value within the event, e.g.
	// "properties.$set.address"; empty for the event as a whole.
	Field  string
	Reason string
}

func (v *Violation) Error() string {
	if v.Field == "" {
		return string(v.Rule) + ": " + v.Reason
	}
	return string(v.Rule) + ": " + v.Field + ": " + v.Reason
}

// Check returns the first limit ev breaks, or nil. It also returns ev's
// encoded size (what proto.Size returns), which callers use to budget
// and group events.
func (l Limits) Check(ev *hogwirev1.Event) (int, *Violation) {
	c := checker{l: l.WithDefaults()}
	size, v := c.check(ev)
	if v != nil {
		// Maps are walked in Go's random order, so the first violation
		// met depends on the run. The walk again in key order names the
		// same one every time, for an event that breaks several limits.
		c = checker{l: c.l, sorted: true}
		_, v = c.check(ev)
		return 0, v
	}
	if size > c.l.MaxEventBytes {
		return size, &Violation{Rule: RuleEventBytes, Reason: fmt.Sprintf("the event is %d bytes stored; the limit is %d", size, c.l.MaxEventBytes)}
	}
	return size, nil
}

// checker walks an event, checking it and adding up its protobuf size on
// the way: proto.Size would walk it again, by reflection over every map.
// The path to the value in hand is kept as a stack and only turned into a
// string for a violation: most events break nothing, and building paths
// would cost an allocation per value.
type checker struct {
	l    Limits
	keys int
	path []step
	// sorted walks maps in key order: slower, and the same every time.
	sorted bool
}

// inOrder returns m's keys in the order c walks them: nil (Go's order)
// unless c is sorted.
func inOrder[V any](c *checker, m map[string]V) []string {
	if !c.sorted {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

// step is a key of an object (index -1) or an index of an array.
type step struct {
	key   string
	index int
}

func key(k string) step { return step{key: k, index: -1} }

// Sizes of protobuf fields. Every field of Event, Person, Struct, Value,
// ListValue and Timestamp has a number under 16, so a one-byte tag.
func sizeBytes(n int) int { return 1 + protowire.SizeBytes(n) }

func sizeString(s string) int {
	if s == "" {
		return 0 // proto3 leaves empty strings out
	}
	return sizeBytes(len(s))
}

// unknown is the size of the fields a message was decoded with that this
// build does not know (a newer client's); protobuf keeps and re-encodes
// them, so they count like any other.
func unknown(m protoreflect.ProtoMessage) int { return len(m.ProtoReflect().GetUnknown()) }

func sizeTimestamp(t *timestamppb.Timestamp) int {
	if t == nil {
		return 0
	}
	n := unknown(t)
	if t.Seconds != 0 {
		n += 1 + protowire.SizeVarint(uint64(t.Seconds))
	}
	if t.Nanos != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(t.Nanos)))
	}
	return sizeBytes(n)
}

func (c *checker) check(ev *hogwirev1.Event) (int, *Violation) {
	size := sizeTimestamp(ev.GetTimestamp()) + unknown(ev)
	for _, s := range [...]struct{ field, val string }{
		{"uuid", ev.GetUuid()}, {"event", ev.GetEvent()}, {"distinct_id", ev.GetDistinctId()},
		{"elements_chain", ev.GetElementsChain()}, {"project", ev.GetProject()},
	} {
		c.path = append(c.path[:0], key(s.field))
		if v := c.str(s.val); v != nil {
			return 0, v
		}
		size += sizeString(s.val)
	}
	groups := ev.GetGroups()
	if keys := inOrder(c, groups); keys != nil {
		// The same checks as below, in key order.
		for _, k := range keys {
			c.path = append(c.path[:0], key("groups"))
			if v := c.str(k); v != nil {
				return 0, v
			}
			c.path = append(c.path, key(k))
			if v := c.str(groups[k]); v != nil {
				return 0, v
			}
		}
	}
	for k, g := range groups {
		c.path = append(c.path[:0], key("groups"))
		if v := c.str(k); v != nil {
			return 0, v
		}
		c.path = append(c.path, key(k))
		if v := c.str(g); v != nil {
			return 0, v
		}
		// A map entry writes its key and value even when empty.
		size += sizeBytes(sizeBytes(len(k)) + sizeBytes(len(g)))
	}
	for _, s := range [...]struct {
		field string
		val   *structpb.Struct
	}{
		{"properties", ev.GetProperties()}, {"set", ev.GetSet()}, {"set_once", ev.GetSetOnce()},
	} {
		c.path = append(c.path[:0], key(s.field))
		n, v := c.object(s.val, 0)
		if v != nil {
			return 0, v
		}
		if s.val != nil {
			size += sizeBytes(n)
		}
	}
	if p := ev.GetPerson(); p != nil {
		c.path = append(c.path[:0], key("person.id"))
		if v := c.str(p.GetId()); v != nil {
			return 0, v
		}
		c.path = append(c.path[:0], key("person.properties"))
		n, v := c.object(p.GetProperties(), 0)
		if v != nil {
			return 0, v
		}
		person := sizeString(p.GetId()) + unknown(p)
		if p.GetProperties() != nil {
			person += sizeBytes(n)
		}
		size += sizeBytes(person)
	}
	return size, nil
}

func (c *checker) str(s string) *Violation {
	if !c.l.StringFits(len(s)) {
		return c.violation(RuleStringBytes, fmt.Sprintf("a string of %d bytes exceeds the limit of %d", len(s), c.l.MaxStringBytes))
	}
	return nil
}

// object checks a Struct at depth (0 for the event's own objects) and
// returns its encoded size.
func (c *checker) object(s *structpb.Struct, depth int) (int, *Violation) {
	if !DepthFits(depth) {
		return 0, c.tooDeep()
	}
	c.keys += len(s.GetFields())
	if !c.l.KeysFit(c.keys) {
		return 0, c.violation(RuleProperties, fmt.Sprintf("more than %d properties (counting nested keys)", c.l.MaxProperties))
	}
	size := 0
	if s != nil {
		size = unknown(s)
	}
	fields := s.GetFields()
	if keys := inOrder(c, fields); keys != nil {
		// Only the violation counts in this walk, not the size.
		for _, k := range keys {
			if vi := c.str(k); vi != nil {
				return 0, vi
			}
			c.path = append(c.path, key(k))
			if _, vi := c.value(fields[k], depth+1); vi != nil {
				return 0, vi
			}
			c.path = c.path[:len(c.path)-1]
		}
		return 0, nil
	}
	for k, v := range fields {
		if vi := c.str(k); vi != nil {
			return 0, vi
		}
		c.path = append(c.path, key(k))
		n, vi := c.value(v, depth+1)
		if vi != nil {
			return 0, vi
		}
		c.path = c.path[:len(c.path)-1]
		size += sizeBytes(sizeBytes(len(k)) + sizeBytes(n))
	}
	return size, nil
}

// value checks a Value and returns its encoded size.
func (c *checker) value(v *structpb.Value, depth int) (int, *Violation) {
	if v == nil {
		return 0, nil
	}
	n, vi := c.kind(v, depth)
	return n + unknown(v), vi
}

func (c *checker) kind(v *structpb.Value, depth int) (int, *Violation) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		return 2, nil
	case *structpb.Value_NumberValue:
		return 9, nil
	case *structpb.Value_BoolValue:
		return 2, nil
	case *structpb.Value_StringValue:
		return sizeBytes(len(k.StringValue)), c.str(k.StringValue)
	case *structpb.Value_StructValue:
		n, vi := c.object(k.StructValue, depth)
		return sizeBytes(n), vi
	case *structpb.Value_ListValue:
		if !DepthFits(depth) {
			return 0, c.tooDeep()
		}
		size := 0
		if k.ListValue != nil {
			size = unknown(k.ListValue)
		}
		for i, e := range k.ListValue.GetValues() {
			c.path = append(c.path, step{index: i})
			n, vi := c.value(e, depth+1)
			if vi != nil {
				return 0, vi
			}
			c.path = c.path[:len(c.path)-1]
			size += sizeBytes(n)
		}
		return sizeBytes(size), nil
	}
	return 0, nil
}

// StringFits reports whether a string of n bytes keeps within l: the rule
// Check applies to every string of an event, keys included. (The rules
// are apart from Check's walk for an encoder that tallies an event as it
// writes it, and leaves naming a violation to Check.)
func (l Limits) StringFits(n int) bool { return n <= l.MaxStringBytes }

// KeysFit reports whether n keys, counted over every level of an event's
// objects, keep within l.
func (l Limits) KeysFit(n int) bool { return n <= l.MaxProperties }

// DepthFits reports whether an object or array may sit at depth, the
// event's own objects being at 0.
func DepthFits(depth int) bool { return depth <= MaxDepth }

func (c *checker) tooDeep() *Violation {
	return c.violation(RuleDepth, fmt.Sprintf("objects and arrays nest deeper than %d levels", MaxDepth))
}

func (c *checker) violation(rule Rule, reason string) *Violation {
	return &Violation{Rule: rule, Field: c.field(), Reason: reason}
}

// field renders the path, cut short so that a path through a hostile
// event stays readable in an error.
func (c *checker) field() string {
	const maxPath = 200
	var b strings.Builder
	for i, s := range c.path {
		if b.Len() >= maxPath {
			b.WriteString("…")
			break
		}
		switch {
		case s.index >= 0:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case i > 0:
			b.WriteString(".")
			fallthrough
		default:
			k := s.key
			if len(k) > maxPath {
				k = strings.ToValidUTF8(k[:maxPath], "") + "…"
			}
			b.WriteString(k)
		}
	}
	return b.String()
}

// TooLargeError reports that a request cannot be stored however it is
// grouped: an event larger than the event log's messages (Index is its
// position), or a request needing more messages than one atomic write
// takes (Index is -1). Retrying cannot help.
type TooLargeError struct {
	Index int
	// Size and Max are in bytes for an event, in messages for a request.
	Size, Max int
}

func (e *TooLargeError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("the request needs %d messages; one write takes at most %d", e.Size, e.Max)
	}
	return fmt.Sprintf("event %d is %d bytes; the event log's messages hold at most %d", e.Index, e.Size, e.Max)
}
