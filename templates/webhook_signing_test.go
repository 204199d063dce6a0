package templates_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/templates"
)

// The webhook template's signed requests, sent with the real client to a
// receiver that verifies them with the Standard Webhooks specification's
// own Go library, at the real time: the first attempt fails with a 503, so
// the retry must carry a fresh, valid signature and the same webhook-id.
// During a rotation, a receiver holding either secret accepts them.
func TestWebhookStandardWebhooksVerifiedByReferenceLibrary(t *testing.T) {
	newSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the new signing secret, 32 bytes"))
	oldSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the old signing secret, 32 bytes"))
	verifiers := map[string]*standardwebhooks.Webhook{}
	for name, s := range map[string]string{"new": newSecret, "old": oldSecret} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		verifiers[name] = wh
	}
	var mu sync.Mutex
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		for name, wh := range verifiers {
			if err := wh.Verify(body, r.Header); err != nil {
				t.Errorf("attempt %d: the %s secret does not verify: %v", len(ids)+1, name, err)
			}
		}
		ids = append(ids, r.Header.Get("Webhook-Id"))
		if len(ids) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	cat, err := templates.Load()
	if err != nil {
		t.Fatal(err)
	}
	tpl, ok := cat.Get("templates/webhook")
	if !ok {
		t.Fatal("no webhook template")
	}
	d, err := executor.Prepare(destinationFor(t, tpl, map[string]any{
		"url": srv.URL, "signing_secret": newSecret, "previous_signing_secret": oldSecret,
	}))
	if err != nil {
		t.Fatal(err)
	}
	project := &hogwirev1.Project{Name: "projects/acme", DisplayName: "Acme", TimeZone: "UTC"}
	g := executor.NewEvent(eventFor(t, goldenCase{}), project, executor.Source{URL: "https://hogwire.example.com"})
	client := fetch.New(fetch.Options{AllowCIDRs: fetch.Loopback()})
	defer client.CloseIdleConnections()
	res := d.Invoke(context.Background(), g, executor.Options{Fetcher: client, FetchPolicy: fetch.Policy{BackoffBase: time.Millisecond}, Redact: true})
	if res.Status != executor.Succeeded {
		t.Fatalf("%v: %s", res.Status, res.Error)
	}
	if len(ids) != 2 || ids[0] == "" || ids[0] != ids[1] {
		t.Errorf("webhook-ids %q: want two attempts with one id", ids)
	}
	for _, l := range res.Logs {
		for _, s := range []string{newSecret, oldSecret} {
			if strings.Contains(l.Message, s) {
				t.Errorf("a log line shows a signing secret: %s", l.Message)
			}
		}
	}
}
