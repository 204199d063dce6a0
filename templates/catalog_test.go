package templates_test

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/templates"
)

func mustLoad(t testing.TB) *templates.Catalog {
	t.Helper()
	c, err := templates.Load()
	if err != nil {
		t.Fatalf("the shipped templates do not load: %v", err)
	}
	return c
}

func TestCatalog(t *testing.T) {
	c := mustLoad(t)
	var names []string
	for _, tpl := range c.List() {
		names = append(names, tpl.Name)
		if tpl.Hog == "" || tpl.DisplayName == "" || tpl.Description == "" || tpl.Category == "" || tpl.DocsUrl == "" || tpl.IconUrl == "" {
			t.Errorf("%s: missing metadata: %v", tpl.Name, tpl)
		}
		if tpl.Status != hogwirev1.TemplateStatus_TEMPLATE_STATUS_STABLE && tpl.Status != hogwirev1.TemplateStatus_TEMPLATE_STATUS_BETA {
			t.Errorf("%s: status %v", tpl.Name, tpl.Status)
		}
		for _, s := range tpl.InputsSchema {
			if s.Label == "" || s.Description == "" {
				t.Errorf("%s: input %s has no label or description", tpl.Name, s.Key)
			}
		}
	}
	// Sorted by category, then name.
	list := c.List()
	for i := 1; i < len(list); i++ {
		a, b := list[i-1], list[i]
		if a.Category > b.Category || (a.Category == b.Category && strings.ToLower(a.DisplayName) > strings.ToLower(b.DisplayName)) {
			t.Errorf("List is not sorted by category then name: %s (%s) before %s (%s)", a.Name, a.Category, b.Name, b.Category)
		}
	}
	for _, want := range []string{"templates/slack", "templates/webhook"} {
		if !slices.Contains(names, want) {
			t.Errorf("List = %v, missing %s", names, want)
		}
	}
	for _, id := range []string{"webhook", "templates/webhook"} {
		tpl, ok := c.Get(id)
		if !ok || tpl.Name != "templates/webhook" || tpl.DisplayName != "HTTP Webhook" || tpl.Category != "Custom" {
			t.Errorf("Get(%q) = %v, %v", id, tpl, ok)
		}
	}
	if _, ok := c.Get("nope"); ok {
		t.Error("Get(nope) found a template")
	}
	// Callers get copies: changing one does not change the catalog.
	tpl, _ := c.Get("slack")
	tpl.DisplayName = "changed"
	tpl.InputsSchema[0].Secret = false
	again, _ := c.Get("slack")
	if again.DisplayName != "Slack" || !again.InputsSchema[0].Secret {
		t.Error("Get returned the catalog's own template")
	}
	c.List()[0].Hog = ""
	if c.List()[0].Hog == "" {
		t.Error("List returned the catalog's own templates")
	}
}

func TestSlackWebhookURLIsSecret(t *testing.T) {
	tpl, _ := mustLoad(t).Get("slack")
	for _, s := range tpl.InputsSchema {
		if s.Key == "webhook_url" && (!s.Secret || !s.Required) {
			t.Errorf("webhook_url: secret=%v required=%v, want both", s.Secret, s.Required)
		}
	}
}

const goodYAML = `id: x
name: X
description: d
category: Custom
status: beta
inputs_schema:
  - key: url
    type: string
    label: URL
    required: true
`

const goodHog = "fetch(inputs.url, {})\n"

func fsOf(yaml, hog string) fstest.MapFS {
	return fstest.MapFS{
		"x/template.yaml": {Data: []byte(yaml)},
		"x/template.hog":  {Data: []byte(hog)},
	}
}

func TestLoadFSGood(t *testing.T) {
	yaml := goodYAML + `filters:
  events:
    - event: $pageview
      properties:
        - {key: $browser, operator: exact, value: Chrome, scope: event}
  properties:
    - {key: plan, operator: is_set, scope: person}
`
	c, err := templates.LoadFS(fsOf(yaml, goodHog))
	if err != nil {
		t.Fatal(err)
	}
	tpl, _ := c.Get("x")
	if tpl.Status != hogwirev1.TemplateStatus_TEMPLATE_STATUS_BETA {
		t.Errorf("status = %v", tpl.Status)
	}
	f := tpl.Filters
	if f == nil || f.Events[0].Event != "$pageview" || f.Events[0].Properties[0].Operator != hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT ||
		f.Properties[0].Scope != hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON || f.Properties[0].Operator != hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_SET {
		t.Errorf("filters = %v", f)
	}
}

func TestLoadFSErrors(t *testing.T) {
	input := func(extra string) string { return goodYAML + extra }
	for _, tc := range []struct {
		name, yaml, hog, want string
	}{
		{"hog syntax", goodYAML, "let x := (", "x: template.hog: line 1"},
		{"unknown function", goodYAML, "sendIt(inputs.url)", "x: template.hog: line 1, column 1"},
		{"undeclared input", goodYAML, "fetch(inputs.uri, {})", "reads inputs.uri, which inputs_schema does not declare"},
		{"id mismatch", strings.Replace(goodYAML, "id: x", "id: other", 1), goodHog, `id "other" does not match the directory "x"`},
		{"id not a string", strings.Replace(goodYAML, "id: x", "id: yes", 1), goodHog, "id: true is not a string (quote it)"},
		{"no id", strings.Replace(goodYAML, "id: x\n", "", 1), goodHog, "id: is required"},
		{"unknown field", goodYAML + "colour: red\n", goodHog, `unknown field "colour"`},
		{"hog in yaml", goodYAML + "hog: x\n", goodHog, "hog: not allowed here"},
		{"bad status", strings.Replace(goodYAML, "status: beta", "status: great", 1), goodHog, "status: great is not one of beta, deprecated, stable"},
		{"no description", strings.Replace(goodYAML, "description: d\n", "", 1), goodHog, "description: is required"},
		{"no status", strings.Replace(goodYAML, "status: beta\n", "", 1), goodHog, "status: is required"},
		{"unknown type", input("  - {key: n, type: text, label: N}\n"), goodHog, "inputs_schema[1].type: text is not one of"},
		{"duplicate key", input("  - {key: url, type: string, label: U}\n"), goodHog, `inputs_schema[1].key: "url" is declared twice`},
		{"bad key", input("  - {key: 1x, type: string, label: U}\n"), goodHog, `inputs_schema[1].key: "1x"`},
		{"no label", input("  - {key: num, type: number}\n"), goodHog, "inputs_schema[1] (num).label: is required"},
		{"choice without choices", input("  - {key: m, type: choice, label: M}\n"), goodHog, "inputs_schema[1] (m).choices: a choice input needs choices"},
		{"choice default", input("  - {key: m, type: choice, label: M, default: PUT, choices: [{label: POST, value: POST}]}\n"), goodHog, `(m).default: "PUT" is not one of POST`},
		{"choices on string", input("  - {key: m, type: string, label: M, choices: [{label: POST, value: POST}]}\n"), goodHog, "only choice inputs have choices"},
		{"number default", input("  - {key: num, type: number, label: Num, default: 'five'}\n"), goodHog, "(num).default: must be a number"},
		{"boolean default", input("  - {key: b, type: boolean, label: B, default: 1}\n"), goodHog, "(b).default: must be true or false"},
		{"string default", input("  - {key: s, type: string, label: S, default: [1]}\n"), goodHog, "(s).default: must be a string"},
		{"string template", input("  - {key: s, type: string, label: S, default: 'hi {person.'}\n"), goodHog, "(s).default: template: line 1, column 12"},
		{"untemplated string is not compiled", input("  - {key: s, type: string, label: S, templating: false, default: 'hi {person.'}\n"), goodHog, ""},
		{"dictionary value", input("  - {key: h, type: dictionary, label: H, default: {a: 1}}\n"), goodHog, `(h).default: value of "a" must be a string`},
		{"liquid default", input("  - {key: l, type: string, label: L, templating: liquid, default: 'Hi {{ person.name'}\n"), goodHog, `(l).default: template: line 1: "{{" is not closed`},
		{"liquid language", input("  - {key: l, type: string, label: L, templating: mustache}\n"), goodHog, "inputs_schema[1].template_language: mustache is not one of hog, liquid, none"},
		{"dictionary template", input("  - {key: h, type: dictionary, label: H, default: {a: '{'}}\n"), goodHog, "(h).default: template: a: line 1, column 2"},
		{"json template", input("  - {key: j, type: json, label: J, default: {a: [1, {b: '{event.'}]}}\n"), goodHog, "(j).default: template: a[1].b: line 1, column 8"},
		{"email", input("  - {key: e, type: email, label: E, default: {from: a, to: b}}\n"), goodHog, "(e).default: an email needs subject"},
		{"bad filter", goodYAML + "filters:\n  properties:\n    - {key: a, operator: regex, value: '('}\n", goodHog, "filters.properties[0].value: invalid regular expression"},
		{"bad filter operator", goodYAML + "filters:\n  properties:\n    - {key: a, operator: equals, value: 1}\n", goodHog, "filters.properties[0].operator: equals is not one of"},
		{"bad filter scope", goodYAML + "filters:\n  events:\n    - event: a\n      properties:\n        - {key: a, operator: exact, value: 1, scope: group}\n", goodHog, "filters.events[0].properties[0].scope: group is not one of event, person"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := templates.LoadFS(fsOf(tc.yaml, tc.hog))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "templates: x: ") {
				t.Errorf("err = %v does not name the template", err)
			}
		})
	}
}

func TestLoadFSBadDirectory(t *testing.T) {
	fsys := fstest.MapFS{"Bad_Name/template.yaml": {Data: []byte(goodYAML)}, "Bad_Name/template.hog": {Data: []byte(goodHog)}}
	if _, err := templates.LoadFS(fsys); err == nil || !strings.Contains(err.Error(), "not a valid template id") {
		t.Errorf("err = %v", err)
	}
	if _, err := templates.LoadFS(fstest.MapFS{"x/template.yaml": {Data: []byte(goodYAML)}}); err == nil || !strings.Contains(err.Error(), "template.hog") {
		t.Errorf("missing hog: err = %v", err)
	}
}

// Ad platforms that rate-limit their conversion APIs ship a default
// max_rate; no template's limits are negative.
func TestTemplateRateLimits(t *testing.T) {
	c := mustLoad(t)
	for _, id := range []string{"snapchat-conversions", "reddit-conversions"} {
		tpl, ok := c.Get(id)
		if !ok || tpl.GetLimits().GetMaxRate() <= 0 {
			t.Errorf("%s: no default max_rate (%v)", id, tpl.GetLimits())
		}
	}
	for _, tpl := range c.List() {
		if l := tpl.GetLimits(); l.GetMaxRate() < 0 || l.GetMaxRequestsInFlight() < 0 || l.GetMaxConcurrency() < 0 {
			t.Errorf("%s: negative limits %v", tpl.Name, l)
		}
	}
}
