package capture

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// appendEvent appends ev's protobuf encoding to b, as proto.Marshal
// encodes it (field order; maps in whatever order they iterate, as
// proto.Marshal's are), without proto's reflection: with a hundred
// events to a request, proto.Size and proto.Marshal walking every
// structpb map by reflection cost more than building the event did.
//
// It is for the events convertEvent builds, which carry no unknown
// fields: an Event decoded from a client (gRPC) may, and proto.Marshal
// keeps them.
//
// Field numbers are those of hogwire.v1.Event, Person, Timestamp and
// google.protobuf.Struct, Value and ListValue; wireEncodingMatches (in the
// tests) holds them to proto.Marshal's output.
func appendEvent(b []byte, ev *hogwirev1.Event) []byte {
	b = appendString(b, 1, ev.Uuid)
	b = appendString(b, 2, ev.Event)
	b = appendString(b, 3, ev.DistinctId)
	if ev.Properties != nil {
		b = appendStruct(b, 4, ev.Properties)
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
	b = appendString(b, 6, ev.ElementsChain)
	if p := ev.Person; p != nil {
		var at int
		b, at = openMessage(b, 7)
		b = appendString(b, 1, p.Id)
		if p.Properties != nil {
			b = appendStruct(b, 2, p.Properties)
		}
		b = closeMessage(b, at)
	}
	for k, v := range ev.Groups {
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
		b = appendStruct(b, 9, ev.Set)
	}
	if ev.SetOnce != nil {
		b = appendStruct(b, 10, ev.SetOnce)
	}
	return appendString(b, 11, ev.Project)
}

// appendString appends a proto3 string field, which is left out when
// empty.
func appendString(b []byte, num protowire.Number, s string) []byte {
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

// appendStruct appends s as field num.
func appendStruct(b []byte, num protowire.Number, s *structpb.Struct) []byte {
	b, at := openMessage(b, num)
	b = appendFields(b, s)
	return closeMessage(b, at)
}

// appendFields appends a Struct's content: each field a map entry of
// google.protobuf.Struct's field 1.
func appendFields(b []byte, s *structpb.Struct) []byte {
	for k, v := range s.GetFields() {
		var at, vat int
		b, at = openMessage(b, 1)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b, vat = openMessage(b, 2)
		b = appendValue(b, v)
		b = closeMessage(b, vat)
		b = closeMessage(b, at)
	}
	return b
}

// appendValue appends a Value's content. A oneof member is written even
// when it holds its zero value.
func appendValue(b []byte, v *structpb.Value) []byte {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(k.NullValue))
	case *structpb.Value_NumberValue:
		b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(k.NumberValue))
	case *structpb.Value_StringValue:
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, k.StringValue)
	case *structpb.Value_BoolValue:
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(k.BoolValue))
	case *structpb.Value_StructValue:
		var at int
		b, at = openMessage(b, 5)
		b = appendFields(b, k.StructValue)
		b = closeMessage(b, at)
	case *structpb.Value_ListValue:
		var at int
		b, at = openMessage(b, 6)
		for _, e := range k.ListValue.GetValues() {
			var eat int
			b, eat = openMessage(b, 1)
			b = appendValue(b, e)
			b = closeMessage(b, eat)
		}
		b = closeMessage(b, at)
	}
	return b
}
