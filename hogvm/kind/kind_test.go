package kind_test

import (
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/kind"
)

func TestCompileByKind(t *testing.T) {
	const dest = "let res := fetch(inputs.url, {'body': event.properties})\npostHogCapture({'event': 'x'})\nprint(person.name, source.url)"
	const transform = "let e := event\ne.properties.seen := true\nreturn e"
	const filter = "event = '$pageview' and properties.$browser = 'Chrome' and person.properties.plan = 'pro'"
	for _, c := range []struct {
		kind, src string
		err       string // "" when it compiles
		warn      string // a warning it must give
	}{
		{"destination", dest, "", ""},
		{"transformation", transform, "", ""},
		{"transformation", dest, "fetch", ""},
		{"transformation", "return {'p': person.properties}", "", "person"},
		{"filter", filter, "", ""},
		{"filter", "inputs.x = 1", "", "inputs"},
		{"filter", "fetch('x')", "fetch", ""},
		{"destination", "print(uuid)", "", "uuid"},
		{"source_webhook", "verifyWebhookSignature('github', inputs.secret)\npostHogCapture({'event': request.headers['x-github-event'], 'distinct_id': request.body.sender.login})\nreturn {'httpResponse': {'status': 202}}", "", ""},
		{"source_webhook", "fetch(inputs.url)", "fetch", ""},
		{"source_webhook", "print(event.uuid)", "", "event"},
		{"destination", "verifyWebhookSignature('github', 'x')", "verifyWebhookSignature", ""},
	} {
		k, err := kind.Lookup(c.kind)
		if err != nil {
			t.Fatal(err)
		}
		var warnings []string
		_, err = k.Compile(c.src, func(w compiler.Warning) { warnings = append(warnings, w.Msg) })
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s %q: %v", c.kind, c.src, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s %q: got %v, want an error about %s", c.kind, c.src, err, c.err)
		}
		if c.warn != "" && !strings.Contains(strings.Join(warnings, "\n"), c.warn) {
			t.Errorf("%s %q: warnings %q, want one about %s", c.kind, c.src, warnings, c.warn)
		}
		if c.warn == "" && c.err == "" && len(warnings) > 0 {
			t.Errorf("%s %q: unexpected warnings %q", c.kind, c.src, warnings)
		}
	}
	// Plain compilation stays strict.
	if _, err := compiler.Compile(dest, compiler.Options{}); err == nil {
		t.Error("plain Compile accepted fetch")
	}
	if _, err := kind.Lookup("source"); err == nil || !strings.Contains(err.Error(), "destination, transformation, source_webhook, filter") {
		t.Errorf("unknown kind: %v", err)
	}
}
