package executor_test

import (
	"fmt"
	"testing"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
)

// A Matcher says what Destination.Match says of every destination and
// event, whichever it matched before, for destinations sharing a FilterVM
// and for one with its own.
func TestMatcherMatchesMatch(t *testing.T) {
	fvm := executor.NewFilterVM()
	var dests []*executor.Destination
	for i, f := range []*hogwirev1.Filters{
		{},
		{Expression: "lower(properties.plan) = 'pro'"},
		{Expression: "upper(properties.plan) = 'PRO' and properties.seats > 3"},
		{Expression: "properties.plan = 'Pro'"},
		{Expression: "event.properties.plan = 'pro'"},
		{Expression: "lower(properties.seats) = '12'"}, // fails on a number
		{Expression: "length(properties.plan) > 2"},
		{Expression: "properties.plan"}, // not a boolean: no match
		{Events: []*hogwirev1.EventFilter{{Event: "signed_up"}}},
		{Events: []*hogwirev1.EventFilter{{Event: "$pageview"}}, Expression: "lower(properties.$browser) ilike '%chrome%'"},
	} {
		d, err := executor.Prepare(compile(t, spec{hog: "return 1", filters: f}), executor.WithFilterVM(fvm))
		if err != nil {
			t.Fatal(err)
		}
		dests = append(dests, d)
		if i == 1 {
			// One on a FilterVM of its own.
			dests = append(dests, prepare(t, spec{hog: "return 1", filters: f}))
		}
	}
	var events []*executor.Globals
	for _, props := range []map[string]any{
		{"plan": "Pro", "seats": 12, "$browser": "Chrome"},
		{"plan": "pro", "seats": 2},
		{"plan": "PRÖ", "seats": "12"},
		{"plan": nil},
		{},
	} {
		events = append(events, executor.NewEvent(event(t, props), project, source))
	}
	var mt executor.Matcher
	matched, failed := 0, 0
	for round := range 3 {
		for i := range dests {
			d := dests[(i*(round+2))%len(dests)]
			for j, g := range events {
				ok, err := mt.Match(d, g)
				wok, werr := d.Match(g)
				if ok != wok || fmt.Sprint(err) != fmt.Sprint(werr) {
					t.Errorf("destination %d, event %d: Matcher %v %v, Match %v %v", i, j, ok, err, wok, werr)
				}
				if ok {
					matched++
				}
				if err != nil {
					failed++
				}
			}
		}
	}
	// Frozen, so that the Matcher may remember what filters read.
	if _, ok := events[0].FilterValue().AsDict().Content(); !ok {
		t.Error("filter globals not frozen")
	}
	if matched == 0 || failed == 0 {
		t.Errorf("%d matches, %d failures: the table tests too little", matched, failed)
	}
}
