package inputs_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/devstack/devstacktest"
)

// rawSink records the exact bytes of every request body it receives.
type rawSink struct {
	*httptest.Server
	mu     sync.Mutex
	bodies map[string][]string // by path
}

func newRawSink(t *testing.T) *rawSink {
	s := &rawSink{bodies: map[string][]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies[r.URL.Path] = append(s.bodies[r.URL.Path], string(b))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(s.Close)
	return s
}

// wait returns the first body received at path.
func (s *rawSink) wait(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		got := s.bodies[path]
		s.mu.Unlock()
		if len(got) > 0 {
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing arrived at %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func violations(t *testing.T, err error) map[string]string {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want INVALID_ARGUMENT", err)
	}
	out := map[string]string{}
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out[v.GetField()] = v.GetDescription()
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("INVALID_ARGUMENT without field violations: %v", err)
	}
	return out
}

func js(s string) *hogwirev1.InputValue { return &hogwirev1.InputValue{ValueJson: s} }

// Input values keep their declared key order through the whole pipeline:
// the API, etcd, the config stream to the node, rendering and the request
// body; Liquid inputs render, and an input with templating off is sent as
// written.
func TestOrderedAndLiquidInputsThroughThePipeline(t *testing.T) {
	st, cc := devstacktest.Start(t, nil)
	ctx := context.Background()
	sink := newRawSink(t)
	projects := hogwirev1.NewProjectServiceClient(cc)
	p, err := projects.CreateProject(ctx, &hogwirev1.CreateProjectRequest{ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"}})
	if err != nil {
		t.Fatal(err)
	}
	dests := hogwirev1.NewDestinationServiceClient(cc)

	const body = `{"zeta":1,"alpha":2,"event":"{event.event}","nested":{"b":"{event.distinct_id}","a":[{"y":true,"x":null}]}}`
	hook, err := dests.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent: "projects/shop", FromTemplate: "webhook", DestinationId: "hook",
		Destination: &hogwirev1.Destination{DisplayName: "hook", Enabled: true, Inputs: map[string]*hogwirev1.InputValue{
			"url":  js(`"` + sink.URL + `/hook"`),
			"body": js(body),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := hook.Destination.Inputs["body"]
	if got.ValueJson != body {
		t.Errorf("value_json = %s, want %s", got.ValueJson, body)
	}
	if !strings.HasPrefix(got.BytecodeJson, `{"zeta":1,"alpha":2,"event":["_H",`) {
		t.Errorf("bytecode_json = %.60s…, want the value's key order", got.BytecodeJson)
	}
	if got.GetValue().GetStructValue().GetFields()["zeta"].GetNumberValue() != 1 {
		t.Errorf("value (the protobuf Struct older clients read) = %v", got.GetValue())
	}
	// The template's default headers keep their order too.
	if h := hook.Destination.Inputs["headers"].GetValueJson(); h != `{"Content-Type":"application/json"}` {
		t.Errorf("headers = %s", h)
	}

	templating := false
	_, err = dests.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent: "projects/shop", DestinationId: "messages",
		Destination: &hogwirev1.Destination{
			DisplayName: "messages", Enabled: true,
			Hog: `fetch(inputs.url, {'method': 'POST', 'body': {'text': inputs.text, 'html': inputs.html, 'raw': inputs.raw, 'hog': inputs.hog}})`,
			InputsSchema: []*hogwirev1.InputSchema{
				{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Required: true},
				{Key: "text", Type: hogwirev1.InputType_INPUT_TYPE_STRING, TemplateLanguage: hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_LIQUID},
				{Key: "html", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
				{Key: "raw", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Templating: &templating},
				{Key: "hog", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
			},
			Inputs: map[string]*hogwirev1.InputValue{
				"url":  js(`"` + sink.URL + `/messages"`),
				"text": js(`"Hi {{ person.properties.name | default: 'there' }}, {{ event.event | upcase }} {% if event.properties.plan == 'pro' %}(pro){% endif %}"`),
				// The value chooses Liquid; outputs are HTML-escaped unless raw.
				"html": {ValueJson: `"<b>{{ event.properties.note }}</b> {{ event.properties.note | raw }}"`, TemplateLanguage: hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_LIQUID},
				"raw":  js(`"{event.event} {{ event.event }}"`),
				"hog":  js(`"{event.event}"`),
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	// Waits for the node to have both destinations, then sends the event.
	deadline := time.Now().Add(10 * time.Second)
	for len(st.Node.Syncer().Current().Destinations) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the node did not get the destinations")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ev := `{"api_key":"` + p.Project.CaptureToken + `","event":"signed_up","distinct_id":"ada","properties":{"plan":"pro","note":"a&b"}}`
	resp, err := http.Post("http://"+st.HTTPAddr+"/capture", "application/json", bytes.NewReader([]byte(ev)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("capture: %s", resp.Status)
	}

	if got, want := sink.wait(t, "/hook"), `{"zeta":1,"alpha":2,"event":"signed_up","nested":{"b":"ada","a":[{"y":true,"x":null}]}}`; got != want {
		t.Errorf("webhook body\n got %s\nwant %s", got, want)
	}
	if got, want := sink.wait(t, "/messages"), `{"text":"Hi there, SIGNED_UP (pro)","html":"<b>a&amp;b</b> a&b","raw":"{event.event} {{ event.event }}","hog":"signed_up"}`; got != want {
		t.Errorf("messages body\n got %s\nwant %s", got, want)
	}
}

// A Liquid syntax error, and value_json disagreeing with value, are
// validation errors on create and update that name the input.
func TestInputValidationErrors(t *testing.T) {
	_, cc := devstacktest.Start(t, nil)
	ctx := context.Background()
	if _, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"}}); err != nil {
		t.Fatal(err)
	}
	dests := hogwirev1.NewDestinationServiceClient(cc)
	d := &hogwirev1.Destination{
		DisplayName: "d", Hog: "print(inputs.text)",
		InputsSchema: []*hogwirev1.InputSchema{{Key: "text", Type: hogwirev1.InputType_INPUT_TYPE_STRING, TemplateLanguage: hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_LIQUID}},
		Inputs:       map[string]*hogwirev1.InputValue{"text": js(`"ok\nHi {% if x %}"`)},
	}
	_, err := dests.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: "d", Destination: d})
	if v := violations(t, err); !strings.Contains(v["destination.inputs.text"], `unterminated "if"`) {
		t.Errorf("create: violations %v, want destination.inputs.text naming the unterminated if", v)
	}

	d.Inputs["text"] = js(`"Hi {{ person.name }}"`)
	created, err := dests.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: "d", Destination: d})
	if err != nil {
		t.Fatal(err)
	}
	upd := proto.CloneOf(created.Destination)
	upd.Inputs["text"] = js(`"Hi {{ person.name | nosuchfilter }}"`)
	_, err = dests.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{Destination: upd, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"inputs.text"}}})
	if v := violations(t, err); !strings.Contains(v["destination.inputs.text"], `line 1: undefined filter "nosuchfilter"`) {
		t.Errorf("update: violations %v", v)
	}

	// An older client edits value and sends back the value_json it read.
	upd = proto.CloneOf(created.Destination)
	upd.Inputs["text"].Value = structpb.NewStringValue("Hello")
	_, err = dests.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{Destination: upd, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"inputs"}}})
	if v := violations(t, err); !strings.Contains(v["destination.inputs.text.value_json"], "differ") {
		t.Errorf("stale value_json: violations %v", v)
	}
}
