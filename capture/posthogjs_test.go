package capture_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/browsertest"
	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/devstack/devstacktest"
)

// posthogJS returns the path of posthog-js's browser bundle, installed by
// testdata/posthogjs/install.sh, or skips the test.
func posthogJS(t *testing.T) string {
	dir := os.Getenv("HOGWIRE_POSTHOG_JS_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Skipf("no cache directory for posthog-js: %v", err)
		}
		dir = filepath.Join(cache, "hogwire-posthog-js")
	}
	p := filepath.Join(dir, "node_modules", "posthog-js", "dist", "array.js")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("posthog-js is not installed (%v): run capture/testdata/posthogjs/install.sh (.ci/run does)", err)
	}
	return p
}

// recorder is a webhook sink that keeps the events it receives.
type recorder struct {
	mu     sync.Mutex
	events []map[string]any
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev map[string]any
	b, _ := io.ReadAll(r.Body)
	if json.Unmarshal(b, &ev) == nil {
		rc.mu.Lock()
		rc.events = append(rc.events, ev)
		rc.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *recorder) names() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, ev := range rc.events {
		out = append(out, fmt.Sprint(ev["event"]))
	}
	return out
}

// find returns the first event called name whose elements chain
// contains elem ("" for any).
func (rc *recorder) find(name, elem string) map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, ev := range rc.events {
		if ev["event"] == name && strings.Contains(fmt.Sprint(ev["elements"]), elem) {
			return ev
		}
	}
	return nil
}

// The real posthog-js, in headless Chromium on a page of another origin,
// set up as PostHog's docs show and pointed at hogwire dev: its remote
// config loads, and its pageview, autocaptured clicks, identify, a custom
// event and the batch still queued as the page unloads reach a webhook
// destination, gzip-compressed, while the page logs no error and no failed
// request (posthog-js lazy-loads no script from hogwire).
func TestPostHogJSInBrowser(t *testing.T) {
	bundle := posthogJS(t)
	browsertest.Exec(t)

	rec := &recorder{}
	sink := httptest.NewServer(rec)
	defer sink.Close()
	st, cc := devstacktest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	pr, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
		ProjectId: "web", Project: &hogwirev1.Project{DisplayName: "Web"}})
	if err != nil {
		t.Fatal(err)
	}
	proj := pr.Project
	body, _ := structpb.NewValue(map[string]any{
		"event": "{event.event}", "distinct_id": "{event.distinct_id}",
		"url": "{event.properties.$current_url}", "plan": "{event.properties.plan}",
		"email": "{event.properties.$set.email}", "elements": "{event.elements_chain}",
	})
	if _, err := hogwirev1.NewDestinationServiceClient(cc).CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent: proj.Name, FromTemplate: "templates/webhook",
		Destination: &hogwirev1.Destination{DisplayName: "sink", Enabled: true, Inputs: map[string]*hogwirev1.InputValue{
			"url": {Value: structpb.NewStringValue(sink.URL)}, "body": {Value: body}}},
	}); err != nil {
		t.Fatal(err)
	}

	// The shop's pages, on an origin of their own. __posthog_debug=true
	// makes posthog-js log its own errors (a failed remote config, say) to
	// the console, where they fail the test.
	page := fmt.Sprintf(`<!doctype html><html><head><title>Shop</title>
<script src="/posthog.js"></script>
<script>
posthog.init(%q, {api_host: %q, person_profiles: 'identified_only'});
</script></head><body>
<button id="buy" onclick="document.title='bought'">Buy</button>
<a id="done" href="/thanks?__posthog_debug=true">Done</a>
</body></html>`, proj.CaptureToken, "http://"+st.HTTPAddr)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/posthog.js":
			w.Header().Set("Content-Type", "application/javascript")
			http.ServeFile(w, r, bundle)
		case "/favicon.ico":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, page)
		}
	}))
	defer site.Close()

	// A person's browser: posthog-js drops every event of one that looks
	// automated.
	bctx, errs := browsertest.New(ctx, t, browsertest.Options{Human: true})
	var (
		mu     sync.Mutex
		bodies []string // how each capture request's body is encoded
	)
	chromedp.Listen(bctx, func(ev any) {
		e, ok := ev.(*network.EventRequestWillBeSent)
		if !ok || e.Request.Method != http.MethodPost {
			return
		}
		u, err := url.Parse(e.Request.URL)
		if err != nil || u.Host != st.HTTPAddr || !slices.Contains(capture.Paths(), strings.TrimSuffix(u.Path, "/")) {
			return
		}
		enc := fmt.Sprint(e.Request.Headers["Content-Type"], e.Request.Headers["content-type"])
		if es := e.Request.PostDataEntries; len(es) > 0 && bytes.HasPrefix(es[0].Bytes, []byte{0x1f, 0x8b}) {
			enc = "gzip"
		}
		mu.Lock()
		bodies = append(bodies, u.Path+" "+enc)
		mu.Unlock()
	})
	if err := chromedp.Do(bctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{})
		return err
	}), chromedp.Navigate(site.URL+"/pricing?__posthog_debug=true")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`!!(window.posthog && window.posthog.__loaded)`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("posthog-js never loaded: %v; page errors: %v", err, errs.List())
	}
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS("#buy")),
		chromedp.Evaluate[chromedp.Void](`posthog.identify('ada', {email: 'ada@example.com'}); posthog.capture('plan_chosen', {plan: 'pro'})`),
	); err != nil {
		t.Fatal(err)
	}
	wait := func(done func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("the sink got only %v; page errors: %v", rec.names(), errs.List())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait(func() bool {
		got := rec.names()
		return !slices.ContainsFunc([]string{"$pageview", "$autocapture", "$identify", "plan_chosen"},
			func(n string) bool { return !slices.Contains(got, n) })
	})
	// The link's click is queued, and sent as the page unloads.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS("#done"))); err != nil {
		t.Fatal(err)
	}
	wait(func() bool { return rec.find("$autocapture", "a:") != nil })

	if pv := rec.find("$pageview", ""); !strings.Contains(fmt.Sprint(pv["url"]), "/pricing") {
		t.Errorf("pageview %v: want the page's URL", pv)
	}
	if ac := rec.find("$autocapture", "button"); ac == nil {
		t.Errorf("no autocapture of the button; the sink got %v", rec.names())
	}
	if id := rec.find("$identify", ""); id["distinct_id"] != "ada" || id["email"] != "ada@example.com" {
		t.Errorf("identify %v", id)
	}
	if pc := rec.find("plan_chosen", ""); pc["distinct_id"] != "ada" || pc["plan"] != "pro" {
		t.Errorf("custom event %v", pc)
	}
	if link := rec.find("$autocapture", "a:"); link["distinct_id"] != "ada" || !strings.Contains(fmt.Sprint(link["elements"]), "/thanks") {
		t.Errorf("link autocapture %v", link)
	}
	// The remote config offers gzip-js, which posthog-js then uses.
	mu.Lock()
	t.Logf("capture requests: %v", bodies)
	if !slices.Contains(bodies, "/e/ gzip") {
		t.Errorf("no capture request was gzip-compressed: %v", bodies)
	}
	mu.Unlock()
	for _, e := range errs.List() {
		t.Errorf("page error: %s", e)
	}
}
