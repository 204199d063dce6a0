package executor

import (
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
