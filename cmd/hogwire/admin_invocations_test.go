package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/rpcclient"
)

// TestAdminInvocations runs real destinations on a dev stack, one for each
// way an invocation can end, and reads their records back with
// `invocations list|get` and `persons trace`.
func TestAdminInvocations(t *testing.T) {
	s := startAdminStack(t)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/bad"):
			w.WriteHeader(http.StatusBadRequest)
		case strings.HasPrefix(r.URL.Path, "/down"):
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(sink.Close)
	const secret = "s3cret-key-value"
	s.ok("projects", "create", "shop", "--name", "Shop")

	cc, err := rpcclient.Dial(s.server, rpcclient.Options{Token: s.token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var revision int64
	keySchema := []*hogwirev1.InputSchema{{Key: "key", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true}}
	keyInput := map[string]*hogwirev1.InputValue{"key": {Value: structpb.NewStringValue(secret)}}
	for _, d := range []struct {
		id   string
		edit func(*hogwirev1.Destination)
	}{
		// Its URL holds a secret in the path and the query: neither may
		// show in a record.
		{"ok", func(d *hogwirev1.Destination) {
			d.Hog = `fetch(f'` + sink.URL + `/ok/{inputs.key}?token={inputs.key}', {'method': 'POST', 'body': event})`
			d.InputsSchema, d.Inputs = keySchema, keyInput
		}},
		{"refused", func(d *hogwirev1.Destination) {
			d.Hog = `let r := fetch('` + sink.URL + `/bad', {'method': 'POST'})
if (r.status >= 400) { throw Error(f'refused with {r.status}') }`
		}},
		{"boom", func(d *hogwirev1.Destination) { d.Hog = `print('about to fail'); throw Error('boom')` }},
		{"inputs", func(d *hogwirev1.Destination) {
			d.Hog = `print(inputs.url)`
			d.InputsSchema = []*hogwirev1.InputSchema{{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING}}
			d.Inputs = map[string]*hogwirev1.InputValue{"url": {Value: structpb.NewStringValue("{jsonParse('not json')}")}}
		}},
		{"egress", func(d *hogwirev1.Destination) { d.Hog = `fetch('http://10.255.255.1/hook', {'method': 'POST'})` }},
		{"down", func(d *hogwirev1.Destination) { d.Hog = `fetch('` + sink.URL + `/down', {'method': 'POST'})` }},
		{"badfilter", func(d *hogwirev1.Destination) {
			d.Hog = `print('never runs')`
			d.Filters = &hogwirev1.Filters{Expression: "jsonParse('not json') = 1"}
		}},
		{"masked", func(d *hogwirev1.Destination) {
			d.Hog = `print('once per person')`
			d.Masking = &hogwirev1.Masking{Hash: "event.distinct_id", Ttl: durationpb.New(time.Hour), Threshold: 1}
		}},
	} {
		dest := &hogwirev1.Destination{DisplayName: d.id, Enabled: true}
		d.edit(dest)
		created, err := hogwirev1.NewDestinationServiceClient(cc).CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
			Parent: "projects/shop", DestinationId: d.id, Destination: dest})
		if err != nil {
			t.Fatalf("creating %s: %v", d.id, err)
		}
		revision = max(revision, created.GetDestination().GetRevision())
	}
	// Let the node learn of the destinations (an event sent before would
	// meet none).
	pollUntil(t, func() bool {
		nodes, err := hogwirev1.NewNodeServiceClient(cc).ListNodes(ctx, &hogwirev1.ListNodesRequest{})
		return err == nil && len(nodes.GetNodes()) > 0 && nodes.GetNodes()[0].GetAckedRevision() >= revision
	})

	// Ada sends two events, anonymously then signed in; Bob one.
	events := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(events, []byte(`{"event": "$pageview", "distinct_id": "anon-ada", "uuid": "01900000-0000-7000-8000-00000000a001"}
{"event": "$identify", "distinct_id": "ada@example.com", "uuid": "01900000-0000-7000-8000-00000000a002", "properties": {"$anon_distinct_id": "anon-ada"}}
{"event": "signed_up", "distinct_id": "bob", "uuid": "01900000-0000-7000-8000-00000000b001"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.ok("events", "send", "--project", "shop", "--file", events)

	// Each of the 8 destinations records each of the 3 events ("down"
	// more: it parks, is retried, parks again).
	list := func(args ...string) *hogwirev1.ListInvocationsResponse {
		t.Helper()
		out := s.ok(append([]string{"invocations", "list", "-o", "json"}, args...)...)
		resp := &hogwirev1.ListInvocationsResponse{}
		decodeJSON(t, out, resp)
		return resp
	}
	var all *hogwirev1.ListInvocationsResponse
	pollUntil(t, func() bool {
		all = list("projects/shop", "--limit", "0")
		return len(all.GetInvocations()) >= 24
	})
	type outcome struct{ status, kind string }
	got := map[string]map[outcome]int{}
	for _, r := range all.GetInvocations() {
		d := shortDestination(r.GetDestination())
		if got[d] == nil {
			got[d] = map[outcome]int{}
		}
		got[d][outcome{strings.TrimPrefix(strings.ToLower(r.GetStatus().String()), "invocation_status_"), r.GetErrorKind()}]++
		if r.GetEventUuid() == "" || r.GetDistinctId() == "" || r.GetStartTime() == nil {
			t.Errorf("record without its event: %v", r)
		}
	}
	for d, want := range map[string]outcome{
		"ok": {"succeeded", ""}, "refused": {"failed", "http_4xx"}, "boom": {"failed", "hog_error"},
		"inputs": {"failed", "inputs"}, "egress": {"failed", "egress_refused"}, "masked": {"succeeded", ""},
		"badfilter": {"failed", "filter"},
	} {
		if got[d][want] != 3 || len(got[d]) != 1 {
			t.Errorf("%s: outcomes %v, want 3 of %v", d, got[d], want)
		}
	}
	// "down" parks each event (and again when retried, or paused by its
	// circuit breaker).
	parked := map[string]bool{}
	for _, r := range all.GetInvocations() {
		if shortDestination(r.GetDestination()) != "down" {
			continue
		}
		if r.GetStatus() != hogwirev1.InvocationStatus_INVOCATION_STATUS_PARKED || r.GetRetryTime() == nil {
			t.Errorf("down: %v", r)
		}
		if r.GetErrorKind() == "http_5xx" {
			parked[r.GetEventUuid()] = true
			if len(r.GetFetches()) == 0 || r.GetFetches()[len(r.GetFetches())-1].GetStatus() != 503 {
				t.Errorf("down's fetches: %v", r.GetFetches())
			}
		}
	}
	if len(parked) != 3 {
		t.Errorf("down parked %d events for HTTP 5xx, want 3", len(parked))
	}
	// Its retries are recorded too, with their count.
	pollUntil(t, func() bool {
		for _, r := range list("down", "--limit", "0").GetInvocations() {
			if r.GetRetries() > 0 {
				return true
			}
		}
		return false
	})
	if raw := s.ok("invocations", "list", "projects/shop", "-o", "json", "--limit", "0"); strings.Contains(raw, secret) {
		t.Errorf("a secret shows in the records:\n%s", raw)
	}

	// Filters: destination + status, error kind.
	if r := list("refused", "--status", "failed"); len(r.GetInvocations()) != 3 {
		t.Errorf("refused --status failed: %d records", len(r.GetInvocations()))
	}
	if r := list("projects/shop", "--kind", "hog_error"); len(r.GetInvocations()) != 3 || shortDestination(r.GetInvocations()[0].GetDestination()) != "boom" {
		t.Errorf("--kind hog_error: %v", r)
	}
	if r := list("ok", "--status", "failed"); len(r.GetInvocations()) != 0 {
		t.Errorf("ok --status failed: %v", r)
	}
	// By event, across every destination; the index points at a record
	// up to about a second after it is listed by destination (see
	// invocations.IndexLag).
	byEvent := list("projects/shop", "--event", "01900000-0000-7000-8000-00000000b001")
	pollUntil(t, func() bool {
		byEvent = list("projects/shop", "--event", "01900000-0000-7000-8000-00000000b001")
		return len(distinctDestinations(byEvent)) >= 8
	})
	if n := len(distinctDestinations(byEvent)); n != 8 {
		t.Errorf("--event: records of %d destinations, want 8: %v", n, byEvent)
	}
	// By distinct id.
	bob := list("projects/shop", "--distinct-id", "bob")
	pollUntil(t, func() bool {
		bob = list("projects/shop", "--distinct-id", "bob")
		return len(distinctDestinations(bob)) >= 8
	})
	if n := len(distinctDestinations(bob)); n != 8 {
		t.Errorf("--distinct-id bob: records of %d destinations, want 8", n)
	}
	for _, r := range bob.GetInvocations() {
		if r.GetDistinctId() != "bob" || r.GetEventUuid() != "01900000-0000-7000-8000-00000000b001" {
			t.Errorf("--distinct-id bob: %v", r)
		}
	}

	// get: the fetch attempts, without secrets, and the logs.
	var okRec, boomRec *hogwirev1.Invocation
	for _, r := range byEvent.GetInvocations() {
		switch shortDestination(r.GetDestination()) {
		case "ok":
			okRec = r
		case "boom":
			boomRec = r
		}
	}
	if okRec == nil || boomRec == nil {
		t.Fatalf("records of ok and boom missing: %v", byEvent)
	}
	if f := okRec.GetFetches(); len(f) != 1 || f[0].GetMethod() != "POST" || f[0].GetStatus() != 200 ||
		f[0].GetUrl() != sink.URL+"/ok/%3Credacted%3E" && f[0].GetUrl() != sink.URL+"/ok/<redacted>" {
		t.Errorf("ok's fetches: %v", f)
	}
	out := s.ok("invocations", "get", "--project", "shop", boomRec.GetId())
	for _, want := range []string{`Status:\s+failed`, `Kind:\s+hog_error`, `Error:\s+.*boom`, `Distinct id:\s+bob`, `(?s)Logs:.*about to fail`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("get does not match %q:\n%s", want, out)
		}
	}
	s.fails(codes.NotFound, "invocations", "get", "projects/shop/invocations/999999-0")
	s.fails(codes.InvalidArgument, "invocations", "get", "projects/shop/invocations")

	// persons trace: both of Ada's distinct ids, every destination.
	// The trace reads the index by distinct id, which holds a record
	// about a second after it is stored; down's records come last (after
	// its quick retries), so the trace is read again until it has them.
	wants := []string{`Distinct ids: (anon-ada, ada@example.com|ada@example.com, anon-ada)`, `\$pageview\s+01900000-0000-7000-8000-00000000a001`,
		`\$identify\s+01900000-0000-7000-8000-00000000a002`, `(?m)^\s+refused\s+failed\s+http_4xx: .*refused with 400`,
		`(?m)^\s+down\s+parked\s+http_5xx`, `(?m)^\s+inputs\s+failed\s+inputs: `}
	matches := func(out string) bool {
		for _, want := range wants {
			if !regexp.MustCompile(want).MatchString(out) {
				return false
			}
		}
		return true
	}
	out = s.ok("persons", "trace", "--project", "shop", "ada@example.com")
	for deadline := time.Now().Add(30 * time.Second); !matches(out) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		out = s.ok("persons", "trace", "--project", "shop", "ada@example.com")
	}
	for _, want := range wants {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("trace does not match %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "b001") {
		t.Errorf("trace of ada shows bob's event:\n%s", out)
	}
	if _, err := s.run("invocations", "list", "projects/shop", "--status", "filtered"); exitCode(err) != 1 {
		t.Errorf("--status filtered: %v, want a refusal", err)
	}
}

func distinctDestinations(r *hogwirev1.ListInvocationsResponse) map[string]bool {
	out := map[string]bool{}
	for _, i := range r.GetInvocations() {
		out[i.GetDestination()] = true
	}
	return out
}

func pollUntil(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
