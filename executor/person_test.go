package executor

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// A stored person replaces the one made from the event: its id and
// properties, with the event's own $set_once and $set on top, and the
// groups' stored properties.
func TestStoredPerson(t *testing.T) {
	props, _ := structpb.NewStruct(map[string]any{
		"$set": map[string]any{"plan": "pro"}, "$set_once": map[string]any{"email": "x@y.z", "first": "now"},
		"$groups": map[string]any{"company": "acme"}, "$current_url": "https://shop.example", "$anon_distinct_id": "anon",
	})
	data, err := proto.Marshal(&hogwirev1.Event{Uuid: "u1", Event: "$identify", DistinctId: "ada", Properties: props,
		Groups: map[string]string{"team": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ParseEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	got, set, setOnce, groups, err := ev.PersonFields()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got["$current_url"] != nil || got["$anon_distinct_id"] != "anon" || set != nil || setOnce != nil ||
		groups["company"] != "acme" || groups["team"] != "7" || ev.UUID() != "u1" || ev.DistinctID() != "ada" {
		t.Fatalf("PersonFields: %v %v %v %v", got, set, setOnce, groups)
	}

	ev.SetPerson(&Person{ID: "3f0c2c3a-0000-4000-8000-000000000001", Properties: map[string]any{"email": "ada@example.com", "plan": "free"},
		Groups: map[[2]string]map[string]any{{"company", "acme"}: {"name": "Acme"}}})
	g, err := NewEventFromWire(ev, NewProject(&hogwirev1.Project{Name: "projects/shop"}, Source{URL: "https://hw.example"}))
	if err != nil {
		t.Fatal(err)
	}
	if g.PersonID() != "3f0c2c3a-0000-4000-8000-000000000001" {
		t.Fatalf("person id %q", g.PersonID())
	}
	want := map[string]string{
		"person.id": "3f0c2c3a-0000-4000-8000-000000000001", "person.properties.plan": "pro", "person.properties.email": "ada@example.com",
		"person.properties.first": "now", "person.name": "ada@example.com", "person.url": "https://hw.example/projects/shop/person/ada",
		"groups.company.properties.name": "Acme",
	}
	for path, w := range want {
		v := g.Value()
		for _, k := range strings.Split(path, ".") {
			v, _ = v.AsDict().GetString(k)
		}
		if v.Kind() != vm.KindString || v.AsString() != w {
			t.Errorf("%s = %v, want %q", path, v, w)
		}
	}
}

// The person store's values are decoded from the wire directly; they are
// what structpb's AsMap gives for the same Struct, whatever it holds.
func TestWireMapIsAsMap(t *testing.T) {
	nested, _ := structpb.NewStruct(map[string]any{"a": []any{1.5, "x", nil, true, map[string]any{"b": []any{}}}, "": "empty key"})
	for _, s := range []*structpb.Struct{
		{},
		nested,
		{Fields: map[string]*structpb.Value{
			"nan": structpb.NewNumberValue(math.NaN()), "inf": structpb.NewNumberValue(math.Inf(1)), "-inf": structpb.NewNumberValue(math.Inf(-1)),
			"unset": {}, "null": structpb.NewNullValue(), "zero": structpb.NewNumberValue(0), "false": structpb.NewBoolValue(false),
			"ünïcode ✓": structpb.NewStringValue("ünïcode ✓"), "list of lists": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{
				structpb.NewListValue(&structpb.ListValue{}), structpb.NewStructValue(&structpb.Struct{})}}),
		}},
	} {
		b, err := proto.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wireMap(string(b))
		if err != nil {
			t.Fatal(err)
		}
		if want := s.AsMap(); !reflect.DeepEqual(got, want) {
			t.Errorf("wireMap %v, AsMap %v", got, want)
		}
	}
	// Strings that are not UTF-8 are refused, as protobuf refuses them.
	for _, bad := range []*structpb.Struct{
		{Fields: map[string]*structpb.Value{"k": structpb.NewStringValue("Z")}},
		{Fields: map[string]*structpb.Value{"Z": structpb.NewBoolValue(true)}},
	} {
		b, err := proto.Marshal(bad)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Replace(b, []byte("Z"), []byte("\xff"), 1)
		if err := proto.Unmarshal(b, &structpb.Struct{}); err == nil {
			t.Fatalf("%q: protobuf reads it", b)
		}
		if _, err := wireMap(string(b)); !errors.Is(err, ErrMalformedEvent) {
			t.Errorf("%q: %v, want ErrMalformedEvent", b, err)
		}
	}
}

func BenchmarkPersonFields(b *testing.B) {
	props, _ := structpb.NewStruct(map[string]any{"sent": "1733480000000000000", "$set": map[string]any{"seen": 12345, "plan": "pro"},
		"$current_url": "https://shop.example/cart", "$browser": "Chrome"})
	set, _ := structpb.NewStruct(map[string]any{"email": "ada@example.com"})
	data, err := proto.Marshal(&hogwirev1.Event{Uuid: "u1", Event: "e", DistinctId: "ada", Properties: props, Set: set})
	if err != nil {
		b.Fatal(err)
	}
	ev, err := ParseEvent(data)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, _, err := ev.PersonFields(); err != nil {
			b.Fatal(err)
		}
	}
}
