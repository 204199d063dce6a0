package dataplane_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
)

// sourceWebhook creates an enabled source webhook from a template.
func (st *stack) sourceWebhook(t *testing.T, project, id, template string, inputs map[string]string) *hogwirev1.Destination {
	t.Helper()
	d := &hogwirev1.Destination{Enabled: true, Inputs: map[string]*hogwirev1.InputValue{}}
	for k, v := range inputs {
		d.Inputs[k] = &hogwirev1.InputValue{Value: structpb.NewStringValue(v)}
	}
	resp, err := hogwirev1.NewDestinationServiceClient(st.admin).CreateDestination(context.Background(), &hogwirev1.CreateDestinationRequest{
		Parent: "projects/" + project, DestinationId: id, FromTemplate: "templates/" + template, Destination: d,
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Destination
}

// post sends body to a webhook's URL and returns the answer's status and
// body.
func (st *stack) post(t *testing.T, id string, headers map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+st.HTTPAddr+"/public/webhooks/"+id, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func hmacHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// Stripe and GitHub webhooks in front of a destination whose sink records
// what it gets: signed requests become events that the destination
// delivers; a bad signature is refused with 401 and delivers nothing;
// an unknown id is 404, a body past the capture limit 413.
func TestSourceWebhooks(t *testing.T) {
	s, cc := devstacktest.Start(t, func(c *devstack.Config) { c.Capture.MaxBodyBytes = 4 << 10 })
	st := &stack{Stack: s, admin: cc}
	st.project(t, "shop")
	sk := newSink(t, nil)
	hook := st.fromTemplate(t, "shop", "webhook", sk.URL, map[string]any{
		"event": "{event.event}", "user": "{event.distinct_id}", "props": "{event.properties}",
	}, &hogwirev1.Destination{DisplayName: "sink"})
	stripe := st.sourceWebhook(t, "shop", "stripe-in", "stripe-webhook", map[string]string{"signing_secret": "whsec_test"})
	github := st.sourceWebhook(t, "shop", "github-in", "github-webhook", map[string]string{"secret": "gh_secret"})
	st.waitConfig(t, 3)

	body := `{"id":"evt_9","type":"invoice.paid","livemode":false,"data":{"object":{"id":"in_1","object":"invoice","customer":"cus_7","amount_paid":4200,"currency":"eur"}}}`
	ts := fmt.Sprint(time.Now().Unix())
	status, answer := st.post(t, "stripe-in", map[string]string{"Content-Type": "application/json",
		"Stripe-Signature": "t=" + ts + ",v1=" + hmacHex("whsec_test", ts+"."+body)}, body)
	if status != http.StatusOK || answer["status"] != "ok" {
		t.Fatalf("signed Stripe request: %d %v", status, answer)
	}
	got := sk.next(t)
	props, _ := got["props"].(map[string]any)
	if got["event"] != "stripe invoice.paid" || got["user"] != "cus_7" || props["amount_paid"] != float64(4200) || props["stripe_event_id"] != "evt_9" {
		t.Errorf("the destination got %v", got)
	}

	// Signed with another secret: refused, nothing delivered.
	status, answer = st.post(t, "stripe-in", map[string]string{"Content-Type": "application/json",
		"Stripe-Signature": "t=" + ts + ",v1=" + hmacHex("whsec_other", ts+"."+body)}, body)
	if status != http.StatusUnauthorized || !strings.Contains(fmt.Sprint(answer["error"]), "invalid webhook signature") {
		t.Errorf("badly signed Stripe request: %d %v", status, answer)
	}
	waitStat(t, st, stripe.Name, "failed", 1)
	st.waitLog(t, stripe.Name, "invalid webhook signature")

	gh := `{"action":"created","sender":{"login":"octocat"},"repository":{"full_name":"octo/repo"}}`
	status, answer = st.post(t, "github-in", map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "star",
		"X-Hub-Signature-256": "sha256=" + hmacHex("gh_secret", gh)}, gh)
	if status != http.StatusOK {
		t.Fatalf("signed GitHub request: %d %v", status, answer)
	}
	got = sk.next(t)
	if got["event"] != "github star created" || got["user"] != "octocat" {
		t.Errorf("the destination got %v", got)
	}
	// GitHub's ping gets the code's own answer and captures nothing.
	ping := `{"zen":"Keep it logically awesome.","sender":{"login":"octocat"}}`
	status, answer = st.post(t, "github-in", map[string]string{"X-GitHub-Event": "ping",
		"X-Hub-Signature-256": "sha256=" + hmacHex("gh_secret", ping)}, ping)
	if status != http.StatusOK || answer["status"] != "pong" {
		t.Errorf("ping: %d %v", status, answer)
	}

	if status, answer = st.post(t, "nope", nil, "{}"); status != http.StatusNotFound || answer["error"] == nil {
		t.Errorf("unknown webhook: %d %v", status, answer)
	}
	if status, _ = st.post(t, "github-in", nil, `{"x":"`+strings.Repeat("a", 8<<10)+`"}`); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", status)
	}

	if resp, err := http.Get("http://" + st.HTTPAddr + "/public/webhooks/github-in"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v, want 405", resp, err)
	} else {
		resp.Body.Close()
	}

	waitStat(t, st, stripe.Name, "succeeded", 1)
	waitStat(t, st, github.Name, "succeeded", 2)
	waitStat(t, st, hook.Name, "succeeded", 2)
	time.Sleep(200 * time.Millisecond)
	if n := sk.count(); n != 2 {
		t.Errorf("the sink got %d requests, want 2 (the refused and the ping captured nothing)", n)
	}

	// A disabled webhook's URL is unknown.
	if _, err := hogwirev1.NewDestinationServiceClient(st.admin).UpdateDestination(context.Background(), &hogwirev1.UpdateDestinationRequest{
		Destination: &hogwirev1.Destination{Name: github.Name}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _ := st.post(t, "github-in", nil, "{}")
		if status == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a disabled webhook answers %d, want 404", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
