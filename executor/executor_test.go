package executor_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

var (
	errorLevel = hogwirev1.LogLevel_LOG_LEVEL_ERROR
	warnLevel  = hogwirev1.LogLevel_LOG_LEVEL_WARN
)

func TestFilters(t *testing.T) {
	chrome := &hogwirev1.PropertyFilter{Key: "$browser", Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT, Value: structpb.NewStringValue("Chrome")}
	pro := &hogwirev1.PropertyFilter{Key: "plan", Scope: hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON, Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT, Value: structpb.NewStringValue("pro")}
	for _, c := range []struct {
		name    string
		filters *hogwirev1.Filters
		browser string
		want    executor.Status
	}{
		{"no filters", nil, "Chrome", executor.Succeeded},
		{"event and property match", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview", Properties: []*hogwirev1.PropertyFilter{chrome}}}}, "Chrome", executor.Succeeded},
		{"property does not match", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview", Properties: []*hogwirev1.PropertyFilter{chrome}}}}, "Safari", executor.Filtered},
		{"other event", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "signed_up"}}}, "Chrome", executor.Filtered},
		{"person property", &hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{pro}}, "Chrome", executor.Succeeded},
		{"expression", &hogwirev1.Filters{Expression: "properties.$browser = 'Chrome' and pdi.person.properties.plan = 'pro'"}, "Chrome", executor.Succeeded},
		// Only an exact true matches, as in PostHog.
		{"truthy is not true", &hogwirev1.Filters{Expression: "1"}, "Chrome", executor.Filtered},
		{"error", &hogwirev1.Filters{Expression: "jsonParse(properties.$browser) = 1"}, "Chrome", executor.FilterFailed},
		// A filter cannot wait: one that calls an async function fails.
		{"async", &hogwirev1.Filters{Expression: "sleep(1) = 1"}, "Chrome", executor.FilterFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &recorder{}
			d := prepare(t, spec{hog: "fetch('https://example.com')", filters: c.filters})
			res := invoke(t, d, event(t, map[string]any{"$browser": c.browser}), executor.Options{Fetcher: f})
			if res.Status != c.want {
				t.Fatalf("status = %v, want %v (%s)", res.Status, c.want, dump(res))
			}
			if ran := len(f.reqs) > 0; ran != (c.want == executor.Succeeded) {
				t.Errorf("program ran = %v with status %v", ran, res.Status)
			}
			if c.want == executor.FilterFailed {
				if res.Status.Metric() != "filtering_failed" {
					t.Errorf("metric = %q", res.Status.Metric())
				}
				logs := messages(res, errorLevel)
				if len(logs) != 1 || !strings.HasPrefix(logs[0], "Error filtering event 0190f7f0-0000-7000-8000-000000000001: ") || res.Error == "" {
					t.Errorf("filter error not reported: %s", dump(res))
				}
				if c.name == "async" && !strings.Contains(res.Error, "the filter did not finish") {
					t.Errorf("async filter: error %q", res.Error)
				}
			}
			if c.want == executor.Filtered && len(res.Logs) != 0 {
				t.Errorf("filtered invocation logged %q", messages(res, 0))
			}
		})
	}

	// SkipFilters runs the program anyway.
	d := prepare(t, spec{hog: "return 1", filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "other"}}}})
	if res := invoke(t, d, event(t, nil), executor.Options{SkipFilters: true}); res.Status != executor.Succeeded || res.Value.AsNumber() != 1 {
		t.Errorf("SkipFilters: %s", dump(res))
	}
}

func TestInputs(t *testing.T) {
	no := false
	d := prepare(t, spec{
		hog: "return inputs",
		schema: []*hogwirev1.InputSchema{
			{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
			{Key: "greeting", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
			{Key: "props", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
			{Key: "raw", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Templating: &no},
			{Key: "count", Type: hogwirev1.InputType_INPUT_TYPE_NUMBER},
			{Key: "headers", Type: hogwirev1.InputType_INPUT_TYPE_DICTIONARY},
			{Key: "body", Type: hogwirev1.InputType_INPUT_TYPE_JSON},
		},
		inputs: map[string]any{
			"url":      "https://example.com/{event.event}",
			"greeting": "Hi {person.properties.email}, from {inputs.url}",
			"props":    "{event.properties}",
			"raw":      "{not a template}",
			"count":    3,
			"headers":  map[string]any{"Authorization": "Bearer {person.properties.plan}", "X-Static": "yes"},
			"body": map[string]any{
				"event": "{event}",
				"list":  []any{"{event.distinct_id}", 1, true, nil},
				"nested": map[string]any{
					"$$_extend_object": "{event.properties}",
					"$browser":         "overridden",
					"count":            "{inputs.count}",
				},
			},
		},
	})
	res := invoke(t, d, event(t, nil), executor.Options{})
	if res.Status != executor.Succeeded {
		t.Fatal(dump(res))
	}
	got := res.Value.ToGo().(map[string]any)
	ev := printed(t, event(t, nil), "event")
	want := map[string]any{
		"url":      "https://example.com/$pageview",
		"greeting": "Hi max@acme.example, from https://example.com/$pageview",
		"props":    map[string]any{"$browser": "Chrome", "$current_url": "https://acme.example/pricing"},
		"raw":      "{not a template}",
		"count":    int64(3),
		"headers":  map[string]any{"Authorization": "Bearer pro", "X-Static": "yes"},
		"body": map[string]any{
			"event": ev,
			"list":  []any{"user-1", int64(1), true, nil},
			"nested": map[string]any{
				"$browser": "overridden", "$current_url": "https://acme.example/pricing", "count": int64(3),
			},
		},
	}
	// printed decodes numbers as float64; compare through JSON.
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("inputs =\n %s\nwant\n %s", gj, wj)
	}
}

// Templates that only read a global ({event.properties.x}) are looked up
// without the VM; they must give what the VM gives, and the program must
// still get its own copy of what they return.
func TestPathTemplates(t *testing.T) {
	str := hogwirev1.InputType_INPUT_TYPE_STRING
	d := prepare(t, spec{
		hog: `
let ev := inputs.ev
ev.properties.$browser := 'changed by the program'
return {'inputs': inputs, 'browser': event.properties.$browser}`,
		schema: []*hogwirev1.InputSchema{{Key: "path", Type: str}, {Key: "vm", Type: str}, {Key: "missing", Type: str},
			{Key: "ev", Type: str}, {Key: "again", Type: str}},
		inputs: map[string]any{
			"path":    "{event.properties.$browser}",
			"vm":      "{event.properties['$browser']}", // a property access: run by the VM
			"missing": "{event.properties.nope.deeper}",
			"ev":      "{event}",
			"again":   "{inputs.path}",
		},
	})
	g := executor.NewEvent(event(t, nil), project, source)
	for range 2 { // the second run sees globals the first did not change
		res := d.Invoke(context.Background(), g, executor.Options{})
		if res.Status != executor.Succeeded {
			t.Fatal(dump(res))
		}
		got := res.Value.ToGo().(map[string]any)
		in := got["inputs"].(map[string]any)
		if in["path"] != "Chrome" || in["vm"] != "Chrome" || in["again"] != "Chrome" || in["missing"] != nil {
			t.Errorf("inputs %v", in)
		}
		if got["browser"] != "Chrome" {
			t.Errorf("event.properties.$browser = %v after the program changed its copy of inputs.ev", got["browser"])
		}
		if b := in["ev"].(map[string]any)["properties"].(map[string]any)["$browser"]; b != "Chrome" {
			t.Errorf("inputs.ev.properties.$browser = %v: the program's change reached the input", b)
		}
	}

	unknown := prepare(t, spec{
		hog:    "return inputs",
		schema: []*hogwirev1.InputSchema{{Key: "x", Type: str}},
		inputs: map[string]any{"x": "{nope.deeper}"},
	})
	res := invoke(t, unknown, event(t, nil), executor.Options{})
	if res.Status == executor.Succeeded || !strings.Contains(res.Error, "Global variable not found: nope.deeper") {
		t.Errorf("unknown global: %s", dump(res))
	}
}

func TestInputError(t *testing.T) {
	d := prepare(t, spec{
		hog:    "fetch(inputs.url)",
		schema: []*hogwirev1.InputSchema{{Key: "ok", Type: hogwirev1.InputType_INPUT_TYPE_STRING}, {Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING}},
		inputs: map[string]any{"ok": "fine", "url": "{jsonParse('not json')}"},
	})
	f := &recorder{}
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: f})
	if res.Status != executor.InputsFailed || res.Status.Metric() != "inputs_failed" {
		t.Fatalf("%s", dump(res))
	}
	logs := messages(res, errorLevel)
	if len(logs) != 1 || !strings.HasPrefix(logs[0], "Error building inputs: Could not execute bytecode for input field: url: ") {
		t.Errorf("logs = %q", logs)
	}
	if len(f.reqs) != 0 {
		t.Error("the program ran")
	}
}

// The webhook template's request, exactly.
func TestWebhookRequest(t *testing.T) {
	d := prepare(t, spec{
		hog: `
let payload := {'headers': inputs.headers, 'body': inputs.body, 'method': inputs.method}
let res := fetch(inputs.url, payload)
if (res.status >= 300) {
    throw Error(f'Webhook failed with status {res.status}: {res.body}')
}
return res.body`,
		schema: []*hogwirev1.InputSchema{
			{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
			{Key: "method", Type: hogwirev1.InputType_INPUT_TYPE_CHOICE},
			{Key: "body", Type: hogwirev1.InputType_INPUT_TYPE_JSON},
			{Key: "headers", Type: hogwirev1.InputType_INPUT_TYPE_DICTIONARY},
		},
		inputs: map[string]any{
			"url":     "https://hooks.example.com/{project.id}",
			"method":  "POST",
			"body":    map[string]any{"event": "{event.event}", "person": "{person.id}", "props": "{event.properties}"},
			"headers": map[string]any{"Content-Type": "application/json", "X-Distinct": "{event.distinct_id}"},
		},
	})
	f := &recorder{}
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: f})
	if res.Status != executor.Succeeded {
		t.Fatal(dump(res))
	}
	if len(f.reqs) != 1 || len(res.Fetches) != 1 {
		t.Fatalf("%d requests, %d records", len(f.reqs), len(res.Fetches))
	}
	req := f.reqs[0]
	if req.Method != "POST" || req.URL != "https://hooks.example.com/acme" {
		t.Errorf("request line = %s %s", req.Method, req.URL)
	}
	if want := map[string]string{"Content-Type": "application/json", "X-Distinct": "user-1"}; !reflect.DeepEqual(flat(req.Header), want) {
		t.Errorf("headers = %v, want %v", flat(req.Header), want)
	}
	const body = `{"event":"$pageview","person":"0190f7f0-0000-7000-8000-0000000000aa","props":{"$browser":"Chrome","$current_url":"https://acme.example/pricing"}}`
	if string(req.Body) != body {
		t.Errorf("body = %s\nwant   %s", req.Body, body)
	}
	if f.policies[0].Timeout != executor.DefaultFetchTimeout {
		t.Errorf("timeout = %v", f.policies[0].Timeout)
	}
	if res.Fetches[0].Response.Status != 200 || res.Fetches[0].Request.URL != req.URL {
		t.Errorf("record = %+v", res.Fetches[0])
	}
	if logs := messages(res, hogwirev1.LogLevel_LOG_LEVEL_DEBUG); len(logs) != 1 || !strings.HasPrefix(logs[0], "Function completed in ") ||
		!strings.HasSuffix(logs[0], "Event: 'https://hogwire.example/projects/acme/events/0190f7f0-0000-7000-8000-000000000001/2024-05-03T12%3A00%3A00.000Z'") {
		t.Errorf("completion log = %q", logs)
	} else if !completedLine.MatchString(logs[0]) {
		t.Errorf("completion log = %q, want it to match %s", logs[0], completedLine)
	}
	quiet := invoke(t, d, event(t, nil), executor.Options{Fetcher: f, NoDebugLogs: true})
	if logs := messages(quiet, hogwirev1.LogLevel_LOG_LEVEL_DEBUG); quiet.Status != executor.Succeeded || len(logs) != 0 {
		t.Errorf("NoDebugLogs: status %v, debug logs %q", quiet.Status, logs)
	}
	if m, _ := res.Value.ToGo().(map[string]any); m["ok"] != true {
		t.Errorf("returned %v, want the parsed body", res.Value.ToGo())
	}

	// A 4xx reaches the code, which throws.
	f.respond = func(*fetch.Request) (*fetch.Response, error) {
		return &fetch.Response{Status: 404, Body: []byte("not here")}, nil
	}
	res = invoke(t, d, event(t, nil), executor.Options{Fetcher: f})
	if res.Status != executor.Failed || res.Error != "Error('Webhook failed with status 404: not here')" {
		t.Errorf("%s", dump(res))
	}
}

func TestFetchNormalisation(t *testing.T) {
	for _, c := range []struct {
		name, call string
		method     string
		headers    map[string]string
		body       string // "<nil>" for none
	}{
		{"defaults", `fetch('https://x.test')`, "POST", map[string]string{"Content-Type": "application/json"}, "<nil>"},
		{"lower-case method", `fetch('https://x.test', {'method': 'put', 'body': 'raw'})`, "PUT", map[string]string{"Content-Type": "application/json"}, "raw"},
		{"GET sends no body", `fetch('https://x.test', {'method': 'GET', 'body': {'a': 1}})`, "GET", map[string]string{"Content-Type": "application/json"}, "<nil>"},
		{"HEAD sends no body", `fetch('https://x.test', {'method': 'head', 'body': 'x'})`, "HEAD", map[string]string{"Content-Type": "application/json"}, "<nil>"},
		{"dict body is JSON", `fetch('https://x.test', {'body': {'a': 1, 'b': [true, null, 'x'], 'c': 1.5}})`, "POST", map[string]string{"Content-Type": "application/json"}, `{"a":1,"b":[true,null,"x"],"c":1.5}`},
		{"number body is JSON", `fetch('https://x.test', {'body': 42})`, "POST", map[string]string{"Content-Type": "application/json"}, `42`},
		{"falsy body is not sent", `fetch('https://x.test', {'body': ''})`, "POST", map[string]string{"Content-Type": "application/json"}, "<nil>"},
		{"given headers replace the default", `fetch('https://x.test', {'headers': {'X-A': 'a'}})`, "POST", map[string]string{"X-A": "a"}, "<nil>"},
		{"non-string header values dropped", `fetch('https://x.test', {'headers': {'X-A': 'a', 'X-N': 1, 'X-D': {'x': 1}, 'X-Null': null}})`, "POST", map[string]string{"X-A": "a"}, "<nil>"},
		{"empty headers stay empty", `fetch('https://x.test', {'headers': {}})`, "POST", map[string]string{}, "<nil>"},
		{"null headers default", `fetch('https://x.test', {'headers': null})`, "POST", map[string]string{"Content-Type": "application/json"}, "<nil>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &recorder{}
			res := invoke(t, prepare(t, spec{hog: c.call}), event(t, nil), executor.Options{Fetcher: f})
			if res.Status != executor.Succeeded || len(f.reqs) != 1 {
				t.Fatal(dump(res))
			}
			req := f.reqs[0]
			body := "<nil>"
			if req.Body != nil {
				body = string(req.Body)
			}
			if req.Method != c.method || !reflect.DeepEqual(flat(req.Header), c.headers) || body != c.body || req.URL != "https://x.test" {
				t.Errorf("request = %s %s %v %s, want %s %v %s", req.Method, req.URL, flat(req.Header), body, c.method, c.headers, c.body)
			}
		})
	}

	res := invoke(t, prepare(t, spec{hog: `fetch(42)`}), event(t, nil), executor.Options{Fetcher: &recorder{}})
	if res.Status != executor.Failed || !strings.Contains(res.Error, "url must be a string") {
		t.Errorf("fetch(42): %s", dump(res))
	}
	res = invoke(t, prepare(t, spec{hog: `fetch('https://x.test')`}), event(t, nil), executor.Options{})
	if res.Status != executor.Failed || !strings.Contains(res.Error, "no fetcher") {
		t.Errorf("no Fetcher: %s", dump(res))
	}
}

func TestFetchResponse(t *testing.T) {
	d := prepare(t, spec{hog: `let r := fetch('https://x.test'); return [r.status, r.body, typeof(r.body), r.headers]`})
	for _, c := range []struct {
		body string
		want string
	}{
		{`{"a":[1,2]}`, `[201,{"a":[1,2]},"object",null]`},
		{`"quoted"`, `[201,"quoted","string",null]`},
		{`not json`, `[201,"not json","string",null]`},
		{``, `[201,"","string",null]`},
	} {
		f := &recorder{respond: func(*fetch.Request) (*fetch.Response, error) {
			return &fetch.Response{Status: 201, Header: http.Header{"X": {"y"}}, Body: []byte(c.body)}, nil
		}}
		res := invoke(t, d, event(t, nil), executor.Options{Fetcher: f})
		got, _ := json.Marshal(res.Value)
		if res.Status != executor.Succeeded || string(got) != c.want {
			t.Errorf("body %q: got %s (%s), want %s", c.body, got, dump(res), c.want)
		}
	}
}

// A fetch without a response fails the invocation with its kind and phase;
// it is never turned into a made-up HTTP status.
func TestFetchErrors(t *testing.T) {
	d := prepare(t, spec{hog: `
try {
	let r := fetch('https://slow.example/hook')
	print('resumed with', r)
} catch (e) {
	print('caught', e)
}
fetch('https://never.example')`})
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"timeout with phase", &fetch.TimeoutError{Phase: fetch.PhaseResponse, After: 10 * time.Second},
			"fetch to https://slow.example/hook timed out while waiting for the response after 10s"},
		{"connection", &fetch.ConnError{Kind: fetch.ConnRefused, Addr: "slow.example:443", Err: errors.New("connection refused")},
			"fetch to https://slow.example/hook could not connect while connecting: connection error (refused) to slow.example:443: connection refused"},
		{"egress guard", &fetch.EgressError{Addr: netip.MustParseAddr("127.0.0.1"), Reason: "loopback"},
			"fetch to https://slow.example/hook was refused by the egress guard (egress_refused): egress to 127.0.0.1 denied (loopback address)"},
		{"plain deadline", fmt.Errorf("dial: %w", context.DeadlineExceeded),
			"fetch to https://slow.example/hook timed out after 10s: dial: context deadline exceeded"},
		{"other", errors.New("boom"), "fetch to https://slow.example/hook failed: boom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &recorder{respond: func(*fetch.Request) (*fetch.Response, error) { return nil, c.err }}
			res := invoke(t, d, event(t, nil), executor.Options{Fetcher: f})
			if res.Status != executor.Failed || res.Error != c.want {
				t.Fatalf("got %s\nwant error %q", dump(res), c.want)
			}
			if len(f.reqs) != 1 || len(messages(res, info)) != 0 {
				t.Errorf("the code went on after the failed fetch: %s", dump(res))
			}
			if len(res.Fetches) != 1 || !errors.Is(res.Fetches[0].Err, c.err) || res.Fetches[0].Response != nil {
				t.Errorf("fetch record = %+v", res.Fetches)
			}
			if logs := messages(res, errorLevel); len(logs) != 1 || logs[0] != "Error executing function on event 0190f7f0-0000-7000-8000-000000000001: "+c.want {
				t.Errorf("logs = %q", logs)
			}
		})
	}
}

func TestThrow(t *testing.T) {
	d := prepare(t, spec{hog: `print('before'); throw Error('missing email')`})
	res := invoke(t, d, event(t, nil), executor.Options{})
	if res.Status != executor.Failed || res.Error != "Error('missing email')" || res.Status.Metric() != "failed" {
		t.Fatal(dump(res))
	}
	if got := messages(res, 0); len(got) != 2 || got[0] != "before" || got[1] != "Error executing function on event 0190f7f0-0000-7000-8000-000000000001: Error('missing email')" {
		t.Errorf("logs = %q", got)
	}
	if res.Logs[1].Level != errorLevel {
		t.Errorf("level = %v", res.Logs[1].Level)
	}
}

func TestPrint(t *testing.T) {
	d := prepare(t, spec{hog: `print('a', 1, 1.5, true, null, {'k': [1, 'x']}, [])`})
	res := invoke(t, d, event(t, nil), executor.Options{})
	if got := messages(res, info); len(got) != 1 || got[0] != `a, 1, 1.5, true, null, {"k":[1,"x"]}, []` {
		t.Errorf("print = %q", got)
	}
	if res.Logs[0].Time.IsZero() {
		t.Error("no time")
	}

	// PostHog's cap: the 25th print() becomes a warning; later ones are dropped.
	d = prepare(t, spec{hog: `for (let i := 0; i < 40; i := i + 1) { print(i) }`})
	res = invoke(t, d, event(t, nil), executor.Options{})
	got := messages(res, info)
	if len(got) != 24 || got[0] != "0" || got[23] != "23" {
		t.Errorf("kept %d lines: %q", len(got), got)
	}
	warn := messages(res, warnLevel)
	if len(warn) != 1 || warn[0] != "Function exceeded maximum log entries. No more logs will be collected. Event: 0190f7f0-0000-7000-8000-000000000001" {
		t.Errorf("warnings = %q", warn)
	}
	res = invoke(t, d, event(t, nil), executor.Options{MaxLogs: 3})
	if got := messages(res, info); len(got) != 2 {
		t.Errorf("MaxLogs 3 kept %q", got)
	}

	// Long messages are cut like PostHog's.
	d = prepare(t, spec{hog: `let s := ''; for (let i := 0; i < 1100; i := i + 1) { s := concat(s, '0123456789') } print(s)`})
	res = invoke(t, d, event(t, nil), executor.Options{})
	if got := messages(res, info); len(got) != 1 || len(got[0]) != 10000+len("... (truncated)") || !strings.HasSuffix(got[0], "... (truncated)") {
		t.Errorf("long message: %d bytes", len(got[0]))
	}
}

func TestLimits(t *testing.T) {
	loop := `let i := 0; while (true) { i := i + 1 }`
	d := prepare(t, spec{hog: loop, limits: &hogwirev1.ExecutionLimits{MaxSteps: 10000}})
	res := invoke(t, d, event(t, nil), executor.Options{})
	if res.Status != executor.Failed || !strings.Contains(strings.ToLower(res.Error), "step") {
		t.Errorf("max_steps: %s", dump(res))
	}

	d = prepare(t, spec{hog: loop, limits: &hogwirev1.ExecutionLimits{Timeout: durationpb.New(20 * time.Millisecond)}})
	res = invoke(t, d, event(t, nil), executor.Options{})
	if res.Status != executor.Failed || !strings.HasPrefix(res.Error, "Execution timed out after 0.02 seconds") {
		t.Errorf("timeout: %s", dump(res))
	}

	d = prepare(t, spec{hog: `let a := []; for (let i := 0; i < 100000; i := i + 1) { a := arrayPushBack(a, 'some text') }`, limits: &hogwirev1.ExecutionLimits{MaxMemoryBytes: 64 << 10}})
	res = invoke(t, d, event(t, nil), executor.Options{})
	if res.Status != executor.Failed || !strings.Contains(strings.ToLower(res.Error), "memory") {
		t.Errorf("max_memory_bytes: %s", dump(res))
	}

	// Time spent waiting for fetches is not VM time.
	d = prepare(t, spec{hog: `fetch('https://x.test'); fetch('https://x.test'); return 1`, limits: &hogwirev1.ExecutionLimits{Timeout: durationpb.New(50 * time.Millisecond)}})
	slow := &recorder{respond: func(*fetch.Request) (*fetch.Response, error) {
		time.Sleep(40 * time.Millisecond)
		return &fetch.Response{Status: 200}, nil
	}}
	before := time.Now()
	if res := invoke(t, d, event(t, nil), executor.Options{Fetcher: slow}); res.Status != executor.Succeeded || res.Duration < 80*time.Millisecond || res.VMTime > res.Duration {
		t.Errorf("slow fetches: %s duration %v vm %v", dump(res), res.Duration, res.VMTime)
	} else if after := time.Now(); res.Start.Before(before) || res.Start.Add(res.Duration).After(after) {
		// Start and Duration span the invocation, within the call.
		t.Errorf("slow fetches: started %v for %v, within a call from %v to %v", res.Start, res.Duration, before, after)
	}

	many := `for (let i := 0; i < 10; i := i + 1) { fetch('https://x.test') }`
	for _, c := range []struct {
		limits *hogwirev1.ExecutionLimits
		want   int
	}{{nil, executor.DefaultMaxFetches}, {&hogwirev1.ExecutionLimits{MaxFetches: 2}, 2}} {
		f := &recorder{}
		res := invoke(t, prepare(t, spec{hog: many, limits: c.limits}), event(t, nil), executor.Options{Fetcher: f})
		if res.Status != executor.Failed || len(f.reqs) != c.want || res.Error != fmt.Sprintf("too many fetches (limits.max_fetches): Exceeded maximum number of async steps: %d", c.want) {
			t.Errorf("max_fetches %d: %d fetches, %s", c.want, len(f.reqs), dump(res))
		}
	}

	d = prepare(t, spec{hog: `fetch('https://x.test')`, limits: &hogwirev1.ExecutionLimits{FetchTimeout: durationpb.New(3 * time.Second)}})
	f := &recorder{}
	invoke(t, d, event(t, nil), executor.Options{Fetcher: f})
	if f.policies[0].Timeout != 3*time.Second {
		t.Errorf("fetch timeout = %v", f.policies[0].Timeout)
	}
}

func TestAsyncFunctionsOtherThanFetch(t *testing.T) {
	res := invoke(t, prepare(t, spec{hog: `sleep(1)`}), event(t, nil), executor.Options{})
	if res.Status != executor.Failed || res.Error != "the program paused in async function sleep, which destinations cannot call" {
		t.Errorf("%s", dump(res))
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &recorder{respond: func(*fetch.Request) (*fetch.Response, error) {
		cancel()
		return nil, context.Canceled
	}}
	d := prepare(t, spec{hog: `fetch('https://x.test')`})
	res := d.Invoke(ctx, executor.NewEvent(event(t, nil), project, source), executor.Options{Fetcher: f})
	if res.Status != executor.Failed || res.Error != "fetch to https://x.test was cancelled: context canceled" {
		t.Errorf("%s", dump(res))
	}
}

func TestPostHogCapture(t *testing.T) {
	d := prepare(t, spec{hog: `postHogCapture({'event': 'synced', 'properties': {'n': 1}})`})
	now := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	res := invoke(t, d, event(t, nil), executor.Options{Now: func() time.Time { return now }})
	want := []executor.Capture{{Event: "synced", DistinctID: "user-1", Properties: map[string]any{"n": int64(1), "$hog_function_execution_count": int64(1)}, Time: now}}
	if res.Status != executor.Succeeded || !reflect.DeepEqual(res.Captures, want) {
		t.Errorf("captures = %+v (%s)", res.Captures, dump(res))
	}

	// The loop guard counts executions through the property.
	res = invoke(t, d, event(t, map[string]any{"$hog_function_execution_count": 3}), executor.Options{})
	if len(res.Captures) != 1 || res.Captures[0].Properties["$hog_function_execution_count"] != int64(4) {
		t.Errorf("count 3: %+v", res.Captures)
	}
	res = invoke(t, d, event(t, map[string]any{"$hog_function_execution_count": 10}), executor.Options{})
	if res.Status != executor.Succeeded || len(res.Captures) != 0 || len(messages(res, warnLevel)) != 1 {
		t.Errorf("count 10: %+v %s", res.Captures, dump(res))
	}

	for hog, want := range map[string]string{
		`postHogCapture({'event': 'a', 'distinct_id': 'x'}); postHogCapture({'event': 'b'})`: "postHogCapture was called more than once. Only one call is allowed per function",
		`postHogCapture({'properties': {}})`:                                                 "[HogFunction] - postHogCapture call missing 'event' property",
	} {
		res := invoke(t, prepare(t, spec{hog: hog}), event(t, nil), executor.Options{})
		if res.Status != executor.Failed || !strings.Contains(res.Error, want) {
			t.Errorf("%s: %s", hog, dump(res))
		}
	}
}

func TestRedact(t *testing.T) {
	d := prepare(t, spec{
		hog: `
print('key is', inputs.apiKey, 'auth', inputs.auth)
let r := fetch(f'https://api.example/v1?key={inputs.apiKey}', {'headers': {'Authorization': f'Bearer {inputs.auth.token}'}, 'body': {'key': inputs.apiKey, 'quote': inputs.auth.quoted}})
throw Error(f'failed with {inputs.apiKey}: {r.body}')`,
		schema: []*hogwirev1.InputSchema{
			{Key: "apiKey", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true},
			{Key: "auth", Type: hogwirev1.InputType_INPUT_TYPE_JSON, Secret: true},
			{Key: "public", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
		},
		inputs: map[string]any{
			"apiKey": "sk-{event.distinct_id}-42",
			"auth":   map[string]any{"token": "tok_abc", "quoted": `say "hi"`},
			"public": "visible",
		},
	})
	f := &recorder{respond: func(req *fetch.Request) (*fetch.Response, error) {
		return &fetch.Response{Status: 500, Header: http.Header{"X-Echo": {"sk-user-1-42"}}, Body: []byte("echo sk-user-1-42")}, nil
	}}
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: f})
	if res.Status != executor.Failed || !strings.Contains(res.Error, "sk-user-1-42") {
		t.Fatalf("before redaction: %s", dump(res))
	}
	raw := f.reqs[0]
	res.Redact()
	secrets := []string{"sk-user-1-42", "tok_abc", `say "hi"`, `say \"hi\"`}
	var all []string
	all = append(all, res.Error)
	all = append(all, messages(res, 0)...)
	req := res.Fetches[0].Request
	all = append(all, req.URL, req.Header.Get("Authorization"), string(req.Body), res.Fetches[0].Response.Header.Get("X-Echo"), string(res.Fetches[0].Response.Body))
	for _, s := range all {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("%q still holds %q", s, secret)
			}
		}
	}
	if req.URL != "https://api.example/v1?key=<redacted>" || req.Header.Get("Authorization") != "Bearer <redacted>" ||
		string(req.Body) != `{"key":"<redacted>","quote":"<redacted>"}` || res.Error != "Error('failed with <redacted>: echo <redacted>')" {
		t.Errorf("redacted: %s %v %s %q", req.URL, flat(req.Header), req.Body, res.Error)
	}
	if got := messages(res, info)[0]; got != `key is, <redacted>, auth, {"quoted":"<redacted>","token":"<redacted>"}` {
		t.Errorf("print = %q", got)
	}
	// The Fetcher's own request is left alone.
	if !strings.Contains(raw.URL, "sk-user-1-42") {
		t.Error("Redact changed the request the Fetcher received")
	}

	// As in PostHog, credential-named inputs and credential-named headers of
	// dictionary inputs are redacted even when not secret.
	d = prepare(t, spec{
		hog: `print(inputs.headers, inputs.api_key); fetch('https://x.test', {'headers': inputs.headers})`,
		schema: []*hogwirev1.InputSchema{
			{Key: "headers", Type: hogwirev1.InputType_INPUT_TYPE_DICTIONARY},
			{Key: "api_key", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
		},
		inputs: map[string]any{
			"headers": map[string]any{"Authorization": "Bearer abc123", "X-Api-Key": "k-{event.distinct_id}", "Accept": "application/json"},
			"api_key": "plain-key",
		},
	})
	f = &recorder{}
	res = invoke(t, d, event(t, nil), executor.Options{Fetcher: f, Redact: true})
	if got := messages(res, info); len(got) != 1 || got[0] != `{"Accept":"application/json","Authorization":"<redacted>","X-Api-Key":"<redacted>"}, <redacted>` {
		t.Errorf("credential names: %q", got)
	}
	if h := flat(res.Fetches[0].Request.Header); h["Authorization"] != "<redacted>" || h["Accept"] != "application/json" {
		t.Errorf("headers = %v", h)
	}
	if f.reqs[0].Header.Get("Authorization") != "Bearer abc123" {
		t.Errorf("the request sent was changed: %v", f.reqs[0].Header)
	}

	// Options.Redact does it before returning; a non-secret input is kept.
	d = prepare(t, spec{
		hog:    `print(inputs.public, inputs.apiKey)`,
		schema: []*hogwirev1.InputSchema{{Key: "apiKey", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true}, {Key: "public", Type: hogwirev1.InputType_INPUT_TYPE_STRING}},
		inputs: map[string]any{"apiKey": "hunter2", "public": "visible"},
	})
	res = invoke(t, d, event(t, nil), executor.Options{Redact: true})
	if got := messages(res, info); len(got) != 1 || got[0] != "visible, <redacted>" {
		t.Errorf("Options.Redact: %q", got)
	}
}

// A secret whose template renders differently per event is redacted in
// each invocation, also when the previous one's redactor is cached; with
// FetchStatusOnly the fetch records keep their status, method and
// redacted URL only.
func TestRedactionPerEventAndStatusOnly(t *testing.T) {
	d := prepare(t, spec{
		hog:    `let r := fetch(f'https://x.test/?k={inputs.key}'); print('sent', inputs.key); throw Error(f'no {inputs.key}')`,
		schema: []*hogwirev1.InputSchema{{Key: "key", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true}},
		inputs: map[string]any{"key": "{event.properties.token}"},
	})
	f := &recorder{respond: func(*fetch.Request) (*fetch.Response, error) {
		return &fetch.Response{Status: 202, Body: []byte(`{}`), Header: http.Header{"X-Id": {"1"}}}, nil
	}}
	for _, token := range []string{"tok-one", "tok-two", "tok-one"} {
		res := invoke(t, d, event(t, map[string]any{"token": token}), executor.Options{Fetcher: f, Redact: true, FetchStatusOnly: true})
		if strings.Contains(dump(res), token) || !strings.Contains(res.Error, executor.Redacted) {
			t.Errorf("token %s not redacted: %s", token, dump(res))
		}
		if len(res.Fetches) != 1 || res.Fetches[0].Response.Status != 202 || res.Fetches[0].Response.Body != nil {
			t.Errorf("fetch records %+v, want the status only", res.Fetches)
		} else if req := res.Fetches[0].Request; req == nil || req.Method != "POST" || req.URL != "https://x.test/?k="+executor.Redacted ||
			len(req.Header) != 0 || len(req.Body) != 0 {
			t.Errorf("fetch request %+v, want the method and the redacted URL only", req)
		}
	}
	if got := f.reqs[len(f.reqs)-1].URL; got != "https://x.test/?k=tok-one" {
		t.Errorf("the fetch went to %s", got)
	}
	// Without a Fetcher the failed fetch's record is as short.
	res := invoke(t, d, event(t, map[string]any{"token": "tok-three"}), executor.Options{Redact: true, FetchStatusOnly: true})
	if len(res.Fetches) != 1 || res.Fetches[0].Err == nil || res.Fetches[0].Response != nil {
		t.Fatalf("no fetcher: fetch records %+v", res.Fetches)
	}
	if req := res.Fetches[0].Request; req.Method != "POST" || req.URL != "https://x.test/?k="+executor.Redacted || req.Header != nil || req.Body != nil {
		t.Errorf("no fetcher: fetch request %+v, want the method and the redacted URL only", req)
	}
}

// One prepared destination serves many events at once.
func TestConcurrentInvocations(t *testing.T) {
	d := prepare(t, spec{
		hog:    `let r := fetch(inputs.url, {'body': {'id': event.distinct_id}}); print(r.body.echo); return r.body.echo`,
		schema: []*hogwirev1.InputSchema{{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING}},
		inputs: map[string]any{"url": "https://x.test/{event.distinct_id}"},
	})
	f := &recorder{respond: func(req *fetch.Request) (*fetch.Response, error) {
		var body map[string]string
		_ = json.Unmarshal(req.Body, &body)
		b, _ := json.Marshal(map[string]string{"echo": body["id"]})
		return &fetch.Response{Status: 200, Body: b}, nil
	}}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := event(t, nil)
			ev.DistinctId = fmt.Sprintf("user-%d", i)
			g := executor.NewEvent(ev, project, source)
			for range 20 {
				res := d.Invoke(context.Background(), g, executor.Options{Fetcher: f})
				if res.Status != executor.Succeeded || res.Value.AsString() != ev.DistinctId || messages(res, info)[0] != ev.DistinctId {
					t.Errorf("user %d: %s", i, dump(res))
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestMaskingHash(t *testing.T) {
	d := prepare(t, spec{hog: "return 1", masking: "person.id"})
	g := executor.NewEvent(event(t, nil), project, source)
	h, ok, err := d.MaskingHash(context.Background(), g)
	sum := md5.Sum([]byte("0190f7f0-0000-7000-8000-0000000000aa"))
	if err != nil || !ok || h != hex.EncodeToString(sum[:]) {
		t.Errorf("MaskingHash = %q %v %v", h, ok, err)
	}
	h2, _, _ := d.MaskingHash(context.Background(), g)
	ev := event(t, nil)
	ev.Person.Id = "other"
	h3, _, _ := d.MaskingHash(context.Background(), executor.NewEvent(ev, project, source))
	if h != h2 || h == h3 {
		t.Errorf("hashes %s %s %s", h, h2, h3)
	}
	// A falsy hash does not mask.
	d = prepare(t, spec{hog: "return 1", masking: "event.properties.missing"})
	if _, ok, err := d.MaskingHash(context.Background(), g); ok || err != nil {
		t.Errorf("falsy hash: ok=%v err=%v", ok, err)
	}
	if _, ok, _ := prepare(t, spec{hog: "return 1"}).MaskingHash(context.Background(), g); ok {
		t.Error("no masking reported a hash")
	}
}

func TestPrepareErrors(t *testing.T) {
	good := compile(t, spec{hog: "return 1", inputs: map[string]any{"a": "{event}"}, schema: []*hogwirev1.InputSchema{{Key: "a", Type: hogwirev1.InputType_INPUT_TYPE_STRING}}})
	for name, mutate := range map[string]func(d *hogwirev1.Destination){
		"program bytecode": func(d *hogwirev1.Destination) { d.Bytecode = []byte(`{"not": "bytecode"}`) },
		"no bytecode":      func(d *hogwirev1.Destination) { d.Bytecode = nil },
		"filters bytecode": func(d *hogwirev1.Destination) { d.Filters.Bytecode = []byte(`["_H", 99]`) },
		"filters were not compiled": func(d *hogwirev1.Destination) {
			d.Filters = &hogwirev1.Filters{Expression: "true"}
		},
		`input "a"`: func(d *hogwirev1.Destination) {
			d.Inputs["a"].Bytecode = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue("_H"), structpb.NewNumberValue(7)}})
		},
		"masking": func(d *hogwirev1.Destination) { d.Masking = &hogwirev1.Masking{Bytecode: []byte("[")} },
	} {
		d := compile(t, spec{hog: "return 1", inputs: map[string]any{"a": "{event}"}, schema: good.InputsSchema})
		mutate(d)
		_, err := executor.Prepare(d)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestStatusMetric(t *testing.T) {
	for s, want := range map[executor.Status]string{
		executor.Succeeded: "succeeded", executor.Failed: "failed", executor.Filtered: "filtered",
		executor.FilterFailed: "filtering_failed", executor.InputsFailed: "inputs_failed",
	} {
		if s.Metric() != want || s.String() != want {
			t.Errorf("%d: %q, want %q", s, s.Metric(), want)
		}
	}
}

// Globals are shared by every destination an event reaches: a program that
// changes them changes only its own copy.
func TestSharedGlobalsStayUnchanged(t *testing.T) {
	g := executor.NewEvent(event(t, nil), project, source)
	writer := prepare(t, spec{hog: `let p := event.properties; p.$browser := 'changed'; let q := person.properties; q.plan := 'free'; let e := event; e.properties.x := 1; return p.$browser`})
	reader := prepare(t, spec{hog: `return [event.properties, person.properties.plan]`})
	for range 2 {
		if res := writer.Invoke(context.Background(), g, executor.Options{}); res.Value.AsString() != "changed" {
			t.Fatalf("writer: %s %v", dump(res), res.Value.ToGo())
		}
		res := reader.Invoke(context.Background(), g, executor.Options{})
		got, _ := json.Marshal(res.Value)
		if string(got) != `[{"$browser":"Chrome","$current_url":"https://acme.example/pricing"},"pro"]` {
			t.Errorf("reader saw %s (%s)", got, dump(res))
		}
	}
}

// An input's literal value is shared by every invocation of the
// destination, and a rendered one holds the event's shared globals: a
// program that changes them changes only its own copy.
func TestSharedInputsStayUnchanged(t *testing.T) {
	d := prepare(t, spec{
		hog: `let h := inputs.headers; h.X := 'y'; h.A := 'b'; let n := inputs.nested; n.list.1.k := 'w'
			let b := inputs.body; b.props.$browser := 'x'
			return jsonStringify([inputs.headers, h, inputs.nested, inputs.body.props.$browser, event.properties.$browser])`,
		schema: []*hogwirev1.InputSchema{{Key: "headers", Type: hogwirev1.InputType_INPUT_TYPE_DICTIONARY}, {Key: "nested", Type: hogwirev1.InputType_INPUT_TYPE_JSON},
			{Key: "body", Type: hogwirev1.InputType_INPUT_TYPE_JSON}},
		inputs: map[string]any{"headers": map[string]any{"A": "a"}, "nested": map[string]any{"list": []any{map[string]any{"k": "v"}}},
			"body": map[string]any{"props": "{event.properties}"}},
	})
	g := executor.NewEvent(event(t, nil), project, source)
	for range 3 {
		res := d.Invoke(context.Background(), g, executor.Options{})
		if got, want := res.Value.AsString(), `[{"A":"a"},{"A":"b","X":"y"},{"list":[{"k":"v"}]},"Chrome","Chrome"]`; got != want {
			t.Fatalf("got %s, want %s (%s)", got, want, dump(res))
		}
	}
}

// Bodies are encoded as JSON.stringify encodes them: no HTML escaping of
// <, > and &, which encoding/json would add.
func TestFetchBodyIsNotHTMLEscaped(t *testing.T) {
	d := prepare(t, spec{hog: `fetch('https://example.com/', {'body': {'html': '<b>a & b</b>'}})`})
	f := &recorder{}
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: f})
	if res.Status != executor.Succeeded || len(f.reqs) != 1 {
		t.Fatal(dump(res))
	}
	if got, want := string(f.reqs[0].Body), `{"html":"<b>a & b</b>"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
}

// completedLine is PostHog's completion log line, its numbers with two
// significant digits (0.012, 1.5, 120).
var completedLine = regexp.MustCompile(`^Function completed in (\d+|0\.0*[1-9]\d?|[1-9]\.\d)ms\. Sync: (\d+|0\.0*[1-9]\d?|[1-9]\.\d)ms\. Mem: (\d+|0\.0*[1-9]\d?|[1-9]\.\d)kb\. Ops: [1-9]\d*\. Event: 'https://[^']+'$`)

// A delivery like the pipeline benchmark's allocates only what its
// program and fetch need: the invocation in one piece (its globals,
// inputs, first fetch and the response given to Hog included), the
// rendered body, the program's request dict and its copies of two inputs,
// the JSON body, the paused state, the fetch's observer and the parsed
// response body ({}); MockFetcher allocates four more.
func TestWebhookDeliveryAllocs(t *testing.T) {
	d, g := pipelineDelivery(t)
	opts := nodeOptions()
	ctx := context.Background()
	res := d.Invoke(ctx, g, opts)
	if res.Status != executor.Succeeded || len(res.Fetches) != 1 {
		t.Fatal(dump(res))
	}
	if got := res.Fetches[0].Request.URL; got != "http://127.0.0.1:8080/hook" {
		t.Errorf("URL = %s", got)
	}
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector")
	}
	const want = 10 + 4
	if n := testing.AllocsPerRun(100, func() { d.Invoke(ctx, g, opts) }); n > want {
		t.Errorf("a delivery allocates %v times, want at most %d", n, want)
	}
}
