package capture

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
)

// appendEvent appends ev's protobuf encoding to b: encoder.appendEvent
// without the limits' verdict.
func appendEvent(b []byte, ev *hogwirev1.Event) []byte {
	var e encoder
	b, _ = e.appendEvent(b, ev)
	return b
}

// randomEvent builds an event of random shape from r: strings of every
// length around the limits randomLimits picks, objects of many keys, and
// now and then a chain of containers around eventlimits.MaxDepth.
func randomEvent(r *rand.Rand) *hogwirev1.Event {
	str := func() string {
		if r.IntN(4) == 0 {
			return ""
		}
		n := r.IntN(8)
		if r.IntN(40) == 0 {
			n = r.IntN(61) // around the limits
		}
		return strings.ToValidUTF8(strings.Repeat("aé", 20)[:n], "")
	}
	var value func(depth int) *structpb.Value
	object := func(depth int) *structpb.Struct {
		s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
		for range r.IntN(6) {
			s.Fields[str()] = value(depth + 1)
		}
		return s
	}
	value = func(depth int) *structpb.Value {
		switch n := r.IntN(12); {
		case n == 0:
			return structpb.NewNullValue()
		case n == 1:
			return structpb.NewBoolValue(r.IntN(2) == 0)
		case n < 4:
			return structpb.NewNumberValue(r.NormFloat64() * 1e6)
		case n < 8 || depth > 4:
			return structpb.NewStringValue(str())
		case n < 10:
			return structpb.NewStructValue(object(depth))
		default:
			l := &structpb.ListValue{}
			for range r.IntN(4) {
				l.Values = append(l.Values, value(depth+1))
			}
			return structpb.NewListValue(l)
		}
	}
	// chain nests containers levels deep, ending in an empty one (which
	// counts as deep as any), or in the cut parser's stand-in.
	chain := func(levels int) *structpb.Value {
		v := structpb.NewListValue(&structpb.ListValue{})
		switch r.IntN(3) {
		case 0:
			v = structpb.NewStructValue(&structpb.Struct{})
		case 1:
			v = cutValue
		}
		for range levels {
			if r.IntN(2) == 0 {
				v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
			} else {
				v = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"d": v}})
			}
		}
		return v
	}
	maybe := func() *structpb.Struct {
		if r.IntN(3) == 0 {
			return nil
		}
		s := object(0)
		if r.IntN(8) == 0 {
			s.Fields["deep"] = chain(eventlimits.MaxDepth - 3 + r.IntN(6))
		}
		return s
	}
	ev := &hogwirev1.Event{
		Uuid: str(), Event: str(), DistinctId: str(), ElementsChain: str(), Project: str(),
		Properties: maybe(), Set: maybe(), SetOnce: maybe(),
		Timestamp: &timestamppb.Timestamp{Seconds: r.Int64N(4e9) - 2e9, Nanos: r.Int32N(1e9)},
	}
	if r.IntN(2) == 0 {
		ev.Groups = map[string]string{}
		for range r.IntN(4) {
			ev.Groups[str()] = str()
		}
	}
	if r.IntN(4) == 0 {
		ev.Person = &hogwirev1.Person{Id: str(), Properties: maybe()}
	}
	return ev
}

func randomLimits(r *rand.Rand) eventlimits.Limits {
	if r.IntN(4) == 0 {
		return eventlimits.Limits{}
	}
	return eventlimits.Limits{
		MaxEventBytes:  20 + r.IntN(2000),
		MaxProperties:  1 + r.IntN(60),
		MaxStringBytes: 8 + r.IntN(50),
	}
}

// FuzzEncoderLimits holds the encoder's verdict on the limits to
// eventlimits.Limits.Check's, which it stands in for, and its encoding to
// proto.Marshal's, on random events and limits.
func FuzzEncoderLimits(f *testing.F) {
	for seed := range uint64(200) {
		f.Add(seed, seed*7919)
	}
	f.Fuzz(func(t *testing.T, s1, s2 uint64) {
		r := rand.New(rand.NewPCG(s1, s2))
		ev, l := randomEvent(r), randomLimits(r)
		e := newEncoder(l)
		b, ok := e.appendEvent(binary.LittleEndian.AppendUint64(nil, s1), ev)
		b = b[8:]
		size, v := l.Check(ev)
		if got := ok && len(b) <= l.WithDefaults().MaxEventBytes; got != (v == nil) {
			t.Fatalf("limits %+v: the encoder says %v (%d bytes); Check says %v\n%v", l, got, len(b), v, prototext.Format(ev))
		}
		if n := proto.Size(ev); n != len(b) || (v == nil && size != n) {
			t.Fatalf("%d bytes encoded, Check measured %d; proto.Marshal makes %d", len(b), size, n)
		}
		got := &hogwirev1.Event{}
		if err := proto.Unmarshal(b, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(ev, got) {
			t.Fatalf("decodes to\n%v\nnot\n%v", prototext.Format(got), prototext.Format(ev))
		}
	})
}
