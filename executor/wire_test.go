package executor_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// wireCorpus covers every Event field NewEvent reads and every kind of
// JSON value, including keys JavaScript orders as array indexes.
func wireCorpus(t testing.TB) map[string]*hogwirev1.Event {
	full := event(t, map[string]any{
		"$browser": "Chrome", "n": 3, "f": -1.25, "big": 1e21, "ok": true, "no": false, "nothing": nil,
		"list": []any{1, "two", nil, []any{}, map[string]any{"x": []any{true}}}, "empty": map[string]any{},
		"10": "ten", "2": "two", "012": "not an index", "": "blank", "ünï": "cödé",
		"$groups":                       map[string]any{"company": "acme", "team": 42, "ignored": true},
		"$set":                          map[string]any{"plan": "pro", "email": "a@b.example"},
		"$set_once":                     map[string]any{"first_seen": "2026-01-01", "plan": "free"},
		"$elements_chain":               `a:href="/x"nth-child="1";button.primary:text="Buy"`,
		"$hog_function_execution_count": 4,
	})
	full.Uuid = "0191f1a3-4b2c-7d8e-9f00-112233445566"
	full.Timestamp = timestamppb.New(time.Date(2026, 11, 27, 4, 5, 6, 789_000_000, time.UTC))
	full.Set = mustStruct(t, map[string]any{"plan": "enterprise", "seats": 9})
	full.SetOnce = mustStruct(t, map[string]any{"signup": "web", "first_seen": "never"})
	full.Person = &hogwirev1.Person{Id: "person-1", Properties: mustStruct(t, map[string]any{"name": " Max ", "plan": "old"})}
	full.Groups = map[string]string{"company": "override", "project": "p1"}

	bare := &hogwirev1.Event{Event: "bare", DistinctId: "u"}
	fields := event(t, map[string]any{"a": 1})
	fields.ElementsChain = "div:nth-child=\"1\""
	fields.Set = mustStruct(t, map[string]any{"email": "x@y.example"})
	fields.Person = nil // the person comes from distinct_id and $set
	personNoProps := event(t, nil)
	personNoProps.Person = &hogwirev1.Person{Id: "p"}
	epoch := event(t, nil)
	epoch.Timestamp = &timestamppb.Timestamp{}
	return map[string]*hogwirev1.Event{"full": full, "bare": bare, "fields": fields, "person without properties": personNoProps, "epoch": epoch}
}

func globalsJSON(t *testing.T, g *executor.Globals) string {
	t.Helper()
	b, err := vm.DictValue(func() *vm.Dict {
		d := vm.NewDict(2)
		d.SetString("globals", g.Value())
		d.SetString("filter", g.FilterValue())
		return d
	}()).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Globals built from an event's encoding are those built from the event.
func TestNewEventFromWireMatchesNewEvent(t *testing.T) {
	for name, ev := range wireCorpus(t) {
		t.Run(name, func(t *testing.T) {
			want := executor.NewEvent(ev, project, source)
			for range 5 { // map order on the wire differs between encodings
				data, err := proto.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				// A field from a newer version of the API is skipped.
				data = protowire.AppendTag(data, 99, protowire.BytesType)
				data = protowire.AppendString(data, "future")
				w, err := executor.ParseEvent(data)
				if err != nil {
					t.Fatal(err)
				}
				if w.Name != ev.Event {
					t.Errorf("name %q, want %q", w.Name, ev.Event)
				}
				got, err := executor.NewEventFromWire(w, executor.NewProject(project, source))
				if err != nil {
					t.Fatal(err)
				}
				if g, w := globalsJSON(t, got), globalsJSON(t, want); g != w {
					t.Fatalf("from the encoding:\n%s\nfrom the event:\n%s", g, w)
				}
				if got.UUID() != want.UUID() || got.Event() != want.Event() {
					t.Errorf("uuid/name %s %s, want %s %s", got.UUID(), got.Event(), want.UUID(), want.Event())
				}
			}
		})
	}
}

// Truncated or mangled encodings are errors, never panics or half events.
func TestParseEventRejectsMalformed(t *testing.T) {
	data, err := proto.Marshal(wireCorpus(t)["full"])
	if err != nil {
		t.Fatal(err)
	}
	failures := 0
	for n := range len(data) {
		w, err := executor.ParseEvent(data[:n])
		if err == nil {
			_, err = executor.NewEventFromWire(w, executor.NewProject(project, source))
		}
		if err != nil {
			failures++
		}
	}
	// Some prefixes end between fields and are valid (shorter) events;
	// most cut a field and must fail.
	if failures < len(data)/2 {
		t.Errorf("only %d of %d truncations failed", failures, len(data))
	}
	deep := []byte{}
	for range 200 {
		// Value{list_value: ListValue{values: [ ... ]}} nested 200 times.
		inner := protowire.AppendTag(nil, 1, protowire.BytesType)
		inner = protowire.AppendBytes(inner, deep)
		deep = protowire.AppendTag(nil, 6, protowire.BytesType)
		deep = protowire.AppendBytes(deep, inner)
	}
	entry := protowire.AppendTag(nil, 1, protowire.BytesType)
	entry = protowire.AppendString(entry, "k")
	entry = protowire.AppendTag(entry, 2, protowire.BytesType)
	entry = protowire.AppendBytes(entry, deep)
	props := protowire.AppendTag(nil, 1, protowire.BytesType)
	props = protowire.AppendBytes(props, entry)
	ev := protowire.AppendTag(nil, 4, protowire.BytesType)
	ev = protowire.AppendBytes(ev, props)
	w, err := executor.ParseEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := executor.NewEventFromWire(w, executor.NewProject(project, source)); err == nil || !errors.Is(err, executor.ErrMalformedEvent) {
		t.Errorf("200 nested lists: %v, want ErrMalformedEvent", err)
	}
}

// FuzzNewEventFromWire feeds arbitrary bytes to the decoder: it never
// panics, and whatever protobuf's own decoder reads as an Event it reads
// too, into the globals NewEvent builds from protobuf's result.
func FuzzNewEventFromWire(f *testing.F) {
	for _, ev := range wireCorpus(f) {
		data, err := proto.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	p := executor.NewProject(project, source)
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := executor.ParseEvent(data)
		var got *executor.Globals
		if err == nil {
			got, err = executor.NewEventFromWire(w, p)
		}
		ev := &hogwirev1.Event{}
		if proto.Unmarshal(data, ev) != nil {
			return // not an Event: the decoder may say so or read what it can
		}
		if err != nil {
			// Groups (a deprecated wire type no hogwire message uses) and
			// objects nested past maxWireDepth are refused on purpose.
			if msg := err.Error(); strings.Contains(msg, "wire type") || strings.Contains(msg, "too deep") {
				return
			}
			t.Fatalf("protobuf reads %x but the decoder says %v", data, err)
		}
		if g, w := globalsJSON(t, got), globalsJSON(t, executor.NewEvent(ev, project, source)); g != w {
			t.Fatalf("%x:\nfrom the encoding:\n%s\nfrom protobuf:\n%s", data, g, w)
		}
	})
}
