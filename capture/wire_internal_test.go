package capture

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// TestAppendEventFields covers what the HTTP API's events never hold
// (a person, an empty group key, a timestamp before 1970) and lengths
// whose varints take one to three bytes at several levels at once.
func TestAppendEventFields(t *testing.T) {
	long := func(n int) *structpb.Value { return structpb.NewStringValue(strings.Repeat("x", n)) }
	nested := &structpb.Struct{Fields: map[string]*structpb.Value{"l": long(127), "m": long(128), "n": long(16384), "e": {}}}
	for range 3 {
		nested = &structpb.Struct{Fields: map[string]*structpb.Value{
			"s": structpb.NewStructValue(nested),
			"a": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{long(200), structpb.NewNullValue(), structpb.NewBoolValue(false)}}),
		}}
	}
	for _, ev := range []*hogwirev1.Event{
		{},
		{Uuid: "u", Event: "e", DistinctId: "d", Properties: &structpb.Struct{}, Timestamp: &timestamppb.Timestamp{}},
		{
			Event: "e", DistinctId: "d", Properties: nested, Timestamp: &timestamppb.Timestamp{Seconds: -62135596800, Nanos: 999999999},
			ElementsChain: "c", Person: &hogwirev1.Person{Id: "p", Properties: nested}, Groups: map[string]string{"": "", "g": "k"},
			Set: nested, SetOnce: &structpb.Struct{}, Project: "proj",
		},
		{Person: &hogwirev1.Person{}, Set: &structpb.Struct{Fields: map[string]*structpb.Value{"": long(0)}}},
	} {
		b := appendEvent(nil, ev)
		if n := proto.Size(ev); n != len(b) {
			t.Errorf("%d bytes encoded; proto.Marshal makes %d", len(b), n)
		}
		got := &hogwirev1.Event{}
		if err := proto.Unmarshal(b, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(ev, got) {
			t.Errorf("decodes to\n%v\nnot\n%v", prototext.Format(got), prototext.Format(ev))
		}
	}
}

// cloneStruct copies as proto.Clone does, sharing nothing.
func TestCloneStruct(t *testing.T) {
	v, _, err := parseJSON([]byte(`{"a":[1,"s",true,null,{"b":[[]]},[]],"o":{},"n":-0.5,"e":""}`), maxDepth, nil)
	if err != nil {
		t.Fatal(err)
	}
	orig := v.GetStructValue()
	orig.Fields["nil"] = &structpb.Value{}
	c := cloneStruct(orig)
	if !proto.Equal(c, proto.Clone(orig)) {
		t.Fatalf("clone\n%v\nof\n%v", prototext.Format(c), prototext.Format(orig))
	}
	c.Fields["a"].GetListValue().Values[4].GetStructValue().Fields["b"] = structpb.NewStringValue("changed")
	c.Fields["a"].GetListValue().Values[1].Kind.(*structpb.Value_StringValue).StringValue = "changed"
	if got := orig.Fields["a"].GetListValue().Values; got[1].GetStringValue() != "s" || got[4].GetStructValue().Fields["b"].GetListValue() == nil {
		t.Fatalf("changing the clone changed the original: %v", prototext.Format(orig))
	}
}

func TestCanonicalUUID(t *testing.T) {
	for u, want := range map[string]bool{
		"0190e2f8-7a3b-7c3d-9e4f-0123456789ab":          true,
		"0190E2F8-7A3B-7C3D-9E4F-0123456789AB":          false,
		"{0190e2f8-7a3b-7c3d-9e4f-0123456789ab}":        false,
		"urn:uuid:0190e2f8-7a3b-7c3d-9e4f-0123456789ab": false,
		"0190e2f87a3b7c3d9e4f0123456789ab":              false,
	} {
		if got := canonicalUUID(u); got != want {
			t.Errorf("canonicalUUID(%q) = %v", u, got)
		}
	}
}
