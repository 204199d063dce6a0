package dataplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
)

// postBatch sends events to the capture API's /batch endpoint.
func (st *stack) postBatch(t *testing.T, token string, events ...map[string]any) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"api_key": token, "batch": events})
	resp, err := http.Post("http://"+st.HTTPAddr+"/batch/", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("capture answered %d", resp.StatusCode)
	}
}

// next waits for the sink's next body.
func (s *sink) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case <-s.got:
	case <-time.After(30 * time.Second):
		t.Fatal("the sink got nothing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[len(s.bodies)-1]
}

// A destination sees the stored person: properties set by earlier events,
// the current event's own $set already applied (so a destination on
// $identify sees what it sets), the anonymous person merged by $identify,
// and group properties from $groupidentify. PersonService reads and
// deletes what the node stored, and log entries name the person.
func TestPersonsInThePipeline(t *testing.T) {
	st0, cc := devstacktest.Start(t, func(c *devstack.Config) { c.Persons = true })
	st := &stack{Stack: st0, admin: cc}
	p := st.project(t, "shop")
	s := newSink(t, nil)
	st.fromTemplate(t, "shop", "webhook", s.URL, map[string]any{
		"event": "{event.event}", "pid": "{person.id}", "plan": "{person.properties.plan}",
		"email": "{person.properties.email}", "name": "{person.name}", "company": "{groups.company.properties.name}",
	}, &hogwirev1.Destination{
		DisplayName: "sink",
		Filters:     &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview"}, {Event: "$identify"}, {Event: "bought"}}},
	})
	printer, err := hogwirev1.NewDestinationServiceClient(st.admin).CreateDestination(context.Background(), &hogwirev1.CreateDestinationRequest{
		Parent: "projects/shop", Destination: &hogwirev1.Destination{DisplayName: "printer", Enabled: true,
			Hog:     `print(f'person {person.id}')`,
			Filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "bought"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	st.waitConfig(t, 2)

	st.postBatch(t, p.CaptureToken, map[string]any{"event": "$pageview", "distinct_id": "anon-1",
		"properties": map[string]any{"$set": map[string]any{"plan": "free"}}})
	got := st.next(t, s)
	anonID, _ := got["pid"].(string)
	if got["plan"] != "free" || len(anonID) != 36 {
		t.Fatalf("$pageview: %v", got)
	}

	st.postBatch(t, p.CaptureToken, map[string]any{"event": "$identify", "distinct_id": "alice",
		"properties": map[string]any{"$anon_distinct_id": "anon-1", "$set": map[string]any{"email": "alice@example.com"}}})
	if got = st.next(t, s); got["pid"] != anonID || got["email"] != "alice@example.com" || got["plan"] != "free" || got["name"] != "alice@example.com" {
		t.Fatalf("$identify: %v, want person %s with the $identify's own $set and the anonymous person's plan", got, anonID)
	}

	st.postBatch(t, p.CaptureToken,
		map[string]any{"event": "$groupidentify", "distinct_id": "alice",
			"properties": map[string]any{"$group_type": "company", "$group_key": "acme", "$group_set": map[string]any{"name": "Acme"}}},
		// Malformed: ignored with a log line; the event is still delivered.
		map[string]any{"event": "bought", "distinct_id": "alice", "properties": map[string]any{"$groups": map[string]any{"company": "acme"}, "$set": "oops"}})
	if got = st.next(t, s); got["event"] != "bought" || got["pid"] != anonID || got["company"] != "Acme" || got["plan"] != "free" {
		t.Fatalf("bought: %v", got)
	}

	ps := hogwirev1.NewPersonServiceClient(st.admin)
	ctx := context.Background()
	resp, err := ps.GetPerson(ctx, &hogwirev1.GetPersonRequest{Parent: "projects/shop", DistinctId: "anon-1"})
	if err != nil {
		t.Fatal(err)
	}
	if pe := resp.GetPerson(); pe.GetId() != anonID || !pe.GetIsIdentified() || !slices.Equal(pe.GetDistinctIds(), []string{"anon-1", "alice"}) ||
		pe.GetProperties().GetFields()["email"].GetStringValue() != "alice@example.com" || pe.GetName() != "projects/shop/persons/"+anonID {
		t.Fatalf("GetPerson: %v", pe)
	}
	list, err := ps.ListPersons(ctx, &hogwirev1.ListPersonsRequest{Parent: "projects/shop"})
	if err != nil || len(list.GetPersons()) != 1 {
		t.Fatalf("ListPersons: %v, %v", list, err)
	}
	for _, bad := range []*hogwirev1.GetPersonRequest{
		{Parent: "projects/shop"}, {Parent: "projects/shop", DistinctId: "a", PersonId: anonID}, {Parent: "nope", DistinctId: "a"},
	} {
		if _, err := ps.GetPerson(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("GetPerson(%v): %v, want InvalidArgument", bad, err)
		}
	}
	if _, err := ps.GetPerson(ctx, &hogwirev1.GetPersonRequest{Parent: "projects/nope", DistinctId: "a"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetPerson of an unknown project: %v, want NotFound", err)
	}

	// Log entries of the person's invocations carry its id.
	deadline := time.Now().Add(30 * time.Second)
	for {
		logs, err := hogwirev1.NewLogServiceClient(st.admin).ListLogEntries(ctx, &hogwirev1.ListLogEntriesRequest{
			Parent: printer.GetDestination().GetName(), Filter: &hogwirev1.LogFilter{PersonId: anonID}})
		if err != nil {
			t.Fatal(err)
		}
		if len(logs.GetEntries()) > 0 {
			if e := logs.GetEntries()[0]; e.GetPersonId() != anonID {
				t.Fatalf("log entry %v", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no log entry names the person")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Erasure: the person and both distinct ids are gone; alice's next
	// event starts an empty person.
	del, err := ps.DeletePerson(ctx, &hogwirev1.DeletePersonRequest{Parent: "projects/shop", DistinctId: "alice"})
	if err != nil || del.GetPerson().GetId() != anonID {
		t.Fatalf("DeletePerson: %v, %v", del, err)
	}
	for _, d := range []string{"alice", "anon-1"} {
		if _, err := ps.GetPerson(ctx, &hogwirev1.GetPersonRequest{Parent: "projects/shop", DistinctId: d}); status.Code(err) != codes.NotFound {
			t.Fatalf("GetPerson(%s) after delete: %v", d, err)
		}
	}
	st.postBatch(t, p.CaptureToken, map[string]any{"event": "$pageview", "distinct_id": "alice"})
	if got = st.next(t, s); got["pid"] == anonID || got["plan"] != nil || got["email"] != nil {
		t.Fatalf("after delete: %v", got)
	}
}

func (st *stack) next(t *testing.T, s *sink) map[string]any { t.Helper(); return s.next(t) }
