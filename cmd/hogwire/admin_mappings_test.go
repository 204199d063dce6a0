package main

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// --mappings-file sets a destination's mappings on create and replaces
// them on update; get shows them; a bad mapping fails with its field.
func TestAdminMappings(t *testing.T) {
	s := startAdminStack(t)
	s.ok("projects", "create", "shop", "--name", "Shop")
	file := writeFile(t, "mappings.yaml", `
- name: Sign-up
  filters:
    events: [{event: signed_up}]
  inputs:
    body: {kind: signup, user: "{event.distinct_id}"}
- name: Pro
  filters:
    properties: [{key: plan, operator: exact, value: pro}]
  disabled: true
`)
	s.ok("destinations", "create", "--project", "shop", "--template", "webhook", "--id", "ads",
		"--input", "url=https://example.com/hook", "--mappings-file", file)
	d := s.getDestination("ads")
	if m := d.GetMappings(); len(m) != 2 || m[0].Name != "Sign-up" || !m[1].Disabled ||
		m[0].GetInputs()["body"].GetValue().GetStructValue().GetFields()["kind"].GetStringValue() != "signup" {
		t.Fatalf("mappings %v", m)
	}
	out := s.ok("destinations", "get", "ads")
	if !strings.Contains(out, "Mapping 1: Sign-up") || !strings.Contains(out, "Mapping 2: Pro (disabled)") {
		t.Errorf("get shows:\n%s", out)
	}
	ev := writeFile(t, "ev.yaml", "{event: signed_up, distinct_id: ada}")
	out = s.ok("destinations", "test", "ads", "--event", ev)
	if !strings.Contains(out, "== Mapping 1 of 1: Sign-up") || !strings.Contains(out, `"kind": "signup"`) {
		t.Errorf("test shows:\n%s", out)
	}
	if msg := s.fails(codes.InvalidArgument, "destinations", "test", "ads", "--mapping", "Pro", "--event", ev); !strings.Contains(msg, `"Pro" is not an enabled mapping`) {
		t.Errorf("test of a disabled mapping: %s", msg)
	}
	bad := writeFile(t, "bad.yaml", `[{name: X, inputs: {nope: 1}}]`)
	msg := s.fails(codes.InvalidArgument, "destinations", "update", "ads", "--mappings-file", bad)
	if !strings.Contains(msg, "mappings[0].inputs.nope") {
		t.Errorf("update with a bad mapping: %s", msg)
	}
	s.ok("destinations", "update", "ads", "--mappings-file", writeFile(t, "none.yaml", `[]`))
	if m := s.getDestination("ads").GetMappings(); len(m) != 0 {
		t.Errorf("after an empty list: %v", m)
	}
}
