package controlplane_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
	"github.com/hogwire/hogwire/rpcclient"
)

// testStack is the whole system in one process, so that Test runs against
// the real control plane with the real template catalogue, while a real
// data-plane node is there to show that a test counts nothing.
type testStack struct {
	*devstack.Stack
	admin *grpc.ClientConn
}

func startTestStack(t *testing.T) *testStack {
	t.Helper()
	st, cc := devstacktest.Start(t, func(c *devstack.Config) { c.EventLog.AckWait = 2 * time.Second })
	return &testStack{Stack: st, admin: cc}
}

func (st *testStack) create(t *testing.T, req *hogwirev1.CreateDestinationRequest) *hogwirev1.Destination {
	t.Helper()
	resp, err := hogwirev1.NewDestinationServiceClient(st.admin).CreateDestination(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Destination
}

func (st *testStack) test(t *testing.T, req *hogwirev1.TestRequest) *hogwirev1.TestResponse {
	t.Helper()
	resp, err := hogwirev1.NewTestServiceClient(st.admin).Test(ctxT(t), req)
	if err != nil {
		t.Fatalf("Test: %v", err)
	}
	return resp
}

func mustValue(t *testing.T, v any) *structpb.Value {
	t.Helper()
	out, err := structpb.NewValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// recordingSink is an HTTP endpoint on loopback that keeps every request.
type recordingSink struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func newRecordingSink(t *testing.T, h http.HandlerFunc) *recordingSink {
	s := &recordingSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.body = append(s.body, string(b))
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *recordingSink) requests() ([]*http.Request, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...), append([]string(nil), s.body...)
}

const apiKey = "sk_live_9f8e7d6c5b4a"

// apiHog sends the event to an API with a secret key, prints the key (as a
// careless author might) and returns a value.
const apiHog = `let res := fetch(inputs.url, {
  'method': 'POST',
  'headers': {'Authorization': f'Bearer {inputs.api_key}', 'Content-Type': 'application/json'},
  'body': {'event': event.event, 'email': person.properties.email}
})
print('sent with key', inputs.api_key)
if (res.status >= 400) {
  throw Error(f'HTTP {res.status}')
}
return {'status': res.status, 'id': res.body.id, 'sent': [f'Bearer {inputs.api_key}']}`

func apiDestination(url string) *hogwirev1.Destination {
	return &hogwirev1.Destination{
		DisplayName: "API", Enabled: true, Hog: apiHog,
		InputsSchema: []*hogwirev1.InputSchema{
			{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Required: true},
			{Key: "api_key", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true, Required: true},
		},
		Inputs: map[string]*hogwirev1.InputValue{
			"url":     {Value: structpb.NewStringValue(url)},
			"api_key": {Value: structpb.NewStringValue(apiKey)},
		},
	}
}

func signup(t *testing.T) *hogwirev1.Event {
	props, _ := structpb.NewStruct(map[string]any{"n": 3, "plan": "pro"})
	person, _ := structpb.NewStruct(map[string]any{"email": "ann@example.com", "name": "Ann"})
	return &hogwirev1.Event{
		Uuid: "0190e4b2-5c2a-7a55-9d1e-000000000042", Event: "signup", DistinctId: "ann",
		Properties: props, Timestamp: timestamppb.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
		Person: &hogwirev1.Person{Id: "p-1", Properties: person},
	}
}

func badRequestFields(t *testing.T, err error) []string {
	t.Helper()
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// userLogs drops the executor's debug lines ("Function completed in …"),
// leaving what the code printed and the errors.
func userLogs(resp *hogwirev1.TestResponse) []*hogwirev1.LogEntry {
	var out []*hogwirev1.LogEntry
	for _, l := range resp.Logs {
		if l.Level != hogwirev1.LogLevel_LOG_LEVEL_DEBUG {
			out = append(out, l)
		}
	}
	return out
}

// noSecret fails if the secret appears anywhere in the response.
func noSecret(t *testing.T, resp *hogwirev1.TestResponse, secret string) {
	t.Helper()
	b, err := protojson.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("the response contains the secret %q:\n%s", secret, b)
	}
}

func TestTestService(t *testing.T) {
	st := startTestStack(t)
	ctx := ctxT(t)
	if _, err := hogwirev1.NewProjectServiceClient(st.admin).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
		ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"},
	}); err != nil {
		t.Fatal(err)
	}
	var tested []string // destinations whose metrics must stay empty

	// The webhook template with mocked fetch shows the exact request it
	// would send, the credential in its headers redacted everywhere.
	t.Run("webhook template mocked", func(t *testing.T) {
		d := st.create(t, &hogwirev1.CreateDestinationRequest{
			Parent: "projects/shop", DestinationId: "hook", FromTemplate: "templates/webhook",
			Destination: &hogwirev1.Destination{
				DisplayName: "Hook", Enabled: true,
				Inputs: map[string]*hogwirev1.InputValue{
					"url":     {Value: structpb.NewStringValue("https://hooks.example.com/in?team=1")},
					"method":  {Value: structpb.NewStringValue("PUT")},
					"headers": {Value: mustValue(t, map[string]any{"Authorization": "Bearer " + apiKey, "X-Event": "{event.event}"})},
					"body":    {Value: mustValue(t, map[string]any{"event": "{event.event}", "email": "{person.properties.email}", "n": "{event.properties.n}"})},
					"debug":   {Value: structpb.NewBoolValue(true)},
				},
			},
		})
		tested = append(tested, d.Name)
		resp := st.test(t, &hogwirev1.TestRequest{
			Target: &hogwirev1.TestRequest_Destination{Destination: d.Name}, Event: signup(t),
		})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED {
			t.Fatalf("status %v (%s), want succeeded", resp.Status, resp.Error)
		}
		if len(resp.Requests) != 1 {
			t.Fatalf("%d requests, want 1: %v", len(resp.Requests), resp.Requests)
		}
		x := resp.Requests[0]
		if x.Method != "PUT" || x.Url != "https://hooks.example.com/in?team=1" {
			t.Errorf("request %s %s, want PUT https://hooks.example.com/in?team=1", x.Method, x.Url)
		}
		wantHeaders := map[string]string{"Authorization": "<redacted>", "X-Event": "signup"}
		if len(x.Headers) != len(wantHeaders) {
			t.Errorf("headers %v, want %v", x.Headers, wantHeaders)
		}
		for k, v := range wantHeaders {
			if x.Headers[k] != v {
				t.Errorf("header %s = %q, want %q", k, x.Headers[k], v)
			}
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(x.Body), &body); err != nil {
			t.Fatalf("body %q is not JSON: %v", x.Body, err)
		}
		if len(body) != 3 || body["event"] != "signup" || body["email"] != "ann@example.com" || body["n"] != float64(3) {
			t.Errorf("body %s, want {event: signup, email: ann@example.com, n: 3}", x.Body)
		}
		if x.Status != 200 || x.ResponseBody != "{}" || x.Attempt != 1 {
			t.Errorf("mocked response: status %d body %q attempt %d, want 200 {} 1", x.Status, x.ResponseBody, x.Attempt)
		}
		logs := userLogs(resp)
		if len(logs) != 2 || !strings.HasPrefix(logs[0].Message, "Request, https://hooks.example.com/in?team=1") ||
			!strings.Contains(logs[0].Message, `"Authorization":"<redacted>"`) || !strings.HasPrefix(logs[1].Message, "Response, 200") {
			t.Errorf("logs %v, want the debug Request line (credential redacted) and Response line", logs)
		}
		for _, l := range logs {
			if l.Level != hogwirev1.LogLevel_LOG_LEVEL_INFO || l.Time == nil || l.EventUuid != signup(t).Uuid || l.Destination != d.Name {
				t.Errorf("log entry %v: want info, timed, with the event uuid and destination", l)
			}
		}
		if resp.Event.GetUuid() != signup(t).Uuid || resp.Event.GetEvent() != "signup" || resp.Event.GetProject() != "shop" {
			t.Errorf("event %v, want the one given", resp.Event)
		}
		if resp.Duration == nil {
			t.Error("no duration")
		}
		noSecret(t, resp, apiKey)
	})

	// A secret input is unsealed for the run (the sink receives it) and
	// redacted in the headers and logs returned.
	t.Run("secret input real fetch", func(t *testing.T) {
		sink := newRecordingSink(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Sink", "yes")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id": 7}`)
		})
		d := st.create(t, &hogwirev1.CreateDestinationRequest{
			Parent: "projects/shop", DestinationId: "api", Destination: apiDestination(sink.URL + "/track"),
		})
		tested = append(tested, d.Name)
		resp := st.test(t, &hogwirev1.TestRequest{
			Target: &hogwirev1.TestRequest_Destination{Destination: "projects/-/destinations/api"},
			Event:  signup(t), FetchMode: hogwirev1.FetchMode_FETCH_MODE_REAL,
		})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED {
			t.Fatalf("status %v (%s), want succeeded", resp.Status, resp.Error)
		}
		reqs, bodies := sink.requests()
		if len(reqs) != 1 {
			t.Fatalf("the sink got %d requests, want 1", len(reqs))
		}
		if got := reqs[0].Header.Get("Authorization"); got != "Bearer "+apiKey {
			t.Errorf("the sink got Authorization %q, want the unsealed secret", got)
		}
		x := resp.Requests[0]
		if x.Url != sink.URL+"/track" || x.Method != "POST" || x.Body != bodies[0] {
			t.Errorf("request %s %s %s, want POST %s/track %s", x.Method, x.Url, x.Body, sink.URL, bodies[0])
		}
		if x.Headers["Authorization"] != "Bearer <redacted>" {
			t.Errorf("Authorization shown as %q, want %q", x.Headers["Authorization"], "Bearer <redacted>")
		}
		if x.Status != 201 || x.ResponseBody != `{"id": 7}` || x.ResponseHeaders["X-Sink"] != "yes" || x.Attempt != 1 {
			t.Errorf("response %d %q %v attempt %d, want the sink's 201", x.Status, x.ResponseBody, x.ResponseHeaders, x.Attempt)
		}
		result := resp.Result.GetStructValue().AsMap()
		if sent, _ := result["sent"].([]any); result["status"] != float64(201) || result["id"] != float64(7) || len(sent) != 1 || sent[0] != "Bearer <redacted>" {
			t.Errorf("result %v, want {status: 201, id: 7, sent: [Bearer <redacted>]}", result)
		}
		if logs := userLogs(resp); len(logs) != 1 || logs[0].Message != "sent with key, <redacted>" {
			t.Errorf("logs %v, want the print with the key redacted", logs)
		}
		noSecret(t, resp, apiKey)
	})

	// A 4xx from a real endpoint fails the run with the code's error.
	t.Run("real fetch 400", func(t *testing.T) {
		sink := newRecordingSink(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
		})
		cfg := apiDestination(sink.URL)
		cfg.Name = "projects/shop"
		resp := st.test(t, &hogwirev1.TestRequest{
			Target: &hogwirev1.TestRequest_Config{Config: cfg}, FetchMode: hogwirev1.FetchMode_FETCH_MODE_REAL,
		})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED || !strings.Contains(resp.Error, "HTTP 400") {
			t.Errorf("status %v error %q, want failed with HTTP 400", resp.Status, resp.Error)
		}
		if reqs, _ := sink.requests(); len(reqs) != 1 {
			t.Errorf("the sink got %d requests, want 1 (a 400 is not retried)", len(reqs))
		}
		if len(resp.Requests) != 1 || resp.Requests[0].Status != 400 {
			t.Errorf("requests %v, want the one 400", resp.Requests)
		}
		noSecret(t, resp, apiKey)
	})

	// A retried request shows as one exchange with its last attempt's
	// number and response, and each failed attempt is logged.
	t.Run("real fetch retried", func(t *testing.T) {
		var calls sync.Mutex
		n := 0
		sink := newRecordingSink(t, func(w http.ResponseWriter, _ *http.Request) {
			calls.Lock()
			n++
			first := n == 1
			calls.Unlock()
			if first {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, `{"id": 8}`)
		})
		cfg := apiDestination(sink.URL)
		cfg.Name = "projects/shop/destinations/draft"
		resp := st.test(t, &hogwirev1.TestRequest{
			Target: &hogwirev1.TestRequest_Config{Config: cfg}, Event: signup(t), FetchMode: hogwirev1.FetchMode_FETCH_MODE_REAL,
		})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED {
			t.Fatalf("status %v (%s), want succeeded", resp.Status, resp.Error)
		}
		if len(resp.Requests) != 1 || resp.Requests[0].Attempt != 2 || resp.Requests[0].Status != 200 {
			t.Errorf("requests %v, want one, answered 200 on attempt 2", resp.Requests)
		}
		var warned bool
		for _, l := range resp.Logs {
			warned = warned || (l.Level == hogwirev1.LogLevel_LOG_LEVEL_WARN && strings.HasPrefix(l.Message, "retrying after HTTP 503, retry 1/3 in "))
			if l.Destination != cfg.Name {
				t.Errorf("log of %s, want %s", l.Destination, cfg.Name)
			}
		}
		if !warned {
			t.Errorf("logs %v, want a warning about the retried 503", resp.Logs)
		}
	})

	// An unsaved config runs on the sample event when none is given, and
	// mocked fetch sends nothing.
	t.Run("unsaved config on the sample event", func(t *testing.T) {
		sink := newRecordingSink(t, func(w http.ResponseWriter, _ *http.Request) {})
		cfg := apiDestination(sink.URL)
		cfg.Name = "projects/shop"
		cfg.Hog = `print(f'hello {person.properties.name} on {event.properties.$current_url}')
fetch(inputs.url, {'body': {'event': event.event}})
return event.event`
		resp := st.test(t, &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: cfg}})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED {
			t.Fatalf("status %v (%s), want succeeded", resp.Status, resp.Error)
		}
		if resp.Result.GetStringValue() != "$pageview" {
			t.Errorf("result %v, want $pageview", resp.Result)
		}
		ev := resp.Event
		if ev.GetEvent() != "$pageview" || ev.GetUuid() == "" || ev.GetTimestamp() == nil || ev.GetDistinctId() == "" {
			t.Errorf("sample event %v: want a $pageview with uuid, timestamp and distinct id", ev)
		}
		if logs := userLogs(resp); len(logs) != 1 || logs[0].Message != "hello Max Mustermann on https://example.com/pricing?utm_source=newsletter" {
			t.Errorf("logs %v, want the greeting of the sample person", logs)
		}
		if len(resp.Requests) != 1 || resp.Requests[0].Body != `{"event":"$pageview"}` {
			t.Errorf("requests %v, want the one mocked POST", resp.Requests)
		}
		if reqs, _ := sink.requests(); len(reqs) != 0 {
			t.Errorf("mocked fetch sent %d requests", len(reqs))
		}
	})

	// Filters decide unless skip_filters says otherwise.
	t.Run("filters and skip_filters", func(t *testing.T) {
		d := apiDestination("https://api.example.com/track")
		d.Filters = &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "purchase"}}}
		saved := st.create(t, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: "purchases", Destination: d})
		tested = append(tested, saved.Name)
		target := &hogwirev1.TestRequest_Destination{Destination: saved.Name}
		resp := st.test(t, &hogwirev1.TestRequest{Target: target, Event: signup(t)})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_FILTERED || len(resp.Requests) != 0 || resp.Result != nil {
			t.Errorf("status %v with %d requests, want filtered with none", resp.Status, len(resp.Requests))
		}
		resp = st.test(t, &hogwirev1.TestRequest{Target: target, Event: signup(t), SkipFilters: true})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED || len(resp.Requests) != 1 {
			t.Errorf("with skip_filters: status %v (%s) with %d requests, want succeeded with 1", resp.Status, resp.Error, len(resp.Requests))
		}
	})

	// Without an event, the sample is built to pass the filters (as
	// PostHog's test panel does); a real event that does not pass is
	// reported with the filter that excluded it.
	t.Run("sample event matches the filters; exclusions are explained", func(t *testing.T) {
		d := apiDestination("https://api.example.com/track")
		d.Filters = &hogwirev1.Filters{
			Events: []*hogwirev1.EventFilter{{Event: "purchase", Properties: []*hogwirev1.PropertyFilter{
				{Key: "amount", Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GT, Value: structpb.NewNumberValue(100)},
			}}},
			Properties: []*hogwirev1.PropertyFilter{
				{Key: "plan", Scope: hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON, Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT, Value: mustValue(t, []any{"enterprise", "team"})},
				{Key: "$browser", Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT, Value: structpb.NewStringValue("Chrome")},
				{Key: "coupon", Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_SET},
				{Key: "$os", Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_ICONTAINS, Value: structpb.NewStringValue("linux")},
			},
		}
		saved := st.create(t, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: "big-purchases", Destination: d})
		tested = append(tested, saved.Name)
		target := &hogwirev1.TestRequest_Destination{Destination: saved.Name}
		resp := st.test(t, &hogwirev1.TestRequest{Target: target})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED {
			t.Fatalf("sample event: status %v (%s; %s), want succeeded; event %v", resp.Status, resp.Error, resp.FilterExplanation, resp.Event)
		}
		if resp.Event.GetEvent() != "purchase" {
			t.Errorf("sample event named %q, want the filter's purchase", resp.Event.GetEvent())
		}

		resp = st.test(t, &hogwirev1.TestRequest{Target: target, Event: signup(t)})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_FILTERED ||
			resp.FilterExplanation != `filters.events: the event is "signup", not one of "purchase"` {
			t.Errorf("signup: status %v, explanation %q", resp.Status, resp.FilterExplanation)
		}
		ev := resp.Event // now a purchase too small to pass
		ev.Uuid, ev.Event = "", "purchase"
		ev.Properties.Fields["amount"] = structpb.NewNumberValue(20)
		resp = st.test(t, &hogwirev1.TestRequest{Target: target, Event: ev})
		if want := `filters.events[0].properties[0]: event property "amount" gt 100 is false: it is 20`; resp.FilterExplanation != want {
			t.Errorf("small purchase: explanation %q, want %q", resp.FilterExplanation, want)
		}
	})

	// A thrown error and an input that fails to render are failures with
	// their error.
	t.Run("failures", func(t *testing.T) {
		cfg := &hogwirev1.Destination{Name: "projects/shop", DisplayName: "Thrower", Hog: `throw Error('missing email')`}
		resp := st.test(t, &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: cfg}})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED || !strings.Contains(resp.Error, "missing email") {
			t.Errorf("status %v error %q, want failed with the thrown error", resp.Status, resp.Error)
		}
		cfg = &hogwirev1.Destination{
			Name: "projects/shop", DisplayName: "Bad input", Hog: `return inputs.x`,
			InputsSchema: []*hogwirev1.InputSchema{{Key: "x", Type: hogwirev1.InputType_INPUT_TYPE_STRING}},
			Inputs:       map[string]*hogwirev1.InputValue{"x": {Value: structpb.NewStringValue("{toInt('a') / 0 + event.nope.deeper()}")}},
		}
		resp = st.test(t, &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: cfg}})
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED || resp.Error == "" {
			t.Errorf("status %v error %q, want failed with the input's error", resp.Status, resp.Error)
		}
	})

	t.Run("errors", func(t *testing.T) {
		client := hogwirev1.NewTestServiceClient(st.admin)
		for _, c := range []struct {
			name  string
			req   *hogwirev1.TestRequest
			code  codes.Code
			field string
		}{
			{"compile error", &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: &hogwirev1.Destination{
				Name: "projects/shop", DisplayName: "Broken", Hog: "let x := ",
			}}}, codes.InvalidArgument, "config.hog"},
			{"no project", &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: &hogwirev1.Destination{
				DisplayName: "No project", Hog: "return 1",
			}}}, codes.InvalidArgument, "config.name"},
			{"no target", &hogwirev1.TestRequest{}, codes.InvalidArgument, "target"},
			{"bad name", &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Destination{Destination: "hook"}}, codes.InvalidArgument, "destination"},
			{"event without name", &hogwirev1.TestRequest{
				Target: &hogwirev1.TestRequest_Destination{Destination: "projects/shop/destinations/hook"},
				Event:  &hogwirev1.Event{DistinctId: "ann"},
			}, codes.InvalidArgument, "event.event"},
			{"missing destination", &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Destination{Destination: "projects/shop/destinations/nope"}}, codes.NotFound, ""},
			{"missing project", &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: &hogwirev1.Destination{
				Name: "projects/nope", DisplayName: "Elsewhere", Hog: "return 1",
			}}}, codes.NotFound, ""},
		} {
			_, err := client.Test(ctx, c.req)
			if status.Code(err) != c.code {
				t.Errorf("%s: %v, want %v", c.name, err, c.code)
				continue
			}
			if c.field != "" {
				if fields := badRequestFields(t, err); len(fields) == 0 || fields[0] != c.field {
					t.Errorf("%s: violations %v, want the field %s", c.name, fields, c.field)
				}
			}
		}
	})

	// Nothing above was counted: the node's metrics of the tested
	// destinations are empty and no telemetry reached the stores.
	t.Run("no telemetry", func(t *testing.T) {
		for _, name := range tested {
			for _, metric := range []string{"succeeded", "failed", "filtered", "fetch_attempts"} {
				if n := st.Node.Stat(name, metric); n != 0 {
					t.Errorf("%s %s = %v, want 0", name, metric, n)
				}
			}
		}
		nc, err := nats.Connect(st.NATSURL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, "HOGWIRE_METRICS")
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter("hogwire.metrics.shop.>"))
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 0 {
			t.Errorf("%d metric batches were stored for project shop, want none", info.State.Msgs)
		}
	})
}

// BenchmarkTestMocked measures one Test RPC over gRPC, on a saved webhook
// destination with mocked fetch: reading and unsealing it, compiling,
// running and answering.
func BenchmarkTestMocked(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Config{
		DataDir: b.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		EventLog: eventlog.Config{Memory: true, AckWait: 2 * time.Second}, ConsumeBatch: 20,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(context.Background())
	cc, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{Token: st.AdminToken})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	if _, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
		ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"},
	}); err != nil {
		b.Fatal(err)
	}
	if _, err := hogwirev1.NewDestinationServiceClient(cc).CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent: "projects/shop", DestinationId: "api", Destination: apiDestination("https://api.example.com/track"),
	}); err != nil {
		b.Fatal(err)
	}
	client := hogwirev1.NewTestServiceClient(cc)
	req := &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Destination{Destination: "projects/shop/destinations/api"}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Test(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED {
			b.Fatalf("status %v: %s", resp.Status, resp.Error)
		}
	}
}
