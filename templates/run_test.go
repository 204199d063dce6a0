package templates_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
	"github.com/hogwire/hogwire/templates"
)

// Sample invocation globals, shaped as the data plane builds them
// (ARCHITECTURE.md "Globals given to Hog").
func sampleGlobals() map[string]any {
	return map[string]any{
		"event": map[string]any{
			"uuid":           "0190f7f0-0000-7000-8000-000000000001",
			"event":          "$pageview",
			"distinct_id":    "user-1",
			"properties":     map[string]any{"$current_url": "https://example.com/pricing", "$browser": "Chrome", "count": 3},
			"elements_chain": "",
			"timestamp":      "2024-05-03T12:00:00.000Z",
			"url":            "https://hogwire.example/project/1/events/0190f7f0-0000-7000-8000-000000000001/2024-05-03T12%3A00%3A00.000Z",
		},
		"person": map[string]any{
			"id":         "0190f7f0-0000-7000-8000-0000000000aa",
			"properties": map[string]any{"email": "ann@example.com", "name": "Ann"},
			"name":       "ann@example.com",
			"url":        "https://hogwire.example/project/1/person/user-1",
		},
		"groups":  map[string]any{},
		"project": map[string]any{"id": 1, "name": "Acme", "url": "https://hogwire.example/project/1"},
		"source":  map[string]any{"name": "Sales alerts", "url": "https://hogwire.example/project/1/functions/d1/configuration/"},
	}
}

// evalInputs builds inputs as the data plane does: the given value or the
// schema default, with every string of a templated input rendered against
// the globals.
func evalInputs(t *testing.T, tpl *hogwirev1.Template, given map[string]any, globals map[string]any) map[string]any {
	t.Helper()
	inputs := map[string]any{}
	for _, s := range tpl.InputsSchema {
		v, ok := given[s.Key]
		if !ok && s.Default != nil {
			v = s.Default.AsInterface()
		}
		switch s.Type {
		case hogwirev1.InputType_INPUT_TYPE_STRING, hogwirev1.InputType_INPUT_TYPE_DICTIONARY, hogwirev1.InputType_INPUT_TYPE_JSON, hogwirev1.InputType_INPUT_TYPE_EMAIL:
			if s.Templating == nil || *s.Templating {
				v = render(t, v, globals)
			}
		}
		inputs[s.Key] = v
	}
	return inputs
}

func render(t *testing.T, v any, globals map[string]any) any {
	switch x := v.(type) {
	case string:
		p, err := compiler.CompileTemplate(x, compiler.Options{})
		if err != nil {
			t.Fatalf("template %q: %v", x, err)
		}
		linked, err := vm.Link(p, stl.Library())
		if err != nil {
			t.Fatal(err)
		}
		res, err := vm.New(vm.Options{}).Run(context.Background(), linked, vm.FromGo(globals))
		if err != nil {
			t.Fatalf("template %q: %v", x, err)
		}
		return res.Value.ToGo()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = render(t, e, globals)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = render(t, e, globals)
		}
		return out
	}
	return v
}

type request struct {
	URL     string
	Options map[string]any
}

type response struct {
	Status int
	Body   any
}

type outcome struct {
	requests []request
	prints   []string
	err      error
}

// invoke runs a template for the sample event with a fake fetch that
// records each request and answers with the next response.
func invoke(t *testing.T, id string, given map[string]any, responses ...response) outcome {
	t.Helper()
	tpl, ok := mustLoad(t).Get(id)
	if !ok {
		t.Fatalf("no template %s", id)
	}
	globals := sampleGlobals()
	globals["inputs"] = evalInputs(t, tpl, given, globals)

	p, err := compiler.Compile(tpl.Hog, compiler.Options{Functions: templates.HostFunctions()})
	if err != nil {
		t.Fatal(err)
	}
	linked, err := vm.Link(p, stl.Library())
	if err != nil {
		t.Fatal(err)
	}
	var out outcome
	m := vm.New(vm.Options{
		AsyncFunctions: []string{"fetch"},
		Print:          func(line string) { out.prints = append(out.prints, line) },
		MaxAsyncSteps:  5,
	})
	ctx := context.Background()
	res, err := m.Run(ctx, linked, vm.FromGo(globals))
	for err == nil && res.Async != nil {
		if res.Async.Name != "fetch" || len(res.Async.Args) != 2 {
			t.Fatalf("unexpected async call %s with %d args", res.Async.Name, len(res.Async.Args))
		}
		url, _ := res.Async.Args[0].ToGo().(string)
		opts, _ := res.Async.Args[1].ToGo().(map[string]any)
		out.requests = append(out.requests, request{url, opts})
		if len(responses) == 0 {
			t.Fatalf("fetch called more often than expected")
		}
		r := responses[0]
		responses = responses[1:]
		res, err = m.Resume(ctx, res.Async.State, vm.FromGo(map[string]any{"status": r.Status, "body": r.Body}))
	}
	if err == nil && !res.Finished {
		t.Fatal("run neither finished nor failed")
	}
	out.err = err
	return out
}

func jsonEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("%s =\n  %s\nwant\n  %s", what, g, w)
	}
}

func thrown(t *testing.T, err error, msg string) {
	t.Helper()
	var te *vm.ThrownError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v (%T), want a thrown Error", err, err)
	}
	if te.Type != "Error" || te.Message != msg {
		t.Errorf("thrown %s(%q), want Error(%q)", te.Type, te.Message, msg)
	}
}

func TestWebhookRequest(t *testing.T) {
	out := invoke(t, "webhook", map[string]any{"url": "https://example.com/hook"}, response{200, map[string]any{"ok": true}})
	if out.err != nil {
		t.Fatal(out.err)
	}
	if len(out.requests) != 1 {
		t.Fatalf("%d requests, want 1", len(out.requests))
	}
	r := out.requests[0]
	if r.URL != "https://example.com/hook" {
		t.Errorf("URL = %q", r.URL)
	}
	g := sampleGlobals()
	jsonEqual(t, "request", r.Options, map[string]any{
		"method":  "POST",
		"headers": map[string]any{"Content-Type": "application/json"},
		"body":    map[string]any{"event": g["event"], "person": g["person"]},
	})
	if len(out.prints) != 0 {
		t.Errorf("printed %q without debug", out.prints)
	}
}

func TestWebhookCustomInputs(t *testing.T) {
	out := invoke(t, "webhook", map[string]any{
		"url":     "https://example.com/{event.distinct_id}",
		"method":  "PUT",
		"headers": map[string]any{"Authorization": "Bearer {project.id}", "X-Event": "{event.event}"},
		"body":    map[string]any{"who": "{person.properties.name}", "count": "{event.properties.count}", "list": []any{"{event.event}", 1}},
	}, response{204, ""})
	if out.err != nil {
		t.Fatal(out.err)
	}
	r := out.requests[0]
	if r.URL != "https://example.com/user-1" {
		t.Errorf("URL = %q", r.URL)
	}
	jsonEqual(t, "request", r.Options, map[string]any{
		"method":  "PUT",
		"headers": map[string]any{"Authorization": "Bearer 1", "X-Event": "$pageview"},
		"body":    map[string]any{"count": 3, "list": []any{"$pageview", 1}, "who": "Ann"},
	})
}

func TestWebhookFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp response
		msg  string
	}{
		{"server error", response{500, "oops"}, "Webhook failed: HTTP 500: oops"},
		{"client error with JSON", response{404, map[string]any{"error": "not found"}}, `Webhook failed: HTTP 404: {"error":"not found"}`},
		{"redirect", response{301, ""}, "Webhook failed: HTTP 301: "},
		{"long body", response{502, strings.Repeat("x", 5000)}, "Webhook failed: HTTP 502: " + strings.Repeat("x", 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := invoke(t, "webhook", map[string]any{"url": "https://example.com/hook"}, tc.resp)
			thrown(t, out.err, tc.msg)
		})
	}
	for _, status := range []int{200, 201, 202, 204, 299} {
		if out := invoke(t, "webhook", map[string]any{"url": "https://example.com/hook"}, response{status, ""}); out.err != nil {
			t.Errorf("HTTP %d: %v", status, out.err)
		}
	}
}

func TestWebhookDebug(t *testing.T) {
	out := invoke(t, "webhook", map[string]any{"url": "https://example.com/hook", "debug": true, "method": "GET", "body": nil},
		response{500, "down"})
	thrown(t, out.err, "Webhook failed: HTTP 500: down")
	if len(out.prints) != 2 {
		t.Fatalf("prints = %q, want a request and a response line", out.prints)
	}
	if !strings.HasPrefix(out.prints[0], "Request https://example.com/hook ") || !strings.Contains(out.prints[0], "'GET'") {
		t.Errorf("request line = %q", out.prints[0])
	}
	if out.prints[1] != "Response 500 down" {
		t.Errorf("response line = %q", out.prints[1])
	}
}

const slackURL = "https://hooks.slack.com/services/T000/B000/secretsecret"

func TestSlackRequest(t *testing.T) {
	out := invoke(t, "slack", map[string]any{"webhook_url": slackURL}, response{200, "ok"})
	if out.err != nil {
		t.Fatal(out.err)
	}
	if len(out.requests) != 1 || out.requests[0].URL != slackURL {
		t.Fatalf("requests = %v", out.requests)
	}
	text := "*ann@example.com* triggered event: '$pageview'"
	mrkdwn := func(s string) map[string]any { return map[string]any{"type": "mrkdwn", "text": s} }
	jsonEqual(t, "request", out.requests[0].Options, map[string]any{
		"method":  "POST",
		"headers": map[string]any{"Content-Type": "application/json"},
		"body": map[string]any{
			"text": text,
			"blocks": []any{
				map[string]any{"type": "section", "text": mrkdwn(text)},
				map[string]any{"type": "context", "elements": []any{
					mrkdwn("Project: <https://hogwire.example/project/1|Acme>"),
					mrkdwn("<https://hogwire.example/project/1/person/user-1|View person>"),
					mrkdwn("<https://hogwire.example/project/1/events/0190f7f0-0000-7000-8000-000000000001/2024-05-03T12%3A00%3A00.000Z|View event>"),
					mrkdwn("Sent by <https://hogwire.example/project/1/functions/d1/configuration/|Sales alerts>"),
				}},
			},
		},
	})
}

func TestSlackTextOnly(t *testing.T) {
	for _, blocks := range []any{nil, []any{}} {
		out := invoke(t, "slack", map[string]any{"webhook_url": slackURL, "text": "New signup: {person.properties.email}", "blocks": blocks},
			response{200, "ok"})
		if out.err != nil {
			t.Fatal(out.err)
		}
		jsonEqual(t, "body", out.requests[0].Options["body"], map[string]any{"text": "New signup: ann@example.com"})
	}
}

func TestSlackFailures(t *testing.T) {
	for _, tc := range []struct {
		resp response
		msg  string
	}{
		{response{400, "invalid_payload"}, "Slack webhook failed: HTTP 400: invalid_payload"},
		{response{403, "action_prohibited"}, "Slack webhook failed: HTTP 403: action_prohibited"},
		{response{404, "no_service"}, "Slack webhook failed: HTTP 404: no_service"},
		{response{404, "channel_not_found"}, "Slack webhook failed: HTTP 404: channel_not_found"},
		{response{410, "channel_is_archived"}, "Slack webhook failed: HTTP 410: channel_is_archived"},
		{response{500, "rollup_error"}, "Slack webhook failed: HTTP 500: rollup_error"},
		{response{302, ""}, "Slack webhook failed: HTTP 302: "},
	} {
		out := invoke(t, "slack", map[string]any{"webhook_url": slackURL}, tc.resp)
		thrown(t, out.err, tc.msg)
	}
}

func TestSlackDebugHidesWebhookURL(t *testing.T) {
	out := invoke(t, "slack", map[string]any{"webhook_url": slackURL, "debug": true}, response{400, "invalid_payload"})
	thrown(t, out.err, "Slack webhook failed: HTTP 400: invalid_payload")
	if len(out.prints) != 2 || !strings.HasPrefix(out.prints[0], "Request ") || out.prints[1] != "Response 400 invalid_payload" {
		t.Fatalf("prints = %q", out.prints)
	}
	for _, line := range out.prints {
		if strings.Contains(line, "secretsecret") {
			t.Errorf("debug output leaks the webhook URL: %q", line)
		}
	}
}

func BenchmarkWebhook(b *testing.B) {
	tpl, _ := mustLoad(b).Get("webhook")
	p, err := compiler.Compile(tpl.Hog, compiler.Options{Functions: templates.HostFunctions()})
	if err != nil {
		b.Fatal(err)
	}
	linked, _ := vm.Link(p, stl.Library())
	g := sampleGlobals()
	g["inputs"] = map[string]any{
		"url": "https://example.com/hook", "method": "POST", "headers": map[string]any{"Content-Type": "application/json"},
		"body": map[string]any{"event": g["event"], "person": g["person"]}, "debug": false,
	}
	globals := vm.FromGo(g)
	m := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}})
	ok := vm.FromGo(map[string]any{"status": 200, "body": "ok"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := m.Run(ctx, linked, globals)
		if err != nil || res.Async == nil {
			b.Fatal(err)
		}
		if res, err = m.Resume(ctx, res.Async.State, ok); err != nil || !res.Finished {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := templates.Load(); err != nil {
			b.Fatal(err)
		}
	}
}
