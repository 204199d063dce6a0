package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/kind"
	"github.com/hogwire/hogwire/inputs"
	"github.com/hogwire/hogwire/templates"
)

// typicalEvent is a $pageview with 30 properties, like posthog-js sends.
func typicalEvent(b testing.TB) *hogwirev1.Event {
	props := map[string]any{
		"$browser": "Chrome", "$browser_version": 124, "$os": "Mac OS X", "$os_version": "14.4.1",
		"$device_type": "Desktop", "$current_url": "https://acme.example/pricing?plan=pro", "$host": "acme.example",
		"$pathname": "/pricing", "$screen_height": 1117, "$screen_width": 1728, "$viewport_height": 992,
		"$viewport_width": 1728, "$lib": "web", "$lib_version": "1.130.0", "$insert_id": "b3m6x0k2v8n1q9",
		"$time": 1714737600.123, "$referrer": "https://www.google.com/", "$referring_domain": "www.google.com",
		"$session_id": "018f3c1c-aaaa-7bbb-8ccc-0123456789ab", "$window_id": "018f3c1c-dddd-7eee-8fff-0123456789ab",
		"$pageview_id": "018f3c1c-1111-7222-8333-0123456789ab", "$is_identified": true, "$raw_user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
		"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring", "$groups": map[string]any{"company": "acme"},
		"plan": "pro", "seats": 12, "features": []any{"sso", "audit-log"},
	}
	if len(props) != 30 {
		panic(fmt.Sprint(len(props)))
	}
	ev := event(b, props)
	ev.Set = mustStruct(b, map[string]any{"email": "max@acme.example"})
	return ev
}

func BenchmarkNewEvent(b *testing.B) {
	ev := typicalEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		executor.NewEvent(ev, project, source)
	}
}

// BenchmarkEventFromLog compares the two ways from an event stored in the
// log to its globals: decoding the Event message then NewEvent, and
// ParseEvent then NewEventFromWire.
func BenchmarkEventFromLog(b *testing.B) {
	data, err := proto.Marshal(typicalEvent(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unmarshal+NewEvent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ev := &hogwirev1.Event{}
			if err := proto.Unmarshal(data, ev); err != nil {
				b.Fatal(err)
			}
			executor.NewEvent(ev, project, source)
		}
	})
	b.Run("wire", func(b *testing.B) { benchEventFromWire(b, data) })
	// The pipeline benchmark's small event.
	b.Run("wire-small", func(b *testing.B) { benchEventFromWire(b, pipelineEvent(b)) })
}

func benchEventFromWire(b *testing.B, data []byte) {
	b.ReportAllocs()
	for b.Loop() {
		w, err := executor.ParseEvent(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := executor.NewEventFromWire(w, executor.NewProject(project, source)); err != nil {
			b.Fatal(err)
		}
	}
}

// A destination that does not want the event: the common case.
func BenchmarkFilterOnly(b *testing.B) {
	g := executor.NewEvent(typicalEvent(b), project, source)
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		filters *hogwirev1.Filters
	}{
		{"property", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview", Properties: []*hogwirev1.PropertyFilter{
			{Key: "$browser", Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT, Value: structpb.NewStringValue("Safari")},
		}}}}},
		{"event name", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "signed_up"}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			d := prepare(b, spec{hog: "return 1", filters: c.filters})
			if res := d.Invoke(ctx, g, executor.Options{}); res.Status != executor.Filtered {
				b.Fatal(dump(res))
			}
			b.ReportAllocs()
			for b.Loop() {
				d.Invoke(ctx, g, executor.Options{})
			}
		})
	}
}

// Match is what the data plane runs before it queues an invocation: a
// destination whose filter does not match costs only this.
func BenchmarkMatch(b *testing.B) {
	g := executor.NewEvent(typicalEvent(b), project, source)
	for _, c := range []struct {
		name    string
		filters *hogwirev1.Filters
	}{
		{"property", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview", Properties: []*hogwirev1.PropertyFilter{
			{Key: "$browser", Operator: hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT, Value: structpb.NewStringValue("Safari")},
		}}}}},
		{"event name", &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "signed_up"}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			d := prepare(b, spec{hog: "return 1", filters: c.filters})
			if ok, err := d.Match(g); ok || err != nil {
				b.Fatalf("Match = %v, %v; want false", ok, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				d.Match(g)
			}
		})
	}
}

// The webhook template end to end: filter, inputs, program, one fetch.
func BenchmarkWebhookInvoke(b *testing.B) {
	d := webhookDest(b)
	g := executor.NewEvent(typicalEvent(b), project, source)
	f := executor.MockFetcher{}
	ctx := context.Background()
	if res := d.Invoke(ctx, g, executor.Options{Fetcher: f}); res.Status != executor.Succeeded || len(res.Fetches) != 1 {
		b.Fatal(dump(res))
	}
	b.ReportAllocs()
	for b.Loop() {
		d.Invoke(ctx, g, executor.Options{Fetcher: f})
	}
}

// BenchmarkWebhookInvokeNode is BenchmarkWebhookInvoke with the options
// the data plane gives every invocation: filters already run, redaction,
// fetch records of status only, no debug log, parking on failure.
func BenchmarkWebhookInvokeNode(b *testing.B) {
	benchNodeInvoke(b, webhookDest(b), executor.NewEvent(typicalEvent(b), project, source))
}

// nodeOptions are the options the data plane gives every invocation, with
// fetch mocked.
func nodeOptions() executor.Options {
	return executor.Options{SkipFilters: true, Fetcher: executor.MockFetcher{}, Redact: true, FetchStatusOnly: true, NoDebugLogs: true, Park: true}
}

// benchNodeInvoke measures d's invocation on g with nodeOptions.
func benchNodeInvoke(b *testing.B, d *executor.Destination, g *executor.Globals) {
	opts := nodeOptions()
	ctx := context.Background()
	if res := d.Invoke(ctx, g, opts); res.Status != executor.Succeeded || len(res.Fetches) != 1 {
		b.Fatal(dump(res))
	}
	b.ReportAllocs()
	for b.Loop() {
		d.Invoke(ctx, g, opts)
	}
}

// webhookDest is a webhook destination like the webhook template's.
func webhookDest(b testing.TB) *executor.Destination {
	return prepare(b, spec{
		hog: `
let payload := {'headers': inputs.headers, 'body': inputs.body, 'method': inputs.method}
if (inputs.debug) { print('Request', inputs.url, payload) }
let res := fetch(inputs.url, payload)
if (res.status >= 300) { throw Error(f'Webhook failed with status {res.status}: {res.body}') }
if (inputs.debug) { print('Response', res.status, res.body) }`,
		filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview"}}},
		schema: []*hogwirev1.InputSchema{
			{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
			{Key: "method", Type: hogwirev1.InputType_INPUT_TYPE_CHOICE},
			{Key: "body", Type: hogwirev1.InputType_INPUT_TYPE_JSON},
			{Key: "headers", Type: hogwirev1.InputType_INPUT_TYPE_DICTIONARY},
			{Key: "debug", Type: hogwirev1.InputType_INPUT_TYPE_BOOLEAN},
		},
		inputs: map[string]any{
			"url":     "https://hooks.example.com/ingest",
			"method":  "POST",
			"body":    map[string]any{"event": "{event}", "person": "{person}"},
			"headers": map[string]any{"Content-Type": "application/json", "Accept": "application/json"},
			"debug":   false,
		},
	})
}

// BenchmarkInvokeWithSecret is a vendor call with an API key: every
// invocation redacts the key from what it reports.
func BenchmarkInvokeWithSecret(b *testing.B) {
	d := prepare(b, spec{
		hog: `
let res := fetch(f'https://api.example.com/v1/track?key={inputs.apiKey}', {'method': 'POST', 'headers': inputs.headers, 'body': inputs.body})
if (res.status >= 300) { throw Error(f'failed: {res.status}') }`,
		schema: []*hogwirev1.InputSchema{
			{Key: "apiKey", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true},
			{Key: "headers", Type: hogwirev1.InputType_INPUT_TYPE_DICTIONARY},
			{Key: "body", Type: hogwirev1.InputType_INPUT_TYPE_JSON},
		},
		inputs: map[string]any{
			"apiKey":  "sk_live_0123456789abcdef",
			"headers": map[string]any{"Content-Type": "application/json", "Authorization": "Bearer {inputs.apiKey}"},
			"body":    map[string]any{"event": "{event.event}", "user": "{event.distinct_id}", "props": "{event.properties}"},
		},
	})
	g := executor.NewEvent(typicalEvent(b), project, source)
	f := executor.MockFetcher{}
	ctx := context.Background()
	if res := d.Invoke(ctx, g, executor.Options{Fetcher: f, Redact: true}); res.Status != executor.Succeeded {
		b.Fatal(dump(res))
	}
	b.ReportAllocs()
	for b.Loop() {
		d.Invoke(ctx, g, executor.Options{Fetcher: f, Redact: true, NoDebugLogs: true})
	}
}

// BenchmarkWebhookTemplate is one delivery of the pipeline benchmark
// (bench/pipeline): the webhook template with its body, on an event as
// small as the benchmark's, parsed from the log, with the node's options.
func BenchmarkWebhookTemplate(b *testing.B) {
	d, g := pipelineDelivery(b)
	benchNodeInvoke(b, d, g)
}

// pipelineDelivery returns a destination and an event like the pipeline
// benchmark's: the webhook template, created with the benchmark's url and
// body, and an event parsed from the log.
func pipelineDelivery(t testing.TB) (*executor.Destination, *executor.Globals) {
	t.Helper()
	cat, err := templates.Load()
	if err != nil {
		t.Fatal(err)
	}
	tpl, ok := cat.Get("webhook")
	if !ok {
		t.Fatal("no webhook template")
	}
	prog, err := kind.Destination().Compile(tpl.Hog, nil)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := json.Marshal(prog)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := filters.Compile(tpl.Filters)
	if err != nil {
		t.Fatal(err)
	}
	body, err := structpb.NewValue(map[string]any{"event": "{event.event}", "user": "{event.distinct_id}", "sent": "{event.properties.sent}"})
	if err != nil {
		t.Fatal(err)
	}
	pb := &hogwirev1.Destination{
		Name: "projects/acme/destinations/sink", DisplayName: "sink", Enabled: true, Hog: tpl.Hog, Bytecode: bc,
		InputsSchema: tpl.InputsSchema, Filters: &hogwirev1.Filters{Bytecode: fb},
		Inputs: map[string]*hogwirev1.InputValue{"url": {Value: structpb.NewStringValue("http://127.0.0.1:8080/hook")}, "body": {Value: body}},
	}
	inputs.CompileAll(pb.InputsSchema, pb.Inputs, func(field, msg string) { t.Fatalf("%s: %s", field, msg) })
	d, err := executor.Prepare(pb)
	if err != nil {
		t.Fatal(err)
	}
	w, err := executor.ParseEvent(pipelineEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	g, err := executor.NewEventFromWire(w, executor.NewProject(project, source))
	if err != nil {
		t.Fatal(err)
	}
	return d, g
}

// pipelineEvent returns the encoding of an event like the pipeline
// benchmark's: one property, no person, no groups.
func pipelineEvent(t testing.TB) []byte {
	t.Helper()
	data, err := proto.Marshal(&hogwirev1.Event{
		Uuid: "0190f7f0-0000-7000-8000-000000000001", Event: "e", DistinctId: "u42",
		Properties: mustStruct(t, map[string]any{"sent": "1765051200000000000"}),
		Timestamp:  timestamppb.New(time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// BenchmarkWebhookTemplateReleased is BenchmarkWebhookTemplate with each
// Result released, as the data plane releases it once recorded: the
// invocation's allocation serves the next one, as in a node.
func BenchmarkWebhookTemplateReleased(b *testing.B) {
	d, g := pipelineDelivery(b)
	opts := nodeOptions()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d.Invoke(ctx, g, opts).Release()
	}
}
