package executor_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
)

// printed runs a program that prints one expression and returns the
// printed JSON decoded.
func printed(t *testing.T, ev *hogwirev1.Event, expr string) any {
	t.Helper()
	d := prepare(t, spec{hog: "print(" + expr + ")"})
	res := invoke(t, d, ev, executor.Options{})
	if res.Status != executor.Succeeded {
		t.Fatalf("%s", dump(res))
	}
	var got any
	if err := json.Unmarshal([]byte(messages(res, info)[0]), &got); err != nil {
		t.Fatalf("print(%s) = %q: %v", expr, messages(res, info)[0], err)
	}
	return got
}

func checkJSON(t *testing.T, what string, got any, wantJSON string) {
	t.Helper()
	var want any
	if err := json.Unmarshal([]byte(wantJSON), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		t.Errorf("%s =\n %s\nwant\n %s", what, g, wantJSON)
	}
}

// The globals have PostHog's shapes (POSTHOG-CDP.md §5), with links under
// Source.URL and encodeURIComponent-escaped parts.
func TestGlobalsShape(t *testing.T) {
	ev := event(t, map[string]any{"$browser": "Chrome", "$groups": map[string]any{"company": "acme co"}})
	ev.ElementsChain = `a:href="/pricing"nth-child="1"`
	ev.Groups = map[string]string{"team": "core"}

	checkJSON(t, "event", printed(t, ev, "event"), `{
		"uuid": "0190f7f0-0000-7000-8000-000000000001",
		"event": "$pageview",
		"distinct_id": "user-1",
		"properties": {"$browser": "Chrome", "$groups": {"company": "acme co"}},
		"elements_chain": "a:href=\"/pricing\"nth-child=\"1\"",
		"timestamp": "2024-05-03T12:00:00.000Z",
		"url": "https://hogwire.example/projects/acme/events/0190f7f0-0000-7000-8000-000000000001/2024-05-03T12%3A00%3A00.000Z"
	}`)
	checkJSON(t, "person", printed(t, ev, "person"), `{
		"id": "0190f7f0-0000-7000-8000-0000000000aa",
		"properties": {"email": "max@acme.example", "plan": "pro"},
		"name": "max@acme.example",
		"url": "https://hogwire.example/projects/acme/person/user-1"
	}`)
	checkJSON(t, "project", printed(t, ev, "project"), `{"id": "acme", "name": "Acme Inc", "url": "https://acme.example"}`)
	checkJSON(t, "source", printed(t, ev, "source"), `{"name": "My webhook", "url": "https://hogwire.example/projects/acme/destinations/hook"}`)
	checkJSON(t, "groups", printed(t, ev, "groups"), `{
		"company": {"id": "acme co", "type": "company", "index": 0, "url": "https://hogwire.example/projects/acme/groups/0/acme%20co", "properties": {}},
		"team": {"id": "core", "type": "team", "index": 1, "url": "https://hogwire.example/projects/acme/groups/1/core", "properties": {}}
	}`)
	checkJSON(t, "inputs", printed(t, ev, "inputs"), `{}`)
}

// Without a person from the sender, the person is the distinct_id with the
// properties the event sets: $set_once, then $set over it.
func TestPersonFromSet(t *testing.T) {
	ev := event(t, map[string]any{
		"$set":      map[string]any{"name": "Max", "plan": "pro"},
		"$set_once": map[string]any{"plan": "free", "first_seen": "2024-01-01"},
	})
	ev.Person = nil
	ev.DistinctId = "  user-2 "
	ev.Set = mustStruct(t, map[string]any{"email": "max@acme.example"})
	checkJSON(t, "person", printed(t, ev, "person"), `{
		"id": "  user-2 ",
		"properties": {"first_seen": "2024-01-01", "plan": "pro", "name": "Max", "email": "max@acme.example"},
		"name": "max@acme.example",
		"url": "https://hogwire.example/projects/acme/person/%20%20user-2%20"
	}`)

	// A person given by the sender is updated the same way.
	ev.Person = &hogwirev1.Person{Id: "p-1", Properties: mustStruct(t, map[string]any{"plan": "free", "first_seen": "2023-12-01", "email": "old@acme.example"})}
	checkJSON(t, "given person", printed(t, ev, "person.properties"), `{"email": "max@acme.example", "first_seen": "2023-12-01", "name": "Max", "plan": "pro"}`)
	ev.Person = nil

	// The name falls back to name, username, then the trimmed distinct_id;
	// a non-string value is JSON-encoded.
	for _, c := range []struct {
		props map[string]any
		want  string
	}{
		{map[string]any{"name": "Max", "username": "mx"}, "Max"},
		{map[string]any{"email": "", "username": "mx"}, "mx"},
		{map[string]any{"username": 42}, "42"},
		{map[string]any{"name": map[string]any{"first": "M"}}, `{"first":"M"}`},
		{nil, "user-2"},
	} {
		ev.Set = nil
		ev.Properties = mustStruct(t, map[string]any{})
		if c.props != nil {
			ev.Properties.Fields["$set"] = structpb.NewStructValue(mustStruct(t, c.props))
		}
		g := executor.NewEvent(ev, project, source)
		name, _ := g.Value().AsDict().GetString("person")
		got, _ := name.AsDict().GetString("name")
		if got.AsString() != c.want {
			t.Errorf("person.name with %v = %q, want %q", c.props, got.AsString(), c.want)
		}
	}
}

// The filter globals mirror ClickHouse's columns, with the elements_chain_*
// fields computed by the materialized columns' regular expressions.
func TestFilterGlobals(t *testing.T) {
	ev := event(t, nil)
	ev.ElementsChain = `button.btn:text="Sign up"attr_id="cta"nth-child="1";a:href="/signup"text="Sign up";form:attr_id="f"`
	ev.Groups = map[string]string{"company": "acme"}
	g := executor.NewEvent(ev, project, source)
	got := g.FilterValue().ToGo().(map[string]any)
	want := map[string]any{
		"event":                   "$pageview",
		"uuid":                    "0190f7f0-0000-7000-8000-000000000001",
		"distinct_id":             "user-1",
		"timestamp":               "2024-05-03T12:00:00.000Z",
		"properties":              map[string]any{"$browser": "Chrome", "$current_url": "https://acme.example/pricing"},
		"elements_chain":          ev.ElementsChain,
		"elements_chain_href":     "/signup",
		"elements_chain_texts":    []any{"Sign up"},
		"elements_chain_ids":      []any{"cta", "f"},
		"elements_chain_elements": []any{"button", "a", "form"},
		"person":                  map[string]any{"id": "0190f7f0-0000-7000-8000-0000000000aa", "properties": map[string]any{"email": "max@acme.example", "plan": "pro"}},
		"pdi": map[string]any{"distinct_id": "user-1", "person_id": "0190f7f0-0000-7000-8000-0000000000aa",
			"person": map[string]any{"id": "0190f7f0-0000-7000-8000-0000000000aa", "properties": map[string]any{"email": "max@acme.example", "plan": "pro"}}},
		"$group_0": "acme", "$group_1": "", "$group_2": "", "$group_3": "", "$group_4": "",
		"variables": nil,
	}
	for i := range 5 {
		want["group_"+string(rune('0'+i))] = map[string]any{"properties": map[string]any{}}
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("filter globals =\n%s", g)
	}
}
