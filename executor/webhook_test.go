package executor_test

import (
	"context"
	"encoding/json"
	"testing"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/hogvm/kind"
)

func prepareWebhook(t *testing.T, src string) *executor.Destination {
	t.Helper()
	prog, err := kind.SourceWebhook().Compile(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	bc, _ := json.Marshal(prog)
	d, err := executor.Prepare(&hogwirev1.Destination{Name: "projects/p/destinations/w", Hog: src, Bytecode: bc,
		Kind: hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The request global: method, headers, query, the body parsed by its
// type, the raw body, the address; the answer the code returns.
func TestReceive(t *testing.T) {
	project := executor.NewProject(&hogwirev1.Project{Name: "projects/p"}, executor.Source{})
	d := prepareWebhook(t, `postHogCapture({'event': request.method, 'distinct_id': request.query.user, 'properties': {
  'sig': request.headers['x-sig'], 'body': request.body, 'raw': request.stringBody, 'ip': request.ip}})
return {'httpResponse': {'status': 202, 'body': 'accepted'}}`)
	for _, c := range []struct {
		name, ctype, body string
		want              any
	}{
		{"json", "application/json", `{"a":[1,2]}`, map[string]any{"a": []any{int64(1), int64(2)}}},
		{"json without a type", "", `{"a":1}`, map[string]any{"a": int64(1)}},
		{"form", "application/x-www-form-urlencoded", "a=1&b=x&b=y", map[string]any{"a": "1", "b": "x,y"}},
		{"text", "text/plain", "hello", "hello"},
		{"bad json", "application/json", "{nope", "{nope"},
	} {
		res := d.Receive(context.Background(), &executor.Request{Method: "POST", Headers: map[string]string{"x-sig": "s"},
			Query: map[string]string{"user": "ada"}, ContentType: c.ctype, Body: []byte(c.body), IP: "203.0.113.7"}, project, executor.Options{})
		if res.Status != executor.Succeeded || len(res.Captures) != 1 {
			t.Fatalf("%s: %v %s, %d captures", c.name, res.Status, res.Error, len(res.Captures))
		}
		got := res.Captures[0]
		p := got.Properties
		if got.Event != "POST" || got.DistinctID != "ada" || p["sig"] != "s" || p["raw"] != c.body || p["ip"] != "203.0.113.7" {
			t.Errorf("%s: captured %+v", c.name, got)
		}
		if b, _ := json.Marshal(p["body"]); string(b) != mustJSON(c.want) {
			t.Errorf("%s: body %s, want %s", c.name, b, mustJSON(c.want))
		}
		if res.HTTPStatus != 202 || res.HTTPBody != "accepted" {
			t.Errorf("%s: answer %d %v", c.name, res.HTTPStatus, res.HTTPBody)
		}
	}

	// A bad signature fails with its own kind; a bad scheme is the code's error.
	verify := prepareWebhook(t, "verifyWebhookSignature('github', inputs.s ?? 'k')\npostHogCapture({'event': 'x', 'distinct_id': 'y'})")
	res := verify.Receive(context.Background(), &executor.Request{Method: "POST", Headers: map[string]string{"x-hub-signature-256": "sha256=00"},
		Body: []byte("{}")}, project, executor.Options{})
	if res.Status != executor.Failed || res.ErrorKind != executor.KindSignature || len(res.Captures) != 0 {
		t.Errorf("bad signature: %v %s %q, %d captures", res.Status, res.ErrorKind, res.Error, len(res.Captures))
	}
	scheme := prepareWebhook(t, "verifyWebhookSignature('svix', 'k')")
	if res := scheme.Receive(context.Background(), &executor.Request{Method: "POST"}, project, executor.Options{}); res.Status != executor.Failed || res.ErrorKind != executor.KindHogError {
		t.Errorf("unknown scheme: %v %s %q", res.Status, res.ErrorKind, res.Error)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
