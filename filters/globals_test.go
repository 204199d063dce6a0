package filters_test

import (
	"encoding/json"
	"testing"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/vm"
)

const chain = `button.btn.primary:attr__class="btn primary"attr_id="signup"nth-child="1"text="Sign up";a:href="/pricing"attr_id="nav"text="Pricing";a:href="/about"text="Sign up";div:nth-child="2"`

func TestGlobals(t *testing.T) {
	g := filters.Globals(&filters.Event{
		UUID: "u", Name: "$autocapture", DistinctID: "d1", Timestamp: "2024-05-03T12:00:00Z",
		Properties: vm.FromGo(map[string]any{"$elements_chain": chain, "$group_0": "acme", "$group_2": 7}),
		Person:     &filters.Person{ID: "p1", Properties: vm.FromGo(map[string]any{"plan": "pro"})},
		Groups:     [5]string{"acme"},
	})
	got, err := json.Marshal(g.ToGo())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"$group_0":"acme","$group_1":"","$group_2":"","$group_3":"","$group_4":"",` +
		`"distinct_id":"d1","elements_chain":` + mustJSON(chain) + `,"elements_chain_elements":["button","a"],` +
		`"elements_chain_href":"/pricing","elements_chain_ids":["signup","nav"],"elements_chain_texts":["Sign up","Pricing"],` +
		`"event":"$autocapture","group_0":{"properties":{}},"group_1":{"properties":{}},"group_2":{"properties":{}},"group_3":{"properties":{}},"group_4":{"properties":{}},` +
		`"pdi":{"distinct_id":"d1","person":{"id":"p1","properties":{"plan":"pro"}},"person_id":"p1"},` +
		`"person":{"id":"p1","properties":{"plan":"pro"}},` +
		`"properties":{"$elements_chain":` + mustJSON(chain) + `,"$group_0":"acme","$group_2":7},` +
		`"timestamp":"2024-05-03T12:00:00Z","uuid":"u","variables":null}`
	if string(got) != want {
		t.Errorf("Globals =\n  %s\nwant\n  %s", got, want)
	}

	empty := filters.Globals(&filters.Event{Name: "e"}).ToGo().(map[string]any)
	if empty["person"] != nil || empty["pdi"] != nil || empty["elements_chain"] != "" || len(empty["elements_chain_texts"].([]any)) != 0 {
		t.Errorf("Globals without person or chain = %v", empty)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Filters written for PostHog read the derived globals; they work on
// Globals' output.
func TestFiltersOnGlobals(t *testing.T) {
	g := filters.Globals(&filters.Event{Name: "$autocapture", DistinctID: "d1", ElementsChain: chain,
		Person: &filters.Person{ID: "p1", Properties: vm.FromGo(map[string]any{"plan": "pro"})}})
	for _, tc := range []struct {
		f    *hogwirev1.Filters
		want bool
	}{
		{&hogwirev1.Filters{Expression: "has(elements_chain_texts, 'Sign up')"}, true},
		{&hogwirev1.Filters{Expression: "elements_chain_href = '/pricing' and pdi.person.properties.plan = 'pro'"}, true},
		{&hogwirev1.Filters{Expression: "has(elements_chain_elements, 'form')"}, false},
		{props(prop(t, "$elements_chain", icontains, "attr_id=\"signup\"")), true},
		{props(personProp(t, "plan", exact, "pro"), personProp(t, "distinct_id", exact, "d1")), true},
	} {
		if got := runValue(t, mustCompile(t, tc.f), g); got != tc.want {
			src, _ := filters.Source(tc.f)
			t.Errorf("%s: match = %v, want %v", src, got, tc.want)
		}
	}
}

func mustCompile(t *testing.T, f *hogwirev1.Filters) []byte {
	t.Helper()
	bc, err := filters.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	return bc
}
