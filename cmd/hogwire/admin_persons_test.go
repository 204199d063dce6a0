package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

func TestAdminPersons(t *testing.T) {
	s := startAdminStack(t)
	s.ok("projects", "create", "shop", "--name", "Shop")
	s.ok("events", "send", "--project", "shop", "--event", "$pageview", "--distinct-id", "anon-1", "--prop", `$set={"plan":"free"}`)
	s.ok("events", "send", "--project", "shop", "--event", "$identify", "--distinct-id", "ada@example.com",
		"--prop", "$anon_distinct_id=anon-1", "--prop", `$set={"email":"ada@example.com"}`)

	// The node applies events as it processes them.
	got := &hogwirev1.GetPersonResponse{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := s.run("persons", "get", "--project", "shop", "anon-1", "-o", "json")
		if err == nil {
			decodeJSON(t, out, got)
			if len(got.GetPerson().GetDistinctIds()) == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the person was not merged: %v %v", out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p := got.GetPerson()
	if !slices.Equal(p.GetDistinctIds(), []string{"anon-1", "ada@example.com"}) || !p.GetIsIdentified() ||
		p.GetProperties().GetFields()["plan"].GetStringValue() != "free" {
		t.Fatalf("person %v", p)
	}

	out := s.ok("persons", "get", "--project", "shop", "--person-id", p.GetId())
	for _, want := range []string{`Id:\s+` + p.GetId(), `Distinct ids:\s+anon-1, ada@example.com`, `Identified:\s+true`, `"email": "ada@example.com"`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("get does not match %q:\n%s", want, out)
		}
	}
	out = s.ok("persons", "list", "--project", "shop")
	if !regexp.MustCompile(`(?m)^ID\s+NAME\s+DISTINCT IDS\s+IDENTIFIED\s+CREATED$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^`+p.GetId()+`\s+ada@example.com\s+anon-1,ada@example.com\s+true\s+\d{4}-`).MatchString(out) {
		t.Errorf("list:\n%s", out)
	}

	for _, args := range [][]string{
		{"persons", "get", "--project", "shop"},
		{"persons", "get", "--project", "shop", "anon-1", "--person-id", p.GetId()},
		{"persons", "delete", "anon-1"},
	} {
		if _, err := s.run(args...); exitCode(err) != 2 {
			t.Errorf("hogwire %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	s.fails(codes.NotFound, "persons", "get", "--project", "shop", "nobody")
	s.fails(codes.NotFound, "persons", "get", "--project", "nope", "anon-1")

	out = s.ok("persons", "delete", "--project", "shop", "ada@example.com")
	if !strings.Contains(out, "Deleted person "+p.GetId()+" and its 2 distinct id(s)") {
		t.Errorf("delete printed %q", out)
	}
	s.fails(codes.NotFound, "persons", "get", "--project", "shop", "anon-1")
	s.fails(codes.NotFound, "persons", "delete", "--project", "shop", "--person-id", p.GetId())
}
