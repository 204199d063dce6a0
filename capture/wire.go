package capture

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
)

// encoder appends events' protobuf encodings, as proto.Marshal encodes
// them (field order; maps in whatever order they iterate, as
// proto.Marshal's are), without proto's reflection: with a hundred
// events to a request, proto.Size and proto.Marshal walking every
// structpb map by reflection cost more than building the event did.
//
// On the way it tells whether an event breaks any of the limits
// eventlimits.Limits.Check enforces besides the size, which is the
// encoding's length: checking them in a walk of their own cost as much
// as the encoding. It only tells whether; Check, run again on an event
// that breaks one, says which, as it would have anyway, so that an
// answer names the same violation either way. FuzzEncoderLimits (in the
// tests) holds the two to the same verdict.
//
// It is for the events convertEvent builds, which carry no unknown
// fields: an Event decoded from a client (gRPC) may, and proto.Marshal
// keeps them (and eventlimits counts them).
//
// Field numbers are those of hogwire.v1.Event, Person, Timestamp and
// google.protobuf.Struct, Value and ListValue; wireEncodingMatches (in the
// tests) holds them to proto.Marshal's output.
type encoder struct {
	// l are the limits, with their defaults; the zero encoder's verdict
	// means nothing.
	l eventlimits.Limits
	// keys counts the keys of the event's objects, at every level;
	// broken is set when the event breaks a limit on strings or depth.
	keys   int
	broken bool
}

func newEncoder(l eventlimits.Limits) encoder {
	return encoder{l: l.WithDefaults()}
}

// appendEvent appends ev's encoding to b and reports whether ev keeps
// within the limits bar its size.
func (e *encoder) appendEvent(b []byte, ev *hogwirev1.Event) ([]byte, bool) {
	e.keys, e.broken = 0, false
	b = e.appendString(b, 1, ev.Uuid)
	b = e.appendString(b, 2, ev.Event)
	b = e.appendString(b, 3, ev.DistinctId)
	if ev.Properties != nil {
		b = e.appendStruct(b, 4, ev.Properties)
	}
	if t := ev.Timestamp; t != nil {
		var at int
		b, at = openMessage(b, 5)
		if t.Seconds != 0 {
			b = protowire.AppendTag(b, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(t.Seconds))
		}
		if t.Nanos != 0 {
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(int64(t.Nanos)))
		}
		b = closeMessage(b, at)
	}
	b = e.appendString(b, 6, ev.ElementsChain)
	if p := ev.Person; p != nil {
		var at int
		b, at = openMessage(b, 7)
		b = e.appendString(b, 1, p.Id)
		if p.Properties != nil {
			b = e.appendStruct(b, 2, p.Properties)
		}
		b = closeMessage(b, at)
	}
	for k, v := range ev.Groups {
		e.check(k)
		e.check(v)
		var at int
		b, at = openMessage(b, 8)
		// A map entry writes its key and value even when empty.
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, v)
		b = closeMessage(b, at)
	}
	if ev.Set != nil {
		b = e.appendStruct(b, 9, ev.Set)
	}
	if ev.SetOnce != nil {
		b = e.appendStruct(b, 10, ev.SetOnce)
	}
	b = e.appendString(b, 11, ev.Project)
	return b, !e.broken && e.l.KeysFit(e.keys)
}

// check notes a string longer than the limit.
func (e *encoder) check(s string) {
	if !e.l.StringFits(len(s)) {
		e.broken = true
	}
}

// appendString appends a proto3 string field, which is left out when
// empty.
func (e *encoder) appendString(b []byte, num protowire.Number, s string) []byte {
	e.check(s)
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// openMessage starts a length-delimited field whose length is not known
// yet: one byte is left for it, which closeMessage fills in, making room
// when the length needs more. Most values are shorter than 128 bytes, and
// the few larger ones move once per level, which costs less than walking
// each message to size it first.
func openMessage(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return append(b, 0), len(b)
}

func closeMessage(b []byte, at int) []byte {
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	extra := protowire.SizeVarint(uint64(n)) - 1
	b = append(b, make([]byte, extra)...)
	copy(b[at+1+extra:], b[at+1:len(b)-extra])
	protowire.AppendVarint(b[:at], uint64(n))
	return b
}

// appendStruct appends s as field num: one of the event's own objects,
// at depth 0 as eventlimits counts it.
func (e *encoder) appendStruct(b []byte, num protowire.Number, s *structpb.Struct) []byte {
	b, at := openMessage(b, num)
	b = e.appendFields(b, s, 0)
	return closeMessage(b, at)
}

// appendFields appends a Struct's content, s being at depth: each field a
// map entry of google.protobuf.Struct's field 1.
func (e *encoder) appendFields(b []byte, s *structpb.Struct, depth int) []byte {
	if !eventlimits.DepthFits(depth) {
		e.broken = true
	}
	fields := s.GetFields()
	e.keys += len(fields)
	for k, v := range fields {
		e.check(k)
		var at, vat int
		b, at = openMessage(b, 1)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b, vat = openMessage(b, 2)
		b = e.appendValue(b, v, depth+1)
		b = closeMessage(b, vat)
		b = closeMessage(b, at)
	}
	return b
}

// appendValue appends the content of a Value at depth. A oneof member is
// written even when it holds its zero value.
func (e *encoder) appendValue(b []byte, v *structpb.Value, depth int) []byte {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(k.NullValue))
	case *structpb.Value_NumberValue:
		b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(k.NumberValue))
	case *structpb.Value_StringValue:
		e.check(k.StringValue)
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, k.StringValue)
	case *structpb.Value_BoolValue:
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(k.BoolValue))
	case *structpb.Value_StructValue:
		var at int
		b, at = openMessage(b, 5)
		b = e.appendFields(b, k.StructValue, depth)
		b = closeMessage(b, at)
	case *structpb.Value_ListValue:
		if !eventlimits.DepthFits(depth) {
			e.broken = true
		}
		var at int
		b, at = openMessage(b, 6)
		for _, el := range k.ListValue.GetValues() {
			var eat int
			b, eat = openMessage(b, 1)
			b = e.appendValue(b, el, depth+1)
			b = closeMessage(b, eat)
		}
		b = closeMessage(b, at)
	}
	return b
}
