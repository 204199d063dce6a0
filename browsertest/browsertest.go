// Package browsertest runs headless Chromium for tests that drive real
// web pages (the console, posthog-js) and collects every error a page
// reports: exceptions, console errors and failed loads.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Exec finds Debian's chromium (or $HOGWIRE_CHROMIUM), and skips the test
// saying how to get one when there is none.
func Exec(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("HOGWIRE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: install Debian's (apt-get install chromium; .ci/run does) or set HOGWIRE_CHROMIUM")
	return ""
}

// Errors collects what pages report as errors.
type Errors struct {
	mu   sync.Mutex
	errs []string
}

func (e *Errors) add(format string, args ...any) {
	e.mu.Lock()
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

// List returns the errors so far.
func (e *Errors) List() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.errs...)
}

// Options tune a browser.
type Options struct {
	Width, Height int // the window; 1280×900 when zero
	// Expected says whether a failed load of url is an answer the page
	// handles (an API's 4xx, say), not an error.
	Expected func(url string) bool
	// Human makes the browser look like a person's, not automation's: no
	// "HeadlessChrome" in its user agent and navigator.webdriver false.
	// Analytics SDKs (posthog-js) drop every event of a browser that looks
	// automated, as a bot's.
	Human bool
}

// New starts a headless Chromium for t, stopped when ctx ends or the test
// does, and returns the context to drive it with and its error collector.
func New(ctx context.Context, t testing.TB, o Options) (context.Context, *Errors) {
	t.Helper()
	exe := Exec(t)
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(o.Width, o.Height),
	)
	if o.Human {
		opts = append(opts, chromedp.Flag("disable-blink-features", "AutomationControlled"))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })

	errs := &Errors{}
	if err := chromedp.Listen(bctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			errs.add("exception at %s:%d: %s", d.URL, d.LineNumber+1, desc)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				errs.add("console.%s: %s", e.Type, strings.Join(parts, " "))
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError && (o.Expected == nil || e.Entry.Source != log.EntrySourceNetwork || !o.Expected(e.Entry.URL)) {
				errs.add("log (%s): %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if o.Human {
		v, err := chromedp.CallBrowser(bctx, browser.GetVersion, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		ua := strings.Replace(v.UserAgent, "HeadlessChrome/", "Chrome/", 1)
		if _, err := chromedp.Call(bctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua}); err != nil {
			t.Fatal(err)
		}
	}
	return bctx, errs
}
