package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

// batchCode posts every event's rendered body in one request and reports
// the events whose user the vendor refused.
const batchCode = `let bodies := []
for (let e in events) {
  bodies := arrayPushBack(bodies, e.inputs.body)
}
let res := fetch(inputs.url, {'method': 'POST', 'body': {'url': inputs.url, 'events': bodies}})
if (res.status >= 400) {
  throw Error(f'HTTP {res.status}')
}
let failed := []
for (let i, e in events) {
  if (e.event.distinct_id = 'refused') {
    failed := arrayPushBack(failed, {'index': i, 'error': f'{e.person.properties.email} refused'})
  }
}
return {'failed': failed}`

var batchSchema = []*hogwirev1.InputSchema{
	{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
	{Key: "body", Type: hogwirev1.InputType_INPUT_TYPE_JSON},
}

func batchEvents(t *testing.T, users ...string) []*executor.Globals {
	t.Helper()
	var gs []*executor.Globals
	for i, u := range users {
		ev := event(t, map[string]any{"plan": fmt.Sprint("p", i)})
		ev.Uuid = fmt.Sprintf("0190f7f0-0000-7000-8000-%012d", i)
		ev.DistinctId = u
		if u == "other" {
			ev.Event = "other"
		}
		gs = append(gs, executor.NewEvent(ev, project, source))
	}
	return gs
}

func statuses(res *executor.Result) []string {
	var out []string
	for _, it := range res.Items {
		out = append(out, it.Status.Metric())
	}
	return out
}

// A batch runs the code once on every event that passed its filters, each
// with inputs rendered from it; events the code names fail alone.
func TestInvokeBatch(t *testing.T) {
	d := prepare(t, spec{hog: batchCode,
		filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview"}}}, schema: batchSchema,
		inputs: map[string]any{"url": "https://sink.example/{event.distinct_id}", "body": map[string]any{"user": "{event.distinct_id}", "plan": "{event.properties.plan}"}}})
	rec := &recorder{}
	res := d.InvokeBatch(context.Background(), batchEvents(t, "u0", "other", "refused", "u3"), executor.Options{Fetcher: rec})
	if res.Status != executor.Succeeded {
		t.Fatalf("%s", dump(res))
	}
	if got, want := statuses(res), []string{"succeeded", "filtered", "failed", "succeeded"}; !slices.Equal(got, want) {
		t.Errorf("items %v, want %v", got, want)
	}
	if res.Items[2].Error != "max@acme.example refused" || res.Items[2].UUID != "0190f7f0-0000-7000-8000-000000000002" {
		t.Errorf("item 2: %+v", res.Items[2])
	}
	if len(rec.reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(rec.reqs))
	}
	var body map[string]any
	if err := json.Unmarshal(rec.reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	want := `{"events":[{"plan":"p0","user":"u0"},{"plan":"p2","user":"refused"},{"plan":"p3","user":"u3"}],"url":"https://sink.example/u0"}`
	if got, _ := json.Marshal(body); string(got) != want {
		t.Errorf("body %s\nwant %s", got, want)
	}
	if rec.reqs[0].URL != "https://sink.example/u0" {
		t.Errorf("url %s: want the first event's inputs", rec.reqs[0].URL)
	}
}

// A batch whose fetch fails in a way worth retrying parks whole, and
// resumes, with the same events, at that fetch; a throw fails every event.
func TestInvokeBatchParksWhole(t *testing.T) {
	d := prepare(t, spec{hog: batchCode, schema: batchSchema, inputs: map[string]any{"url": "https://sink.example/in", "body": "{event.distinct_id}"}})
	status := 503
	rec := &recorder{respond: func(*fetch.Request) (*fetch.Response, error) { return &fetch.Response{Status: status}, nil }}
	gs := batchEvents(t, "u0", "u1", "u2")
	opts := executor.Options{Fetcher: rec, Park: true}
	res := d.InvokeBatch(context.Background(), gs, opts)
	if res.Status != executor.Parked || !slices.Equal(statuses(res), []string{"parked", "parked", "parked"}) {
		t.Fatalf("%s items %v, want all parked", dump(res), statuses(res))
	}
	stored, _ := json.Marshal(res.Parked)
	var back executor.Suspended
	if err := json.Unmarshal(stored, &back); err != nil {
		t.Fatal(err)
	}
	status = 200
	opts.Resume = &back
	res = d.InvokeBatch(context.Background(), gs, opts)
	if res.Status != executor.Succeeded || !slices.Equal(statuses(res), []string{"succeeded", "succeeded", "succeeded"}) {
		t.Fatalf("%s items %v, want all succeeded", dump(res), statuses(res))
	}
	if len(rec.reqs) != 2 || string(rec.reqs[0].Body) != string(rec.reqs[1].Body) {
		t.Errorf("requests %d; the retry must send the same batch", len(rec.reqs))
	}

	status = 400
	res = d.InvokeBatch(context.Background(), gs, executor.Options{Fetcher: rec, Park: true})
	if res.Status != executor.Failed || !slices.Equal(statuses(res), []string{"failed", "failed", "failed"}) || res.Items[1].Error != "Error('HTTP 400')" {
		t.Fatalf("%s items %+v, want all failed", dump(res), res.Items)
	}
}

// Masking applies per event: masked events leave the batch; a batch left
// empty runs nothing.
func TestInvokeBatchMasksPerEvent(t *testing.T) {
	d := prepare(t, spec{hog: batchCode, masking: "event.distinct_id", schema: batchSchema,
		inputs: map[string]any{"url": "https://sink.example/in", "body": "{event.distinct_id}"}})
	seen := map[string]bool{}
	mask := func(_ context.Context, hash string) (bool, error) {
		masked := seen[hash]
		seen[hash] = true
		return masked, nil
	}
	rec := &recorder{}
	res := d.InvokeBatch(context.Background(), batchEvents(t, "a", "b", "a"), executor.Options{Fetcher: rec, Mask: mask})
	if res.Status != executor.Succeeded || !slices.Equal(statuses(res), []string{"succeeded", "succeeded", "masked"}) {
		t.Fatalf("%s items %v", dump(res), statuses(res))
	}
	res = d.InvokeBatch(context.Background(), batchEvents(t, "a", "b"), executor.Options{Fetcher: rec, Mask: mask})
	if res.Status != executor.Masked || len(rec.reqs) != 1 {
		t.Fatalf("%s, %d requests: want masked and no new request", dump(res), len(rec.reqs))
	}
}
