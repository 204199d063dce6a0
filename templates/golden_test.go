package templates_test

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/kind"
	"github.com/hogwire/hogwire/inputs"
	"github.com/hogwire/hogwire/templates"
)

// goldenFile is a template's tests.yaml: cases run through the same
// execution path as the test interface and the data plane (package
// executor), with fetch mocked and every request recorded.
type goldenFile struct {
	Cases []goldenCase `json:"cases"`
}

type goldenCase struct {
	Name string `json:"name"`
	// Inputs are the values a user gives; the others take their defaults.
	Inputs map[string]any `json:"inputs"`
	// Event and Person replace the sample ones (see sampleEvent).
	Event  map[string]any `json:"event"`
	Person map[string]any `json:"person"`
	// Events are the batch a template that delivers in batches runs on,
	// each given as changes to the sample event (with its person's under
	// "person"); without them, the batch is the one event above.
	Events []map[string]any `json:"events"`
	// Request is what a source webhook's case receives.
	Request *goldenWebhookRequest `json:"request"`
	// Mapping runs the template's mapping template of this name, as a
	// destination created from the template has it (its inputs at their
	// defaults but for MappingInputs), filters and all.
	Mapping       string         `json:"mapping"`
	MappingInputs map[string]any `json:"mapping_inputs"`
	// Responses answer the fetches in order; missing ones are 200 {}.
	Responses []goldenResponse `json:"responses"`
	Expect    goldenExpect     `json:"expect"`
}

type goldenResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	// Body is returned as JSON, or as text when it is a string.
	Body any `json:"body"`
}

type goldenExpect struct {
	// Status is succeeded (default), failed or filtered.
	Status string `json:"status"`
	// Error is a substring of the failure, for failed.
	Error string `json:"error"`
	// Requests are every fetch made, in order. Headers must match exactly;
	// Body is compared as JSON, BodyText as text (form-encoded bodies).
	Requests []goldenRequest `json:"requests"`
	// Logs are substrings that some log line must contain.
	Logs []string `json:"logs"`
	// Items are the statuses of a batch's events, in order (unset: every
	// event ends as the batch does).
	Items []string `json:"items"`
	// Captures are the events postHogCapture asked to capture, in order;
	// when absent, none may be.
	Captures []goldenCapture `json:"captures"`
	// Transformations only. Event is the event passed on: its event,
	// distinct_id and properties (each compared when given; a failed or
	// filtered case must leave the event as it was). Dropped: the code
	// returned null.
	Event   map[string]any `json:"event"`
	Dropped bool           `json:"dropped"`
	// Source webhooks only: the answer the code chose (0: none) and its
	// body.
	HTTPStatus int `json:"http_status"`
	HTTPBody   any `json:"http_body"`
}

// goldenWebhookRequest is a request to a source webhook; Body is sent as
// JSON unless BodyText gives the raw text.
type goldenWebhookRequest struct {
	Method   string            `json:"method"`
	Headers  map[string]string `json:"headers"`
	Query    map[string]string `json:"query"`
	Body     any               `json:"body"`
	BodyText *string           `json:"body_text"`
}

type goldenCapture struct {
	Event      string         `json:"event"`
	DistinctID string         `json:"distinct_id"`
	Properties map[string]any `json:"properties"`
}

type goldenRequest struct {
	Method   string            `json:"method"`
	URL      string            `json:"url"`
	Headers  map[string]string `json:"headers"`
	Body     any               `json:"body"`
	BodyText *string           `json:"body_text"`
}

// sampleEvent is the event a case runs on unless it gives its own.
func sampleEvent() map[string]any {
	return map[string]any{
		"uuid":        "0191f1a3-4b2c-7d8e-9f00-112233445566",
		"event":       "$pageview",
		"distinct_id": "user-42",
		"timestamp":   "2024-05-03T12:00:00Z",
		"properties": map[string]any{
			"$current_url": "https://shop.example.com/pricing?plan=pro",
			"$browser":     "Chrome",
			"$os":          "Mac OS X",
			"$ip":          "203.0.113.7",
			"$referrer":    "https://www.google.com/",
			"revenue":      49.5,
			"currency":     "USD",
			"plan":         "pro",
		},
	}
}

func samplePerson() map[string]any {
	return map[string]any{
		"id": "0191f1a3-0000-7000-8000-0000000000aa",
		"properties": map[string]any{
			"email": "ada@example.com", "name": "Ada Lovelace", "first_name": "Ada", "last_name": "Lovelace",
			"phone": "+44 20 7946 0958", "company": "Analytical Engines", "plan": "pro",
		},
	}
}

// goldenNow is when golden requests are signed (aws_sigv4,
// standard_webhooks), so their signatures are reproducible: the time of
// the sample event.
var goldenNow = time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC)

// recordingFetcher answers with canned responses and records requests.
type recordingFetcher struct {
	mu        sync.Mutex
	responses []goldenResponse
	reqs      []*fetch.Request
}

func (f *recordingFetcher) Do(_ context.Context, req fetch.Request, _ fetch.Policy, _ func(fetch.Attempt)) (*fetch.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// The request as the endpoint sees it: with what the host's signer
	// (aws_sigv4, standard_webhooks) adds.
	sent, err := fetch.SignedHeader(req, goldenNow)
	if err != nil {
		return nil, err
	}
	req.Header, req.Sign = sent, nil
	f.reqs = append(f.reqs, &req)
	r := goldenResponse{Status: 200, Body: map[string]any{}}
	if i := len(f.reqs) - 1; i < len(f.responses) {
		r = f.responses[i]
	}
	var body []byte
	if s, ok := r.Body.(string); ok {
		body = []byte(s)
	} else if r.Body != nil {
		body, _ = json.Marshal(r.Body)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	return &fetch.Response{Status: r.Status, Header: h, Body: body}, nil
}

// destinationFor builds what the control plane would store for a
// destination created from the template with the given inputs: bytecode for
// the code, the filters and every templated string of every input.
func destinationFor(t *testing.T, tpl *hogwirev1.Template, given map[string]any) *hogwirev1.Destination {
	t.Helper()
	k := kind.Destination()
	switch tpl.Kind {
	case hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION:
		k = kind.Transformation()
	case hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK:
		k = kind.SourceWebhook()
	}
	prog, err := k.Compile(tpl.Hog, nil)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	bc, _ := json.Marshal(prog)
	fb, err := filters.Compile(tpl.Filters)
	if err != nil {
		t.Fatalf("filters: %v", err)
	}
	d := &hogwirev1.Destination{
		Name: "projects/acme/destinations/d1", DisplayName: tpl.DisplayName, Enabled: true, Hog: tpl.Hog, Bytecode: bc, Kind: tpl.Kind,
		InputsSchema: tpl.InputsSchema, Inputs: map[string]*hogwirev1.InputValue{},
		Filters: &hogwirev1.Filters{Events: tpl.GetFilters().GetEvents(), Properties: tpl.GetFilters().GetProperties(), Expression: tpl.GetFilters().GetExpression(), Bytecode: fb},
	}
	for k := range given {
		if !slices.ContainsFunc(tpl.InputsSchema, func(s *hogwirev1.InputSchema) bool { return s.Key == k }) {
			t.Fatalf("input %q is not in the template's inputs_schema", k)
		}
	}
	for k, g := range given {
		val, err := structpb.NewValue(g)
		if err != nil {
			t.Fatalf("input %s: %v", k, err)
		}
		d.Inputs[k] = &hogwirev1.InputValue{Value: val}
	}
	// As the control plane does: defaults, both forms, compiled templates.
	inputs.CompileAll(d.InputsSchema, d.Inputs, func(field, msg string) { t.Fatalf("%s: %s", field, msg) })
	return d
}

// addMapping gives d the template's mapping template of this name, as a
// destination created from the template has it, with the given inputs.
func addMapping(t *testing.T, tpl *hogwirev1.Template, d *hogwirev1.Destination, name string, given map[string]any) {
	t.Helper()
	i := slices.IndexFunc(tpl.MappingTemplates, func(mt *hogwirev1.MappingTemplate) bool { return mt.Name == name })
	if i < 0 {
		t.Fatalf("the template has no mapping template %q", name)
	}
	mt := tpl.MappingTemplates[i]
	fb, err := filters.Compile(mt.GetFilters())
	if err != nil {
		t.Fatalf("mapping filters: %v", err)
	}
	m := &hogwirev1.Mapping{Name: name, InputsSchema: mt.InputsSchema, Inputs: map[string]*hogwirev1.InputValue{},
		Filters: &hogwirev1.Filters{Events: mt.GetFilters().GetEvents(), Properties: mt.GetFilters().GetProperties(), Expression: mt.GetFilters().GetExpression(), Bytecode: fb}}
	for k, g := range given {
		val, err := structpb.NewValue(g)
		if err != nil {
			t.Fatalf("mapping input %s: %v", k, err)
		}
		m.Inputs[k] = &hogwirev1.InputValue{Value: val}
	}
	inputs.CompileAll(m.InputsSchema, m.Inputs, func(field, msg string) { t.Fatalf("mapping %s: %s", field, msg) })
	d.Mappings = append(d.Mappings, m)
}

func eventFor(t *testing.T, c goldenCase) *hogwirev1.Event {
	t.Helper()
	m := sampleEvent()
	for k, v := range c.Event {
		m[k] = v
	}
	person := samplePerson()
	for k, v := range c.Person {
		person[k] = v
	}
	b, _ := json.Marshal(m)
	ev := &hogwirev1.Event{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, ev); err != nil {
		t.Fatalf("event: %v", err)
	}
	if ev.Timestamp == nil {
		ev.Timestamp = timestamppb.New(time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC))
	}
	pb, _ := json.Marshal(person)
	ev.Person = &hogwirev1.Person{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(pb, ev.Person); err != nil {
		t.Fatalf("person: %v", err)
	}
	return ev
}

// batchFor returns the events of a case's batch.
func batchFor(t *testing.T, c goldenCase) []*hogwirev1.Event {
	t.Helper()
	if len(c.Events) == 0 {
		return []*hogwirev1.Event{eventFor(t, c)}
	}
	var out []*hogwirev1.Event
	for _, e := range c.Events {
		ec := c
		ec.Event, ec.Person = map[string]any{}, map[string]any{}
		for k, v := range c.Event {
			ec.Event[k] = v
		}
		for k, v := range e {
			ec.Event[k] = v
		}
		if pm, ok := e["person"].(map[string]any); ok {
			ec.Person = pm
		}
		out = append(out, eventFor(t, ec))
	}
	return out
}

// TestGolden runs every template's tests.yaml. Every template must have
// one, with at least one succeeding case.
//
// HOGWIRE_TEMPLATES_DIR=DIR runs the templates in DIR (laid out like this
// package: DIR/<id>/template.hog, template.yaml, tests.yaml) instead of
// the embedded ones, to work on templates outside the tree.
func TestGolden(t *testing.T) {
	root := "."
	cat, err := templates.Load()
	if dir := os.Getenv("HOGWIRE_TEMPLATES_DIR"); dir != "" {
		root = dir
		cat, err = templates.LoadFS(os.DirFS(dir))
	}
	if err != nil {
		t.Fatal(err)
	}
	project := &hogwirev1.Project{Name: "projects/acme", DisplayName: "Acme", SiteUrl: "https://shop.example.com", TimeZone: "UTC"}
	for _, tpl := range cat.List() {
		id := strings.TrimPrefix(tpl.Name, "templates/")
		t.Run(id, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, id, "tests.yaml"))
			if err != nil {
				t.Fatalf("every template needs golden cases in %s/tests.yaml: %v", id, err)
			}
			js, err := yaml.YAMLToJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			var gf goldenFile
			dec := json.NewDecoder(strings.NewReader(string(js)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&gf); err != nil {
				t.Fatalf("tests.yaml: %v", err)
			}
			succeeded := false
			mapped := map[string]bool{}
			for _, c := range gf.Cases {
				mapped[c.Mapping] = true
				t.Run(c.Name, func(t *testing.T) {
					runGolden(t, tpl, project, c)
				})
				succeeded = succeeded || c.Expect.Status == "" || c.Expect.Status == "succeeded"
			}
			if !succeeded {
				t.Error("tests.yaml needs at least one case that succeeds")
			}
			for _, mt := range tpl.MappingTemplates {
				if !mapped[mt.Name] {
					t.Errorf("tests.yaml needs a case for the mapping template %q", mt.Name)
				}
			}
		})
	}
}

func runGolden(t *testing.T, tpl *hogwirev1.Template, project *hogwirev1.Project, c goldenCase) {
	dest := destinationFor(t, tpl, c.Inputs)
	if c.Mapping != "" {
		addMapping(t, tpl, dest, c.Mapping, c.MappingInputs)
	}
	d, err := executor.Prepare(dest)
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Kind == hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION {
		runGoldenTransform(t, d, project, c)
		return
	}
	if tpl.Kind == hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK {
		runGoldenWebhook(t, d, project, c)
		return
	}
	src := executor.Source{URL: "https://hogwire.example.com"}
	f := &recordingFetcher{responses: c.Responses}
	var res *executor.Result
	if tpl.Batch != nil {
		var gs []*executor.Globals
		for _, e := range batchFor(t, c) {
			gs = append(gs, executor.NewEvent(e, project, src))
		}
		res = d.InvokeBatch(context.Background(), gs, executor.Options{Fetcher: f})
	} else {
		res = d.Invoke(context.Background(), executor.NewEvent(eventFor(t, c), project, src), executor.Options{Fetcher: f, Mapping: c.Mapping})
	}
	want := c.Expect.Status
	if want == "" {
		want = "succeeded"
	}
	var logs []string
	for _, l := range res.Logs {
		logs = append(logs, l.Message)
	}
	if res.Status.Metric() != want {
		t.Fatalf("status %s (%s), want %s; logs:\n%s", res.Status.Metric(), res.Error, want, strings.Join(logs, "\n"))
	}
	if c.Expect.Error != "" && !strings.Contains(res.Error, c.Expect.Error) {
		t.Errorf("error %q does not contain %q", res.Error, c.Expect.Error)
	}
	if c.Expect.Items != nil {
		var got []string
		for _, it := range res.Items {
			got = append(got, it.Status.Metric())
		}
		if !slices.Equal(got, c.Expect.Items) {
			t.Errorf("items %v, want %v; logs:\n%s", got, c.Expect.Items, strings.Join(logs, "\n"))
		}
	}
	if len(f.reqs) != len(c.Expect.Requests) {
		var got []string
		for _, r := range f.reqs {
			got = append(got, r.Method+" "+r.URL+" "+string(r.Body))
		}
		t.Fatalf("%d requests, want %d:\n%s", len(f.reqs), len(c.Expect.Requests), strings.Join(got, "\n"))
	}
	for i, w := range c.Expect.Requests {
		r := f.reqs[i]
		if r.Method != w.Method || r.URL != w.URL {
			t.Errorf("request %d: %s %s, want %s %s", i+1, r.Method, r.URL, w.Method, w.URL)
		}
		if w.Headers != nil {
			// Headers are sent in canonical form, whatever the code wrote.
			got, want := map[string]string{}, map[string]string{}
			for k, v := range r.Header {
				got[k] = v[0]
			}
			for k, v := range w.Headers {
				want[http.CanonicalHeaderKey(k)] = v
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("request %d headers:\n got %v\nwant %v", i+1, got, want)
			}
		}
		switch {
		case w.BodyText != nil:
			if string(r.Body) != *w.BodyText {
				t.Errorf("request %d body:\n got %s\nwant %s", i+1, r.Body, *w.BodyText)
			}
		case w.Body != nil:
			var got any
			if err := json.Unmarshal(r.Body, &got); err != nil {
				t.Errorf("request %d body is not JSON: %s", i+1, r.Body)
			} else if !reflect.DeepEqual(normalize(got), normalize(w.Body)) {
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(w.Body)
				t.Errorf("request %d body:\n got %s\nwant %s", i+1, gb, wb)
			}
		default:
			if len(r.Body) != 0 {
				t.Errorf("request %d has body %s, want none", i+1, r.Body)
			}
		}
	}
	for _, want := range c.Expect.Logs {
		if !slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("no log line contains %q; logs:\n%s", want, strings.Join(logs, "\n"))
		}
	}
	var captures []goldenCapture
	for _, c := range res.Captures {
		captures = append(captures, goldenCapture{Event: c.Event, DistinctID: c.DistinctID, Properties: c.Properties})
	}
	if got, want := normalize(captures), normalize(c.Expect.Captures); !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("captures:\n got %s\nwant %s", gb, wb)
	}
	// Secret inputs never appear in the redacted output.
	res.Redact()
	for _, s := range tpl.InputsSchema {
		v, ok := c.Inputs[s.Key].(string)
		if !s.Secret || !ok || len(v) < 4 {
			continue
		}
		for _, l := range res.Logs {
			if strings.Contains(l.Message, v) {
				t.Errorf("secret input %s appears in a log line after redaction: %s", s.Key, l.Message)
			}
		}
		for _, fr := range res.Fetches {
			all := fr.Request.URL + string(fr.Request.Body)
			for _, hv := range fr.Request.Header {
				all += strings.Join(hv, "")
			}
			if strings.Contains(all, v) {
				t.Errorf("secret input %s appears in a redacted request", s.Key)
			}
		}
	}
}

// normalize makes JSON numbers comparable (YAML integers vs JSON floats).
func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// runGoldenWebhook runs a source webhook's case: the request, signed as
// the case says, at goldenNow.
func runGoldenWebhook(t *testing.T, d *executor.Destination, project *hogwirev1.Project, c goldenCase) {
	t.Helper()
	in := c.Request
	if in == nil {
		t.Fatal("a source webhook's case needs a request")
	}
	req := &executor.Request{Method: cmp.Or(in.Method, "POST"), Headers: map[string]string{}, Query: in.Query, IP: "203.0.113.7"}
	for k, v := range in.Headers {
		req.Headers[strings.ToLower(k)] = v
	}
	if in.BodyText != nil {
		req.Body = []byte(*in.BodyText)
	} else if in.Body != nil {
		req.Body, _ = json.Marshal(in.Body)
		req.ContentType = "application/json"
	}
	res := d.Receive(context.Background(), req, executor.NewProject(project, executor.Source{}), executor.Options{Now: func() time.Time { return goldenNow }})
	var logs []string
	for _, l := range res.Logs {
		logs = append(logs, l.Message)
	}
	want := cmp.Or(c.Expect.Status, "succeeded")
	if res.Status.Metric() != want {
		t.Fatalf("status %s (%s), want %s; logs:\n%s", res.Status.Metric(), res.Error, want, strings.Join(logs, "\n"))
	}
	if c.Expect.Error != "" && !strings.Contains(res.Error, c.Expect.Error) {
		t.Errorf("error %q does not contain %q", res.Error, c.Expect.Error)
	}
	if res.HTTPStatus != c.Expect.HTTPStatus {
		t.Errorf("http status %d, want %d", res.HTTPStatus, c.Expect.HTTPStatus)
	}
	if c.Expect.HTTPBody != nil && !reflect.DeepEqual(normalize(res.HTTPBody), normalize(c.Expect.HTTPBody)) {
		t.Errorf("http body %v, want %v", res.HTTPBody, c.Expect.HTTPBody)
	}
	var captures []goldenCapture
	for _, c := range res.Captures {
		props := maps.Clone(c.Properties)
		delete(props, "$hog_function_execution_count")
		captures = append(captures, goldenCapture{Event: c.Event, DistinctID: c.DistinctID, Properties: props})
	}
	if got, want := normalize(captures), normalize(c.Expect.Captures); !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("captures:\n got %s\nwant %s", gb, wb)
	}
}
