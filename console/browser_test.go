package console_test

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/browsertest"
	"github.com/hogwire/hogwire/devstack/devstacktest"
)

// updateShots makes the browser test write its picture of each page to
// docs/console, where docs/console.md shows them; otherwise they go to a
// temporary directory, so that a test run changes nothing in the tree.
var updateShots = flag.Bool("screenshots", false, "rewrite docs/console/*.png")

// sink is a webhook receiver that records the bodies it gets.
type sink struct {
	mu     sync.Mutex
	bodies []string
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok": true}`)
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

// TestConsoleInBrowser drives the console in headless Chromium against a
// whole dev stack: sign in, create a project and a webhook destination from
// the template, edit its code (compile errors shown as you type), run a
// test, send an event and see the delivery in the metrics and the logs, look
// at the history, and disable the destination. Every page is checked with
// axe-core, screenshotted into docs/console, and must log no error.
func TestConsoleInBrowser(t *testing.T) {
	browsertest.Exec(t)
	axeSrc, axeErr := os.ReadFile("node_modules/axe-core/axe.min.js")
	if axeErr != nil {
		t.Logf("accessibility checks off: %v (run npm ci in console/; .ci/run does)", axeErr)
	}

	hook := &sink{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	st, cc := devstacktest.Start(t, nil)
	base := "http://" + st.HTTPAddr + "/console/"

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Answers that the app shows, such as the compile check's 400 for
	// code with errors or a wrong token's 401, are logged by the browser
	// as failed loads; they are the API working.
	bctx, errs := browsertest.New(ctx, t, browsertest.Options{Expected: func(url string) bool {
		return strings.Contains(url, "/console/api/") || strings.HasSuffix(url, "/console/session")
	}})

	screenshots := t.TempDir()
	if *updateShots {
		screenshots = filepath.Join("..", "docs", "console")
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) chromedp.Action[chromedp.Void] { return chromedp.Evaluate[chromedp.Void](js) }
	poll := func(what, js string, timeout time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		time.Sleep(150 * time.Millisecond) // let the last frame paint
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(screenshots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	axe := func(page string) {
		t.Helper()
		if axeSrc == nil {
			return
		}
		type violation struct {
			ID, Impact, Help string
			Nodes            []struct{ Target []any }
		}
		run("load axe on "+page, eval(`window.axe ? 0 : (0, eval)(`+jsString(string(axeSrc))+`)`))
		res, err := chromedp.Run(bctx, chromedp.Evaluate[[]violation](
			`axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical'))`,
			chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe on %s: %v", page, err)
		}
		for _, v := range res {
			var where []string
			for _, n := range v.Nodes {
				where = append(where, fmt.Sprint(n.Target...))
			}
			t.Errorf("axe on %s: %s (%s): %s at %s", page, v.ID, v.Impact, v.Help, strings.Join(where, ", "))
		}
	}
	// waitText waits until sel's text contains want.
	waitText := func(sel, want string) {
		t.Helper()
		poll(fmt.Sprintf("wait for %q in %s", want, sel),
			fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.textContent.includes(%s) })()`, jsString(sel), jsString(want)), 30*time.Second)
	}
	// visible waits until an element matching sel is shown.
	visible := func(sel string) {
		t.Helper()
		poll("wait for "+sel, fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.getClientRects().length > 0 })()`, jsString(sel)), 20*time.Second)
	}
	waitURL := func(suffix string) {
		t.Helper()
		poll("wait for URL "+suffix, fmt.Sprintf(`location.pathname.endsWith(%s)`, jsString(suffix)), 15*time.Second)
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	// submit submits the form of the element sel as pressing Enter would
	// (chromedp.Submit calls form.submit(), which skips the app's handler).
	// setValue sets a control's value as typing or choosing would.
	setValue := func(sel, v string) chromedp.Action[chromedp.Void] {
		return eval(fmt.Sprintf(`(e => { e.value = %s; e.dispatchEvent(new Event(e.tagName === 'SELECT' ? 'change' : 'input', {bubbles: true})) })(document.querySelector(%s))`, jsString(v), jsString(sel)))
	}
	submit := func(sel string) chromedp.Action[chromedp.Void] {
		return eval(fmt.Sprintf(`document.querySelector(%s).form.requestSubmit()`, jsString(sel)))
	}

	// Sign in. The first load is what the load-time figure measures: from
	// the embedded assets, until the app has rendered its first page.
	run("open", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdplog.Enable, cdp.Empty{})
		return err
	}), chromedp.Navigate(base), chromedp.WaitVisible(css("#token")))
	// The first load of a fresh browser, then three with its cache off
	// (every asset fetched again, from the embedded files).
	type loadTiming struct{ Load, Ready, Transfer float64 }
	measure := func() loadTiming {
		t.Helper()
		lt, err := chromedp.Run(bctx, chromedp.Poll[*loadTiming](`(() => {
			const n = performance.getEntriesByType('navigation')[0], r = performance.getEntriesByName('hogwire:ready')[0]
			if (!n || !n.loadEventEnd || !r) return null
			const bytes = performance.getEntriesByType('resource').reduce((s, e) => s + (e.transferSize || 0), n.transferSize || 0)
			return {load: n.loadEventEnd, ready: r.startTime, transfer: bytes}
		})()`, chromedp.WithPollingTimeout(10*time.Second)))
		if err != nil {
			t.Fatalf("timing: %v", err)
		}
		return *lt
	}
	cold := measure()
	run("cache off", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
		return err
	}))
	var warm []loadTiming
	for range 3 {
		run("reload", chromedp.Navigate(base), chromedp.WaitVisible(css("#token")))
		warm = append(warm, measure())
	}
	slices.SortFunc(warm, func(a, b loadTiming) int { return cmp.Compare(a.Ready, b.Ready) })
	report := fmt.Sprintf("console load from the embedded assets (Navigation Timing): fresh browser: load event %.0f ms, app rendered %.0f ms; "+
		"cache off, median of 3: load event %.0f ms, app rendered %.0f ms (%.0f KB transferred)",
		cold.Load, cold.Ready, warm[1].Load, warm[1].Ready, warm[1].Transfer/1024)
	t.Log(report)
	if f := os.Getenv("HOGWIRE_CONSOLE_TIMING"); f != "" {
		os.WriteFile(f, []byte(report+"\n"), 0o644)
	}
	axe("sign-in")
	shot("01-sign-in")
	run("wrong token", chromedp.SendKeys(css("#token"), "hwa_wrong"), submit("#token"))
	waitText("#token-error", "not the admin token")
	run("sign in", setValue("#token", ""), chromedp.SendKeys(css("#token"), st.AdminToken), submit("#token"))
	waitText("h1", "Projects")

	// A project, made in the UI.
	run("new project", chromedp.SendKeys(css("#project-name"), "My shop"), chromedp.SendKeys(css("#project-id"), "shop"), submit("#project-id"))
	waitURL("/projects/shop")
	waitText("main", "No destinations yet")

	// Create a webhook destination from the catalogue.
	run("catalogue", chromedp.Click(css(`a[href$="/projects/shop/new"]`)))
	waitText("main", "templates")
	run("search", chromedp.SendKeys(css("#tpl-search"), "webhook"))
	waitText("ul.cards", "Webhook")
	axe("catalogue")
	shot("03-catalogue")
	run("pick webhook", chromedp.Click(css(`a[href$="/new/webhook"]`)))
	visible("#input-url")
	axe("create form")
	// Submitting without the required URL names the field.
	run("submit empty", chromedp.SendKeys(css("#dest-id"), "hook"), submit("#dest-id"))
	waitText(".field.invalid", "required")
	shot("04-create")
	run("fill url", chromedp.SendKeys(css("#input-url"), hs.URL+"/hook"), submit("#dest-id"))
	waitURL("/destinations/hook")
	waitText("[data-testid=match-result]", "Would match")
	axe("configuration")
	shot("05-configuration")
	// The live preview follows the filters as they are edited.
	run("filter", chromedp.Click(`//button[text()="Add event"]`), chromedp.SendKeys(css(`input[aria-label="Event 1"]`), "signed_up"))
	waitText("[data-testid=match-result]", "Would not match")
	run("unfilter", chromedp.Click(css(`button[aria-label="Remove event 1"]`)))
	waitText("[data-testid=match-result]", "Would match")

	// Tabs work from the keyboard, with focus visible.
	run("keyboard tabs", chromedp.Focus(css("#tab-configuration")), chromedp.KeyEvent(kb.ArrowRight))
	waitURL("/hook/code")
	poll("focus moves with the tab", `document.activeElement && document.activeElement.id === 'tab-code'`, 5*time.Second)
	outline, err := chromedp.Run(bctx, chromedp.Evaluate[string](`getComputedStyle(document.activeElement).outlineStyle`))
	if err != nil {
		t.Fatal(err)
	}
	if outline == "none" || outline == "" {
		t.Errorf("the focused tab has no visible outline (outline-style %q)", outline)
	}

	// Code: compile errors appear as you type; the fix is saved.
	waitText("[data-testid=compile-status]", "Compiles")
	const broken = "\nlet broken := "
	run("type error", chromedp.Click(css(".cm-content")), chromedp.KeyEvent(kb.End, chromedp.KeyModifiers(chromedp.ModifierCtrl)), chromedp.KeyEvent(broken))
	waitText("[data-testid=compile-status]", "Line ")
	visible(".cm-lint-marker-error")
	axe("code")
	shot("06-code-error")
	run("fix", chromedp.KeyEvent(strings.Repeat(kb.Backspace, len(broken))), chromedp.KeyEvent("\nprint('sent by the console test'"))
	waitText("[data-testid=compile-status]", "Compiles")
	run("diff", chromedp.Click(`//label[contains(., "Show changes from the template")]/input`), chromedp.WaitVisible(css(".cm-changedLine")))
	shot("07-code-diff")
	run("save code", chromedp.Click(`//button[text()="Save code"]`))
	waitText("main", "Saved.")
	got, err := hogwirev1.NewDestinationServiceClient(cc).GetDestination(ctx, &hogwirev1.GetDestinationRequest{Name: "projects/shop/destinations/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got.Destination.Hog, "\nprint('sent by the console test')") {
		t.Fatalf("saved code ends %q", got.Destination.Hog[max(0, len(got.Destination.Hog)-80):])
	}

	// Test: a real request to the sink.
	run("test tab", chromedp.Click(css("#tab-test")), chromedp.Click(`//label[contains(., "Real: send them")]/input`),
		chromedp.Click(`//button[text()="Run test"]`))
	waitText("[data-testid=test-result]", "Succeeded")
	waitText("[data-testid=test-result]", "sent by the console test")
	waitText("[data-testid=test-result] details.request summary", "200")
	if hook.count() != 1 {
		t.Errorf("the sink got %d requests from the test, want 1", hook.count())
	}
	axe("test")
	shot("08-test")

	// A real event, delivered by the data plane.
	proj, err := hogwirev1.NewProjectServiceClient(cc).GetProject(ctx, &hogwirev1.GetProjectRequest{Name: "projects/shop"})
	if err != nil {
		t.Fatal(err)
	}
	props, _ := structpb.NewStruct(map[string]any{"plan": "pro"})
	if _, err := hogwirev1.NewEventServiceClient(cc).Publish(ctx, &hogwirev1.PublishRequest{Token: proj.Project.CaptureToken,
		Events: []*hogwirev1.Event{{Event: "signed_up", DistinctId: "ada", Properties: props}}}); err != nil {
		t.Fatal(err)
	}

	// Metrics show the delivery once the node's telemetry arrives.
	run("metrics tab", chromedp.Click(css("#tab-metrics")), chromedp.WaitVisible(css(`[data-testid=chart-outcomes] td[data-metric=succeeded]`)))
	poll("delivery counted", `(() => {
		const td = document.querySelector('[data-testid=chart-outcomes] td[data-metric=succeeded]')
		if (td && td.textContent.trim() !== '0') return true
		const b = [...document.querySelectorAll('button')].find(b => b.textContent === 'Refresh'); b && b.click(); return false
	})()`, 45*time.Second)
	if n := hook.count(); n != 2 {
		t.Errorf("the sink got %d requests, want 2 (the test and the delivery)", n)
	}
	visible(".uplot canvas")
	axe("metrics")
	shot("09-metrics")

	// Logs: the print of the delivery, live, and found by search.
	run("logs tab", chromedp.Click(css("#tab-logs")))
	waitText("[data-testid=log-entries]", "sent by the console test")
	run("search logs", chromedp.Click(`//label[contains(., "Live tail")]/input`), chromedp.SendKeys(css("#logs-search"), "console test"))
	waitText("main [role=status]", "entries")
	waitText("[data-testid=log-entries]", "sent by the console test")
	axe("logs")
	shot("10-logs")

	// Invocations: the delivery's record (records are written in batches:
	// refresh until it is there), searched by person, opened.
	run("invocations tab", chromedp.Click(css("#tab-invocations")))
	poll("delivery recorded", `(() => {
		const t = document.querySelector('[data-testid=invocations]')
		if (t && t.textContent.includes('signed_up')) return true
		const b = [...document.querySelectorAll('button')].find(b => b.textContent === 'Refresh'); b && b.click(); return false
	})()`, 45*time.Second)
	waitText("[data-testid=invocations]", "Succeeded")
	axe("invocations")
	shot("14-invocations")
	run("search nobody", setValue("#inv-distinct", "nobody"))
	waitText("[data-testid=invocations-status]", "No invocations")
	run("search ada", setValue("#inv-distinct", "ada"))
	waitText("[data-testid=invocations]", "signed_up")
	// Rerun what the search selects (the delivery, a succeeded one): its
	// count first, then the rerun, followed until it is done.
	run("search succeeded", setValue("#inv-status", "1"))
	waitText("[data-testid=invocations]", "signed_up")
	run("open rerun", chromedp.Click(`//button[text()="Rerun…"]`))
	poll("rerun panel focused", `document.activeElement && document.activeElement.id === 'rerun-heading'`, 5*time.Second)
	waitText("#rerun-heading", "succeeded")
	waitText("[data-testid=rerun-count]", "1 invocation would run again.")
	axe("rerun preview")
	run("start rerun", chromedp.Click(`//button[text()="Rerun 1"]`))
	waitText("[data-testid=rerun-progress]", "of 1 finished")
	poll("rerun done", `document.querySelector('[data-testid=rerun-progress]').textContent.startsWith('Done: 1 of 1 finished (1 succeeded')`, 60*time.Second)
	axe("rerun")
	shot("17-rerun")
	run("close rerun", chromedp.Click(`//section[@data-testid="rerun"]//button[text()="Close"]`))
	poll("focus back on Rerun…", `document.activeElement && document.activeElement.textContent === 'Rerun…'`, 5*time.Second)
	// A selection the server refuses shows its error as sent; Escape closes.
	run("rerun parked", setValue("#inv-status", "7"),
		eval(`[...document.querySelectorAll('button')].find(b => b.textContent === 'Rerun…').focus()`), chromedp.KeyEvent(kb.Enter))
	visible("[data-testid=rerun]")
	waitText("[data-testid=rerun] [role=alert]", "PARKED invocations run again on their own")
	run("escape", chromedp.KeyEvent(kb.Escape))
	poll("rerun closed", `!document.querySelector('[data-testid=rerun]')`, 5*time.Second)
	run("any status", setValue("#inv-status", "0"))
	run("open invocation", chromedp.Click(css("[data-testid=invocations] tbody a")))
	waitText("[data-testid=invocation]", "ada")
	waitText("[data-testid=fetch-attempts]", "200")
	waitText("[data-testid=invocation] ul.logs", "sent by the console test")
	axe("invocation")
	shot("15-invocation")

	// Test on that recent event.
	run("test on it", chromedp.Click(`//a[text()="Test on this event"]`))
	waitURL("/hook/test")
	waitText("#test-recent", "signed_up")
	run("run on recent", chromedp.Click(`//button[text()="Run test"]`))
	waitText("[data-testid=test-result]", "Succeeded")
	waitText("[data-testid=test-result]", "signed_up")
	axe("test on a recent event")
	shot("16-test-recent")

	// History: the creation and the code change.
	run("history tab", chromedp.Click(css("#tab-history")))
	waitText("ol.revisions", "Changed hog")
	waitText("ol.revisions", "Created")
	visible(".revision-detail .cm-editor")
	axe("history")
	shot("11-history")

	// Disable it.
	run("disable", chromedp.Click(`//button[text()="Disable"]`))
	waitText(".title-row", "Disabled")
	got, err = hogwirev1.NewDestinationServiceClient(cc).GetDestination(ctx, &hogwirev1.GetDestinationRequest{Name: "projects/shop/destinations/hook"})
	if err != nil || got.Destination.Enabled {
		t.Fatalf("after Disable: %v, %v", got.GetDestination().GetEnabled(), err)
	}

	// The lists, at desktop and phone width.
	run("destinations", chromedp.Click(css(`header nav a[href$="/projects/shop"]`)))
	waitText("main table", "Webhook")
	visible("svg.sparkline")
	run("group", setValue("#dest-group", "status"))
	waitText("main", "Disabled")
	axe("destinations")
	shot("02-destinations")
	run("projects", chromedp.Click(css(`header nav a[href$="/projects"]`)))
	waitText("main table", "My shop")
	axe("projects")
	shot("00-projects")

	phone := func(name, path, ready string) {
		t.Helper()
		run("phone "+name, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+path))
		waitText("main", ready)
		overflow, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil {
			t.Fatal(err)
		}
		if overflow {
			t.Errorf("%s scrolls sideways at phone width", name)
		}
		shot(name)
	}
	phone("12-phone-destinations", "projects/shop", "Webhook")
	phone("13-phone-configuration", "projects/shop/destinations/hook/configuration", "Would match")

	for _, e := range errs.List() {
		t.Errorf("browser: %s", e)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
