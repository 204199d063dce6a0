package fetch

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// AWS's published Signature V4 test suite (get-vanilla): its example
// credentials, scope and time, and the signature AWS lists for them.
func TestAWSSigV4PublishedVector(t *testing.T) {
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	s := &Signing{AWSSigV4: &AWSSigV4{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Region: "us-east-1", Service: "service"}}
	h, err := SignedHeader(Request{Method: "GET", URL: "https://example.amazonaws.com/", Header: http.Header{}, Sign: s}, at)
	if err != nil {
		t.Fatal(err)
	}
	want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
	if got := h.Get("Authorization"); got != want {
		t.Errorf("Authorization\n got %s\nwant %s", got, want)
	}
	if got := h.Get("X-Amz-Date"); got != "20150830T123600Z" {
		t.Errorf("X-Amz-Date = %q", got)
	}
}

func TestAWSSigV4SessionTokenAndBody(t *testing.T) {
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	s := &Signing{AWSSigV4: &AWSSigV4{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "TOKEN", Region: "eu-west-1", Service: "kinesis"}}
	req := Request{Method: "POST", URL: "https://kinesis.eu-west-1.amazonaws.com/", Body: []byte(`{"a":1}`),
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}, "X-Amz-Target": {"Kinesis_20131202.PutRecord"}}, Sign: s}
	h, err := SignedHeader(req, at)
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Amz-Security-Token") != "TOKEN" {
		t.Errorf("X-Amz-Security-Token = %q", h.Get("X-Amz-Security-Token"))
	}
	auth := h.Get("Authorization")
	for _, part := range []string{"Credential=AKIDEXAMPLE/20150830/eu-west-1/kinesis/aws4_request",
		"SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-security-token;x-amz-target"} {
		if !strings.Contains(auth, part) {
			t.Errorf("Authorization %q lacks %q", auth, part)
		}
	}
	// The body is covered: another body, another signature.
	req.Body = []byte(`{"a":2}`)
	h2, err := SignedHeader(req, at)
	if err != nil {
		t.Fatal(err)
	}
	if h2.Get("Authorization") == auth {
		t.Error("the signature does not cover the body")
	}
	if req.Header.Get("Authorization") != "" {
		t.Error("SignedHeader changed the request's own header")
	}
}

// The Standard Webhooks specification's published example.
func TestStandardWebhooksPublishedVector(t *testing.T) {
	k, err := ParseWebhookKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	s := &Signing{StandardWebhooks: &StandardWebhooks{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Keys: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}
	h, err := SignedHeader(Request{Method: "POST", URL: "https://example.com/hook", Body: []byte(`{"test": 2432232314}`), Sign: s}, time.Unix(1614265330, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Get("webhook-signature"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("webhook-signature = %q, want %q", got, want)
	}
	if h.Get("webhook-id") != "msg_p5jXN8AQM9LWM0D4loKWxJek" || h.Get("webhook-timestamp") != "1614265330" {
		t.Errorf("webhook-id %q, webhook-timestamp %q", h.Get("webhook-id"), h.Get("webhook-timestamp"))
	}
	// Without the prefix, as some providers show the secret, it is the same key.
	k2, err := ParseWebhookKey("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil || !hmac.Equal(k2.hmac, k.hmac) {
		t.Errorf("unprefixed secret: %v", err)
	}
}

func TestStandardWebhooksRotationAndEd25519(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	edRaw := WebhookSigningKeyPrefix + base64.StdEncoding.EncodeToString(seed)
	edKey, err := ParseWebhookKey(edRaw)
	if err != nil {
		t.Fatal(err)
	}
	oldSecret := []byte("an old secret of 24 bytes")
	s := &Signing{StandardWebhooks: &StandardWebhooks{ID: "msg_1", Keys: []string{edRaw, WebhookSecretPrefix + base64.StdEncoding.EncodeToString(oldSecret)}}}
	body := []byte(`{"event":"signup"}`)
	h, err := SignedHeader(Request{Method: "POST", URL: "https://example.com/", Body: body, Sign: s}, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	sigs := strings.Split(h.Get("Webhook-Signature"), " ")
	if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1a,") || !strings.HasPrefix(sigs[1], "v1,") {
		t.Fatalf("webhook-signature = %q, want a v1a and a v1 signature", h.Get("Webhook-Signature"))
	}
	content := []byte("msg_1.1700000000." + string(body))
	edSig, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sigs[0], "v1a,"))
	if !ed25519.Verify(edKey.PublicKey(), content, edSig) {
		t.Error("the v1a signature does not verify with the public key")
	}
	m := hmac.New(sha256.New, oldSecret)
	m.Write(content)
	if sigs[1] != "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)) {
		t.Error("the v1 signature does not verify with the old secret")
	}
}

func TestParseWebhookKeyErrors(t *testing.T) {
	for _, s := range []string{"whsec_not base64!", "whsec_c2hvcnQ=", "whsk_AAAA", "whsk_%%"} {
		if _, err := ParseWebhookKey(s); err == nil {
			t.Errorf("ParseWebhookKey(%q) succeeded", s)
		}
	}
}

// Every attempt is signed afresh: a retry carries its own time and
// signature, and the same webhook-id.
func TestClientSignsEveryAttempt(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		n := len(seen)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	var clock sync.Mutex
	now := time.Unix(1614265330, 0)
	tick := func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		now = now.Add(7 * time.Second)
		return now
	}
	c, _ := newTestClient(t)
	c.now = tick
	req := Request{Method: "POST", URL: srv.URL, Body: []byte(`{}`), Header: http.Header{"Content-Type": {"application/json"}},
		Sign: &Signing{StandardWebhooks: &StandardWebhooks{ID: "msg_retry", Keys: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}}
	// The request survives a trip through JSON (a delivery stored for a
	// later retry) with its signing.
	enc, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	req = Request{}
	if err := json.Unmarshal(enc, &req); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(context.Background(), req, Policy{MaxRetries: 2}, nil)
	if err != nil || resp.Status != 200 {
		t.Fatalf("Do: %v, %+v", err, resp)
	}
	if len(seen) != 2 {
		t.Fatalf("%d attempts, want 2", len(seen))
	}
	if seen[0].Get("Webhook-Id") != "msg_retry" || seen[1].Get("Webhook-Id") != "msg_retry" {
		t.Errorf("webhook-id changed across attempts: %q, %q", seen[0].Get("Webhook-Id"), seen[1].Get("Webhook-Id"))
	}
	if seen[0].Get("Webhook-Timestamp") == seen[1].Get("Webhook-Timestamp") || seen[0].Get("Webhook-Signature") == seen[1].Get("Webhook-Signature") {
		t.Error("the retry reused the first attempt's timestamp or signature")
	}
	if req.Header.Get("Webhook-Signature") != "" {
		t.Error("signing changed the caller's header")
	}

	// A signer that fails makes the request invalid, without retries.
	bad := &Signing{StandardWebhooks: &StandardWebhooks{ID: "msg"}}
	if _, err := c.Do(context.Background(), Request{URL: srv.URL, Sign: bad}, Policy{}, nil); err == nil || !strings.Contains(err.Error(), "no signing key") {
		t.Errorf("Do with a failing signer: %v", err)
	}
}
