package eventlimits_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
	"github.com/hogwire/hogwire/executor"
)

// nested returns a value with levels objects and arrays nested inside one
// another, alternating.
func nested(levels int) *structpb.Value {
	v := structpb.NewStringValue("leaf")
	for i := range levels {
		if i%2 == 0 {
			v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
		} else {
			v = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"k": v}})
		}
	}
	return v
}

func event() *hogwirev1.Event {
	return &hogwirev1.Event{Uuid: "0191f1a3-4b2c-7d8e-9f00-112233445566", Event: "e", DistinctId: "d",
		Properties: &structpb.Struct{Fields: map[string]*structpb.Value{"a": structpb.NewNumberValue(1)}}}
}

// The depth limit is the executor's: whatever Check accepts, the executor
// decodes, and whatever it refuses the executor would have refused, in
// each of the objects an event carries.
func TestDepthMatchesExecutor(t *testing.T) {
	put := map[string]func(*hogwirev1.Event, *structpb.Value){
		"properties": func(ev *hogwirev1.Event, v *structpb.Value) { ev.Properties.Fields["deep"] = v },
		"set": func(ev *hogwirev1.Event, v *structpb.Value) {
			ev.Set = &structpb.Struct{Fields: map[string]*structpb.Value{"deep": v}}
		},
		"set_once": func(ev *hogwirev1.Event, v *structpb.Value) {
			ev.SetOnce = &structpb.Struct{Fields: map[string]*structpb.Value{"deep": v}}
		},
		"person.properties": func(ev *hogwirev1.Event, v *structpb.Value) {
			ev.Person = &hogwirev1.Person{Id: "p", Properties: &structpb.Struct{Fields: map[string]*structpb.Value{"deep": v}}}
		},
	}
	for field, set := range put {
		for levels := eventlimits.MaxDepth - 2; levels <= eventlimits.MaxDepth+2; levels++ {
			ev := event()
			set(ev, nested(levels))
			_, v := eventlimits.Limits{}.Check(ev)
			if (v == nil) != (levels <= eventlimits.MaxDepth) {
				t.Errorf("%s nested %d levels: violation %v", field, levels, v)
			}
			if v != nil && (v.Rule != eventlimits.RuleDepth || !strings.HasPrefix(v.Field, field+".deep")) {
				t.Errorf("%s nested %d levels: violation %+v", field, levels, v)
			}
			data, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			w, err := executor.ParseEvent(data)
			if err == nil {
				_, err = executor.NewEventFromWire(w, executor.NewProject(&hogwirev1.Project{}, executor.Source{}))
			}
			if (err == nil) != (v == nil) {
				t.Errorf("%s nested %d levels: executor says %v, Check says %v", field, levels, err, v)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	l := eventlimits.Limits{MaxEventBytes: 1000, MaxProperties: 10, MaxStringBytes: 100}
	cases := []struct {
		name  string
		edit  func(*hogwirev1.Event)
		rule  eventlimits.Rule
		field string
	}{
		{"fits", func(*hogwirev1.Event) {}, "", ""},
		{"long name", func(ev *hogwirev1.Event) { ev.Event = strings.Repeat("n", 101) }, eventlimits.RuleStringBytes, "event"},
		{"long distinct id", func(ev *hogwirev1.Event) { ev.DistinctId = strings.Repeat("d", 101) }, eventlimits.RuleStringBytes, "distinct_id"},
		{"long value", func(ev *hogwirev1.Event) {
			ev.Properties.Fields["list"] = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{
				structpb.NewStringValue("ok"), structpb.NewStringValue(strings.Repeat("v", 101))}})
		}, eventlimits.RuleStringBytes, "properties.list[1]"},
		{"long key", func(ev *hogwirev1.Event) {
			ev.Set = &structpb.Struct{Fields: map[string]*structpb.Value{strings.Repeat("k", 101): structpb.NewBoolValue(true)}}
		}, eventlimits.RuleStringBytes, "set"},
		{"long group key", func(ev *hogwirev1.Event) { ev.Groups = map[string]string{"company": strings.Repeat("g", 101)} },
			eventlimits.RuleStringBytes, "groups.company"},
		{"nested keys count", func(ev *hogwirev1.Event) {
			inner := &structpb.Struct{Fields: map[string]*structpb.Value{}}
			for _, k := range strings.Split("abcdefghij", "") {
				inner.Fields[k] = structpb.NewNullValue()
			}
			ev.Properties.Fields["obj"] = structpb.NewStructValue(inner)
		}, eventlimits.RuleProperties, "properties.obj"},
		{"big event", func(ev *hogwirev1.Event) {
			for i := range 9 {
				ev.Properties.Fields[string(rune('b'+i))] = structpb.NewStringValue(strings.Repeat("x", 99))
			}
			ev.ElementsChain = strings.Repeat("c", 100)
			ev.Person = &hogwirev1.Person{Id: strings.Repeat("p", 100)}
		}, eventlimits.RuleEventBytes, ""},
	}
	for _, c := range cases {
		ev := event()
		c.edit(ev)
		size, v := l.Check(ev)
		switch {
		case c.rule == "" && v != nil:
			t.Errorf("%s: %v", c.name, v)
		case c.rule == "":
			if size != proto.Size(ev) {
				t.Errorf("%s: size %d, want %d", c.name, size, proto.Size(ev))
			}
		case v == nil || v.Rule != c.rule || v.Field != c.field:
			t.Errorf("%s: violation %+v, want rule %s on %q", c.name, v, c.rule, c.field)
		}
	}
}

// A path through a hostile event is cut short in the error.
func TestFieldPathBounded(t *testing.T) {
	ev := event()
	ev.Properties.Fields["deep"] = nested(eventlimits.MaxDepth + 50)
	_, v := eventlimits.Limits{}.Check(ev)
	if v == nil || v.Rule != eventlimits.RuleDepth || len(v.Field) > 220 || !strings.HasSuffix(v.Field, "…") {
		t.Fatalf("violation %+v", v)
	}
}

// FuzzCheckMatchesExecutor: whatever event Check accepts, the executor
// decodes; nothing capture stores is dropped later for its shape.
func FuzzCheckMatchesExecutor(f *testing.F) {
	for _, levels := range []int{0, 3, eventlimits.MaxDepth, eventlimits.MaxDepth + 1} {
		ev := event()
		ev.Properties.Fields["deep"] = nested(levels)
		ev.Person = &hogwirev1.Person{Id: "p", Properties: ev.Properties}
		b, err := proto.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	project := executor.NewProject(&hogwirev1.Project{}, executor.Source{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ev := &hogwirev1.Event{}
		if proto.Unmarshal(data, ev) != nil {
			return
		}
		size, v := (eventlimits.Limits{}).Check(ev)
		if v != nil {
			return
		}
		if size != proto.Size(ev) {
			t.Fatalf("Check sized the event %d bytes, protobuf %d", size, proto.Size(ev))
		}
		stored, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		w, err := executor.ParseEvent(stored)
		if err == nil {
			_, err = executor.NewEventFromWire(w, project)
		}
		if err != nil {
			t.Fatalf("Check accepted an event the executor refuses: %v", err)
		}
	})
}

// Check adds up the size protobuf would encode, for every kind of value
// and field, empty and absent ones included.
func TestSizeMatchesProtobuf(t *testing.T) {
	props := func() *structpb.Struct {
		s, err := structpb.NewStruct(map[string]any{
			"": "", "n": 0.0, "neg": -1.5, "t": true, "f": false, "null": nil, "s": strings.Repeat("é", 200),
			"list": []any{1.0, "x", nil, []any{}, map[string]any{}}, "obj": map[string]any{"a": map[string]any{"b": []any{"c"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Fields["nilvalue"] = nil
		s.Fields["nokind"] = &structpb.Value{}
		s.Fields["nilstruct"] = &structpb.Value{Kind: &structpb.Value_StructValue{}}
		s.Fields["nillist"] = &structpb.Value{Kind: &structpb.Value_ListValue{}}
		return s
	}
	events := []*hogwirev1.Event{
		{},
		event(),
		{Uuid: "u", Event: "e", DistinctId: "d", Properties: &structpb.Struct{}, Set: &structpb.Struct{}, SetOnce: &structpb.Struct{},
			Timestamp: &timestamppb.Timestamp{}, Person: &hogwirev1.Person{}, Groups: map[string]string{"": ""}},
		{Uuid: "0191f1a3-4b2c-7d8e-9f00-112233445566", Event: "$pageview", DistinctId: "d", Properties: props(), Set: props(), SetOnce: props(),
			Timestamp: &timestamppb.Timestamp{Seconds: -62135596800, Nanos: 999999999}, ElementsChain: "a:b", Project: "p",
			Person: &hogwirev1.Person{Id: "p", Properties: props()}, Groups: map[string]string{"company": "acme", "team": ""}},
		{Timestamp: &timestamppb.Timestamp{Seconds: 1 << 40}, Person: &hogwirev1.Person{Properties: &structpb.Struct{}}},
	}
	for i, ev := range events {
		size, v := (eventlimits.Limits{}).Check(ev)
		if v != nil {
			t.Fatalf("event %d: %v", i, v)
		}
		if want := proto.Size(ev); size != want {
			t.Errorf("event %d: Check says %d bytes, protobuf %d", i, size, want)
		}
	}
}

// Check sizes events by their fields, which it knows by number: a new
// field of Event or Person must be added there (and here).
func TestKnowsEveryField(t *testing.T) {
	for msg, want := range map[protoreflect.MessageDescriptor]string{
		(&hogwirev1.Event{}).ProtoReflect().Descriptor():  "1:uuid 2:event 3:distinct_id 4:properties 5:timestamp 6:elements_chain 7:person 8:groups 9:set 10:set_once 11:project",
		(&hogwirev1.Person{}).ProtoReflect().Descriptor(): "1:id 2:properties",
	} {
		var got []string
		fields := msg.Fields()
		for i := range fields.Len() {
			f := fields.Get(i)
			got = append(got, fmt.Sprintf("%d:%s", f.Number(), f.Name()))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s has fields %v; teach Check their sizes", msg.FullName(), got)
		}
	}
}

// An event that breaks several limits is refused for the same one every
// time, whatever order Go walks its maps in: the first in key order.
func TestFirstViolationIsStable(t *testing.T) {
	l := eventlimits.Limits{MaxProperties: 5, MaxStringBytes: 40}
	ev := event()
	for i := range 8 {
		ev.Properties.Fields[fmt.Sprint("k", i)] = structpb.NewStringValue(strings.Repeat("v", 35+i*2))
	}
	ev.Groups = map[string]string{"b": strings.Repeat("g", 41), "a": strings.Repeat("g", 41)}
	for range 50 {
		if _, v := l.Check(ev); v == nil || v.Rule != eventlimits.RuleStringBytes || v.Field != "groups.a" {
			t.Fatalf("violation %+v, want max_string_bytes on groups.a", v)
		}
	}
	ev.Groups = nil
	l.MaxProperties = 100
	for range 50 {
		if _, v := l.Check(ev); v == nil || v.Field != "properties.k3" {
			t.Fatalf("violation %+v, want properties.k3 (the first long value in key order)", v)
		}
	}
}
