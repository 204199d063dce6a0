package executor_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"google.golang.org/protobuf/types/known/durationpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

// bearer_token_input: the host reads the named input and sends it as a
// bearer token; the program never touches it, and redaction hides it even
// when the input is not marked secret.
func TestFetchBearerTokenInput(t *testing.T) {
	rec := &recorder{}
	d := prepare(t, spec{hog: `fetch('https://api.example.com/send', {'body': {'to': 'x'}, 'bearer_token_input': 'access'})`,
		inputs: map[string]any{"access": "tok-8c1e4f"}})
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: rec})
	if res.Status != executor.Succeeded {
		t.Fatal(dump(res))
	}
	if got := rec.reqs[0].Header.Get("Authorization"); got != "Bearer tok-8c1e4f" {
		t.Errorf("Authorization = %q", got)
	}
	if got := rec.reqs[0].Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q: the default header was lost", got)
	}
	res.Redact()
	if got := res.Fetches[0].Request.Header.Get("Authorization"); strings.Contains(got, "tok-8c1e4f") {
		t.Errorf("redacted request still has the token: %q", got)
	}
}

func TestFetchAuthOptionErrors(t *testing.T) {
	for _, c := range []struct{ opts, want string }{
		{`{'bearer_token_input': 'nope'}`, `bearer_token_input: the destination has no input "nope"`},
		{`{'bearer_token_input': 'empty'}`, `bearer_token_input: input "empty" is empty`},
		{`{'bearer_token_input': 3}`, `bearer_token_input must name an input, got number`},
		{`{'timeout_ms': -5}`, `timeout_ms must be a positive number of milliseconds`},
		{`{'timeout_ms': '100'}`, `timeout_ms must be a positive number of milliseconds, got "100"`},
		{`{'aws_sigv4': {'access_key_id_input': 'empty', 'secret_access_key_input': 'empty', 'region': 'us-east-1'}}`, `aws_sigv4.service is required`},
		{`{'aws_sigv4': 'yes'}`, `aws_sigv4 must be an object`},
		{`{'standard_webhooks': {'previous_secret_input': 'empty'}}`, `standard_webhooks.secret_input must name an input`},
		{`{'standard_webhooks': {'secret_input': 'bad'}}`, `standard_webhooks.secret_input: input "bad": the signing secret is not whsec_ followed by base64`},
		{`{'standard_webhooks': {'secret_input': 'bad'}, 'aws_sigv4': {}}`, `aws_sigv4.access_key_id_input is required`},
	} {
		d := prepare(t, spec{hog: `fetch('https://api.example.com/', ` + c.opts + `)`, inputs: map[string]any{"empty": "", "bad": "whsec_!!"}})
		res := invoke(t, d, event(t, nil), executor.Options{Fetcher: &recorder{}})
		if res.Status != executor.Failed || res.ErrorKind != executor.KindFetchInvalid || !strings.Contains(res.Error, c.want) {
			t.Errorf("%s: %s kind %s, want fetch_invalid with %q", c.opts, dump(res), res.ErrorKind, c.want)
		}
	}
}

// timeout_ms shortens one fetch's timeout, with the real client; it
// cannot exceed the destination's limits.fetch_timeout.
func TestFetchTimeoutMs(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	d := prepare(t, spec{hog: `fetch(inputs.url, {'method': 'GET', 'timeout_ms': 50})`, inputs: map[string]any{"url": slow.URL},
		limits: &hogwirev1.ExecutionLimits{FetchTimeout: durationpb.New(4 * time.Second)}})
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: loopback(), FetchPolicy: fetch.Policy{MaxRetries: -1}})
	if res.ErrorKind != executor.KindFetchTimeout || !strings.Contains(res.Error, "timed out while waiting for the response after 50ms") {
		t.Errorf("%s, kind %s: want a timeout after 50ms", dump(res), res.ErrorKind)
	}

	rec := &recorder{}
	d = prepare(t, spec{hog: `fetch('https://a.example/', {'timeout_ms': 1500}); fetch('https://b.example/', {'timeout_ms': 60000}); fetch('https://c.example/')`,
		limits: &hogwirev1.ExecutionLimits{FetchTimeout: durationpb.New(5 * time.Second), MaxFetches: 5}})
	if res := invoke(t, d, event(t, nil), executor.Options{Fetcher: rec}); res.Status != executor.Succeeded {
		t.Fatal(dump(res))
	}
	want := []time.Duration{1500 * time.Millisecond, 60 * time.Second, 0}
	for i, r := range rec.reqs {
		if r.Timeout != want[i] || rec.policies[i].Timeout != 5*time.Second {
			t.Errorf("fetch %d: request timeout %s, policy %s; want %s under the 5s limit", i+1, r.Timeout, rec.policies[i].Timeout, want[i])
		}
	}
}

// aws_sigv4 through the real client: the endpoint checks the signature as
// AWS would, by signing what it received again with the same key.
func TestFetchAWSSigV4(t *testing.T) {
	const keyID, secret, token = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-9f2"
	at := time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC)
	var got, want string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = r.Header.Get("Authorization")
		// Rebuild the request from the headers it says it signed.
		signed := got[strings.Index(got, "SignedHeaders=")+len("SignedHeaders=") : strings.Index(got, ", Signature=")]
		check, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
		check.ContentLength = int64(len(body))
		for _, h := range strings.Split(signed, ";") {
			if h != "host" && h != "content-length" && h != "x-amz-date" {
				check.Header.Set(h, r.Header.Get(h))
			}
		}
		sum := sha256.Sum256(body)
		_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret, SessionToken: token},
			check, hexString(sum[:]), "kinesis", "eu-west-1", at)
		want = check.Header.Get("Authorization")
	}))
	defer srv.Close()
	d := prepare(t, spec{hog: `fetch(inputs.url, {
		'headers': {'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'Kinesis_20131202.PutRecord'},
		'body': '{"StreamName":"s"}',
		'aws_sigv4': {'access_key_id_input': 'key_id', 'secret_access_key_input': 'secret_key', 'session_token_input': 'token',
			'region': 'eu-west-1', 'service': 'kinesis'}})`,
		schema: []*hogwirev1.InputSchema{{Key: "secret_key", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true}},
		inputs: map[string]any{"url": srv.URL, "key_id": keyID, "secret_key": secret, "token": token}})
	client := fetch.New(fetch.Options{AllowCIDRs: fetch.Loopback(), Now: func() time.Time { return at }})
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: client})
	if res.Status != executor.Succeeded {
		t.Fatal(dump(res))
	}
	if got == "" || got != want {
		t.Errorf("Authorization\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(got, "x-amz-security-token") || !strings.Contains(got, "x-amz-target") {
		t.Errorf("the session token and target are not signed: %s", got)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// standard_webhooks through the real client: a retried attempt has its own
// timestamp and signature but the same webhook-id, and a later invocation
// of the same event (a durable retry) sends that id again. During a
// rotation both secrets sign.
func TestFetchStandardWebhooks(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	var bodies [][]byte
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		seen, bodies = append(seen, r.Header.Clone()), append(bodies, b)
		if fail {
			fail = false
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	newSecret, oldSecret := []byte("the new signing secret, 32 bytes"), []byte("the old signing secret, 32 bytes")
	enc := func(b []byte) string { return "whsec_" + base64.StdEncoding.EncodeToString(b) }
	d := prepare(t, spec{hog: `fetch(inputs.url, {'body': {'event': event.event}, 'standard_webhooks': {'secret_input': 'signing_secret', 'previous_secret_input': 'previous_secret'}})`,
		inputs: map[string]any{"url": srv.URL, "signing_secret": enc(newSecret), "previous_secret": enc(oldSecret)}})
	var clockMu sync.Mutex
	now := time.Unix(1714737600, 0)
	clock := func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		now = now.Add(3 * time.Second)
		return now
	}
	client := fetch.New(fetch.Options{AllowCIDRs: fetch.Loopback(), Now: clock})
	opts := executor.Options{Fetcher: client, FetchPolicy: fetch.Policy{BackoffBase: time.Millisecond}, Redact: true}
	res := invoke(t, d, event(t, nil), opts)
	if res.Status != executor.Succeeded || len(seen) != 2 {
		t.Fatalf("%s, %d attempts", dump(res), len(seen))
	}
	invoke(t, d, event(t, nil), opts) // the same event again
	other := event(t, nil)
	other.Uuid = "0190f7f0-0000-7000-8000-000000000002"
	invoke(t, d, other, opts)
	if len(seen) != 4 {
		t.Fatalf("%d requests, want 4", len(seen))
	}
	id := seen[0].Get("Webhook-Id")
	if !strings.HasPrefix(id, "msg_") || seen[1].Get("Webhook-Id") != id || seen[2].Get("Webhook-Id") != id {
		t.Errorf("webhook-id %q, %q, %q: want one id for every attempt and retry of a delivery", id, seen[1].Get("Webhook-Id"), seen[2].Get("Webhook-Id"))
	}
	if seen[3].Get("Webhook-Id") == id {
		t.Error("another event got the same webhook-id")
	}
	if seen[0].Get("Webhook-Timestamp") == seen[1].Get("Webhook-Timestamp") {
		t.Error("the retried attempt reused the first attempt's timestamp")
	}
	for i, h := range seen {
		content := h.Get("Webhook-Id") + "." + h.Get("Webhook-Timestamp") + "." + string(bodies[i])
		var want []string
		for _, k := range [][]byte{newSecret, oldSecret} {
			m := hmac.New(sha256.New, k)
			m.Write([]byte(content))
			want = append(want, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
		}
		if got := h.Get("Webhook-Signature"); got != strings.Join(want, " ") {
			t.Errorf("attempt %d: webhook-signature %q, want %q", i+1, got, strings.Join(want, " "))
		}
	}
	// Without a rotation under way, one signature.
	d = prepare(t, spec{hog: `fetch(inputs.url, {'body': 'x', 'standard_webhooks': {'secret_input': 'signing_secret', 'previous_secret_input': 'previous_secret'}})`,
		inputs: map[string]any{"url": srv.URL, "signing_secret": enc(newSecret), "previous_secret": ""}})
	invoke(t, d, event(t, nil), opts)
	if sig := seen[len(seen)-1].Get("Webhook-Signature"); strings.Count(sig, "v1,") != 1 {
		t.Errorf("webhook-signature %q, want one signature", sig)
	}
}

// A credential header the code derived from secrets (Basic base64 of a key
// pair) holds no secret verbatim, yet redaction hides it, keeping the
// scheme; other headers keep their values.
func TestRedactDerivedCredentialHeaders(t *testing.T) {
	rec := &recorder{}
	d := prepare(t, spec{hog: `fetch('https://api.example.com/', {'headers': {
			'Authorization': f'Basic {base64Encode(f'{inputs.key}:{inputs.secret}')}',
			'X-Api-Key': upper(inputs.key),
			'X-Request': 'r-1'}})`,
		schema: []*hogwirev1.InputSchema{{Key: "secret", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true}},
		inputs: map[string]any{"key": "pub-1", "secret": "priv-2"}})
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: rec, Redact: true})
	if res.Status != executor.Succeeded {
		t.Fatal(dump(res))
	}
	if got := rec.reqs[0].Header.Get("Authorization"); got != "Basic cHViLTE6cHJpdi0y" {
		t.Fatalf("sent Authorization %q", got)
	}
	h := res.Fetches[0].Request.Header
	if h.Get("Authorization") != "Basic "+executor.Redacted || h.Get("X-Api-Key") != executor.Redacted || h.Get("X-Request") != "r-1" {
		t.Errorf("redacted headers %v", h)
	}
}

// Without any secret input, credential headers are still hidden.
func TestRedactCredentialHeadersWithoutSecrets(t *testing.T) {
	d := prepare(t, spec{hog: `fetch('https://api.example.com/', {'headers': {'X-Api-Key': inputs.k, 'X-Request': 'r-1'}})`,
		inputs: map[string]any{"k": "plain-value-1"}})
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: &recorder{}, Redact: true})
	h := res.Fetches[0].Request.Header
	if h.Get("X-Api-Key") != executor.Redacted || h.Get("X-Request") != "r-1" {
		t.Errorf("redacted headers %v", h)
	}
}

// Headers given as a literal input are built once and shared by the
// requests of every invocation: a bearer token, a program's change to its
// copy and redaction all leave them as configured.
func TestFetchLiteralHeaders(t *testing.T) {
	d := prepare(t, spec{
		hog: `
fetch('https://api.example.com/1', {'headers': inputs.headers, 'bearer_token_input': 'access'})
fetch('https://api.example.com/2', {'headers': inputs.headers})
let h := inputs.headers
h['X-Extra'] := event.event
fetch('https://api.example.com/3', {'headers': h})
fetch('https://api.example.com/4', {'headers': inputs.headers})`,
		schema: []*hogwirev1.InputSchema{
			{Key: "headers", Type: hogwirev1.InputType_INPUT_TYPE_DICTIONARY},
			{Key: "access", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
		},
		inputs: map[string]any{"headers": map[string]any{"x-team": "blue", "Cookie": "c=1"}, "access": "tok-8c1e4f"},
	})
	want := []map[string]string{
		{"X-Team": "blue", "Cookie": "c=1", "Authorization": "Bearer tok-8c1e4f"},
		{"X-Team": "blue", "Cookie": "c=1"},
		{"X-Team": "blue", "Cookie": "c=1", "X-Extra": "$pageview"},
		{"X-Team": "blue", "Cookie": "c=1"},
	}
	for run := range 2 {
		rec := &recorder{}
		res := invoke(t, d, event(t, nil), executor.Options{Fetcher: rec, Redact: true})
		if res.Status != executor.Succeeded || len(rec.reqs) != len(want) {
			t.Fatal(dump(res))
		}
		for i, req := range rec.reqs {
			if got := flat(req.Header); !maps.Equal(got, want[i]) {
				t.Errorf("run %d, request %d: header %v, want %v", run, i+1, got, want[i])
			}
		}
		if got := res.Fetches[1].Request.Header.Get("Cookie"); got != executor.Redacted {
			t.Errorf("run %d: the recorded Cookie header is %q, want it redacted", run, got)
		}
	}
}
