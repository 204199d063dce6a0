package fetch

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hogwire/hogwire/testport"
)

// phaseTimeout is the attempt timeout of tests that check which phase
// timed out. It leaves a loaded, race-instrumented machine time to finish
// the phases before the one under test.
const phaseTimeout = 250 * time.Millisecond

// fakeSleep records the waits Do asks for and returns at once, so retry
// timing is checked without spending it.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	return context.Cause(ctx)
}

func (f *fakeSleep) recorded() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

// newTestClient returns a client that may reach loopback and does not
// really sleep between attempts.
func newTestClient(t *testing.T) (*Client, *fakeSleep) {
	t.Helper()
	c := New(Options{AllowCIDRs: Loopback()})
	t.Cleanup(c.CloseIdleConnections)
	fs := &fakeSleep{}
	c.sleep = fs.sleep
	return c, fs
}

// attempts collects what observe is told.
type attempts struct {
	mu  sync.Mutex
	all []Attempt
}

func (a *attempts) observe(at Attempt) {
	a.mu.Lock()
	a.all = append(a.all, at)
	a.mu.Unlock()
}

func (a *attempts) list() []Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Attempt(nil), a.all...)
}

// statusSequence serves the given statuses in order, then the last one
// forever, and counts requests.
func statusSequence(t *testing.T, header http.Header, codes ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		code := codes[min(i, len(codes)-1)]
		for k, vs := range header {
			w.Header()[k] = vs
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "response %d", i+1)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestRetriesServerErrorsUntilSuccess(t *testing.T) {
	srv, hits := statusSequence(t, nil, 503, 503, 200)
	c, fs := newTestClient(t)
	var obs attempts
	resp, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{}, obs.observe)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || resp.Attempts != 3 || string(resp.Body) != "response 3" {
		t.Fatalf("got status %d, attempts %d, body %q; want 200, 3, %q", resp.Status, resp.Attempts, resp.Body, "response 3")
	}
	if hits.Load() != 3 {
		t.Fatalf("server saw %d requests, want 3", hits.Load())
	}
	got := obs.list()
	if len(got) != 3 {
		t.Fatalf("observe called %d times, want 3", len(got))
	}
	for i, a := range got {
		wantStatus, wantRetry := 503, true
		if i == 2 {
			wantStatus, wantRetry = 200, false
		}
		if a.N != i+1 || a.Max != 4 || a.Status != wantStatus || a.WillRetry != wantRetry || a.Err != nil {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
		if a.WillRetry && (a.RetryIn < 0 || a.RetryIn > DefaultBackoffBase<<i) {
			t.Errorf("attempt %d: RetryIn %v outside full-jitter range [0, %v]", i+1, a.RetryIn, DefaultBackoffBase<<i)
		}
	}
	if waits := fs.recorded(); len(waits) != 2 || waits[0] != got[0].RetryIn || waits[1] != got[1].RetryIn {
		t.Fatalf("waited %v, want the observed RetryIn of attempts 1 and 2", waits)
	}
}

func TestGivesUpAfterMaxRetriesWithLastResponse(t *testing.T) {
	srv, hits := statusSequence(t, nil, 502)
	c, _ := newTestClient(t)
	resp, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 502 || resp.Attempts != 4 || hits.Load() != 4 || string(resp.Body) != "response 4" {
		t.Fatalf("got %d after %d attempts (%d hits), body %q; want the 4th 502", resp.Status, resp.Attempts, hits.Load(), resp.Body)
	}
}

func TestMaxRetriesPolicy(t *testing.T) {
	for _, tc := range []struct {
		maxRetries int
		want       int32
	}{{-1, 1}, {1, 2}, {5, 6}} {
		srv, hits := statusSequence(t, nil, 500)
		c, _ := newTestClient(t)
		resp, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{MaxRetries: tc.maxRetries}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hits.Load() != tc.want || resp.Attempts != int(tc.want) {
			t.Errorf("MaxRetries %d: %d requests, %d attempts; want %d", tc.maxRetries, hits.Load(), resp.Attempts, tc.want)
		}
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 422} {
		srv, hits := statusSequence(t, nil, code, 200)
		c, fs := newTestClient(t)
		var obs attempts
		resp, err := c.Do(context.Background(), Request{Method: "POST", URL: srv.URL, Body: []byte("{}")}, Policy{}, obs.observe)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != code || resp.Attempts != 1 || hits.Load() != 1 || len(fs.recorded()) != 0 {
			t.Errorf("%d: got status %d after %d attempts, %d hits; want 1 attempt", code, resp.Status, resp.Attempts, hits.Load())
		}
		if a := obs.list(); len(a) != 1 || a[0].WillRetry || a[0].Status != code {
			t.Errorf("%d: observed %+v", code, a)
		}
	}
}

func TestRetriableStatuses(t *testing.T) {
	for _, code := range []int{408, 429, 500, 501, 502, 503, 504} {
		srv, hits := statusSequence(t, nil, code, 204)
		c, _ := newTestClient(t)
		resp, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 204 || hits.Load() != 2 {
			t.Errorf("%d: got %d after %d requests, want 204 after 2", code, resp.Status, hits.Load())
		}
	}
}

func TestRetryAfterSecondsIsHonoured(t *testing.T) {
	srv, _ := statusSequence(t, http.Header{"Retry-After": {"1"}}, 429, 200)
	c, fs := newTestClient(t)
	var obs attempts
	resp, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{}, obs.observe)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || resp.Attempts != 2 {
		t.Fatalf("got %d after %d attempts", resp.Status, resp.Attempts)
	}
	if a := obs.list()[0]; a.Status != 429 || !a.WillRetry || a.RetryIn != time.Second {
		t.Fatalf("first attempt %+v, want 429 retried in 1s", a)
	}
	if w := fs.recorded(); len(w) != 1 || w[0] != time.Second {
		t.Fatalf("waited %v, want [1s]", w)
	}
}

func TestRetryAfterBeyondTheWaitIsReturned(t *testing.T) {
	// A server asking for more than MaxRetryAfter is not retried early:
	// its response comes back, for the caller to retry when it says.
	srv, hits := statusSequence(t, http.Header{"Retry-After": {"3600"}}, 503, 200)
	c, fs := newTestClient(t)
	var obs attempts
	resp, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{MaxRetryAfter: 2 * time.Second}, obs.observe)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 503 || resp.Attempts != 1 || hits.Load() != 1 {
		t.Fatalf("got %d after %d attempts (%d requests), want the 503 after 1", resp.Status, resp.Attempts, hits.Load())
	}
	if a := obs.list()[0]; a.WillRetry {
		t.Fatalf("attempt %+v, want no retry", a)
	}
	if w := fs.recorded(); len(w) != 0 {
		t.Fatalf("waited %v, want no wait", w)
	}
}

// A pause shared with other requests (Policy.NotBefore) holds a retry
// until it ends, however short the backoff; one longer than MaxRetryAfter
// returns the response instead.
func TestRetryWaitsForNotBefore(t *testing.T) {
	srv, hits := statusSequence(t, nil, 500, 200)
	c, fs := newTestClient(t)
	var obs attempts
	pause := time.Now().Add(5 * time.Second)
	// The fake sleep does not move the clock: the pause ends with the
	// first wait.
	p := Policy{BackoffBase: time.Millisecond, NotBefore: func() time.Time {
		if len(fs.recorded()) > 0 {
			return time.Time{}
		}
		return pause
	}}
	resp, err := c.Do(context.Background(), Request{URL: srv.URL}, p, obs.observe)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || hits.Load() != 2 {
		t.Fatalf("got %d after %d requests", resp.Status, hits.Load())
	}
	if w := fs.recorded(); len(w) != 1 || w[0] < 4*time.Second || w[0] > 5*time.Second {
		t.Fatalf("waited %v, want about 5s (the pause)", w)
	}
	if a := obs.list()[0]; a.RetryIn != fs.recorded()[0] {
		t.Fatalf("attempt reported RetryIn %v, waited %v", a.RetryIn, fs.recorded()[0])
	}

	srv, hits = statusSequence(t, nil, 500, 200)
	c, fs = newTestClient(t)
	pause = time.Now().Add(time.Hour)
	resp, err = c.Do(context.Background(), Request{URL: srv.URL}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 500 || hits.Load() != 1 {
		t.Fatalf("with an hour's pause: got %d after %d requests, want the 500 after 1", resp.Status, hits.Load())
	}
}

// A pause set while a call waits to retry (by another request's 429)
// holds the retry until it ends; one that grows past MaxRetryAfter gives
// the response back.
func TestRetryWaitsForAPauseSetWhileWaiting(t *testing.T) {
	srv, hits := statusSequence(t, nil, 500, 200)
	c, fs := newTestClient(t)
	var calls int
	pause := time.Now().Add(3 * time.Second)
	p := Policy{BackoffBase: time.Millisecond, MaxRetryAfter: 10 * time.Second, NotBefore: func() time.Time {
		calls++
		if calls == 2 { // after the backoff wait: another request paused meanwhile
			return pause
		}
		return time.Time{}
	}}
	resp, err := c.Do(context.Background(), Request{URL: srv.URL}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := fs.recorded(); resp.Status != 200 || hits.Load() != 2 || len(w) != 2 || w[1] < 2*time.Second {
		t.Fatalf("got %d after %d requests, waits %v; want 200 after 2, the second wait the pause", resp.Status, hits.Load(), w)
	}

	srv, hits = statusSequence(t, nil, 500, 200)
	c, _ = newTestClient(t)
	p.NotBefore = func() time.Time { return time.Now().Add(4 * time.Second) } // a pause that keeps growing
	resp, err = c.Do(context.Background(), Request{URL: srv.URL}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 500 || hits.Load() != 1 {
		t.Fatalf("with a growing pause: got %d after %d requests, want the 500 after 1", resp.Status, hits.Load())
	}
}

// BeforeRetry sees each attempt that would be retried, after observe,
// and can give that attempt's response back instead of retrying.
func TestBeforeRetryCanStopRetries(t *testing.T) {
	srv, hits := statusSequence(t, nil, 502, 503, 200)
	c, fs := newTestClient(t)
	var seen []int
	var observed []int
	p := Policy{BackoffBase: time.Millisecond, BeforeRetry: func(a Attempt) bool {
		if len(observed) != len(seen)+1 {
			t.Errorf("BeforeRetry for attempt %d before observe", a.N)
		}
		seen = append(seen, a.Status)
		return a.Status != 503
	}}
	resp, err := c.Do(context.Background(), Request{URL: srv.URL}, p, func(a Attempt) { observed = append(observed, a.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 503 || resp.Attempts != 2 || hits.Load() != 2 || len(fs.recorded()) != 1 {
		t.Fatalf("got %d after %d attempts (%d requests, waits %v), want the 503 after 2 and one wait", resp.Status, resp.Attempts, hits.Load(), fs.recorded())
	}
	if fmt.Sprint(seen) != "[502 503]" || fmt.Sprint(observed) != "[502 503]" {
		t.Errorf("BeforeRetry saw %v, observe %v; want both [502 503]", seen, observed)
	}
}

func TestRedirectIsReturnedNotFollowed(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/from", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/to", http.StatusFound)
	})
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t)
	resp, err := c.Do(context.Background(), Request{URL: srv.URL + "/from"}, Policy{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusFound || resp.Header.Get("Location") != "/to" || resp.Attempts != 1 {
		t.Fatalf("got %d, Location %q, %d attempts; want 302 to /to once", resp.Status, resp.Header.Get("Location"), resp.Attempts)
	}
	if followed.Load() != 0 {
		t.Fatal("redirect was followed")
	}
}

// blockingServer runs handler, and unblocks anything waiting on release
// before the server is closed.
func blockingServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, release <-chan struct{})) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	release := make(chan struct{})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		handler(w, r, release)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv, &hits
}

func TestTimeoutWaitingForResponse(t *testing.T) {
	srv, hits := blockingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	c, _ := newTestClient(t)
	var obs attempts
	resp, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{Timeout: phaseTimeout, MaxRetries: 1}, obs.observe)
	if resp != nil {
		t.Fatalf("got a response (%d); a timeout must not look like a status", resp.Status)
	}
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("error %v (%T), want *TimeoutError", err, err)
	}
	if te.Phase != PhaseResponse || te.After < phaseTimeout {
		t.Fatalf("timeout %+v, want phase response after ≥ the timeout", te)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("per-attempt timeout must not look like the caller's deadline")
	}
	got := obs.list()
	if len(got) != 2 || !got[0].WillRetry || got[1].WillRetry || hits.Load() != 2 {
		t.Fatalf("observed %+v with %d requests; want 2 attempts, the first retried", got, hits.Load())
	}
	for _, a := range got {
		if !errors.As(a.Err, &te) || te.Phase != PhaseResponse || a.Status != 0 {
			t.Fatalf("attempt %d: %+v", a.N, a)
		}
	}
	if !strings.Contains(err.Error(), "attempt 2/2") || !strings.Contains(err.Error(), "response phase") {
		t.Fatalf("error text %q should name the attempt and phase", err)
	}
}

func TestTimeoutReadingBody(t *testing.T) {
	srv, _ := blockingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	c, _ := newTestClient(t)
	_, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{Timeout: phaseTimeout, MaxRetries: -1}, nil)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Phase != PhaseBody {
		t.Fatalf("error %v, want a timeout in the body phase", err)
	}
}

func TestTimeoutInTLSHandshake(t *testing.T) {
	// A listener that accepts and never speaks: the client hangs in the
	// TLS handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				<-stop
				conn.Close()
			})
		}
	})
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		wg.Wait()
	})
	c, _ := newTestClient(t)
	_, err = c.Do(context.Background(), Request{URL: "https://" + ln.Addr().String()}, Policy{Timeout: phaseTimeout, MaxRetries: -1}, nil)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Phase != PhaseTLS {
		t.Fatalf("error %v, want a timeout in the tls phase", err)
	}
}

func TestTimeoutInDNS(t *testing.T) {
	// A DNS server that never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	c := New(Options{Resolver: &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", pc.LocalAddr().String())
		},
	}})
	t.Cleanup(c.CloseIdleConnections)
	_, err = c.Do(context.Background(), Request{URL: "http://hogwire-fetch-test.example/"}, Policy{Timeout: 100 * time.Millisecond, MaxRetries: -1}, nil)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Phase != PhaseDNS {
		t.Fatalf("error %v, want a timeout in the dns phase", err)
	}
}

func TestCallerDeadlineIsATimeoutAndStopsRetries(t *testing.T) {
	srv, hits := blockingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	c, _ := newTestClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), phaseTimeout)
	defer cancel()
	_, err := c.Do(ctx, Request{URL: srv.URL}, Policy{}, nil)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Phase != PhaseResponse || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a response-phase timeout that wraps context.DeadlineExceeded", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("%d requests after the caller's deadline, want 1", hits.Load())
	}
}

func TestStopsEarlyWhenDeadlineComesBeforeRetry(t *testing.T) {
	srv, hits := statusSequence(t, http.Header{"Retry-After": {"20"}}, 503, 200)
	c, fs := newTestClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var obs attempts
	resp, err := c.Do(ctx, Request{URL: srv.URL}, Policy{}, obs.observe)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 503 || resp.Attempts != 1 || hits.Load() != 1 || len(fs.recorded()) != 0 {
		t.Fatalf("got %d after %d attempts; want the 503 back at once", resp.Status, resp.Attempts)
	}
	if a := obs.list(); len(a) != 1 || a[0].WillRetry {
		t.Fatalf("observed %+v, want no retry announced", a)
	}
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	addr := testport.Addr(t)
	c, fs := newTestClient(t)
	var obs attempts
	resp, err := c.Do(context.Background(), Request{URL: "http://" + addr + "/"}, Policy{}, obs.observe)
	if resp != nil {
		t.Fatalf("got a response (%d), want an error", resp.Status)
	}
	var ce *ConnError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConnection) || ce.Kind != ConnRefused || ce.Addr != addr {
		t.Fatalf("error %v, want *ConnError refused for %s", err, addr)
	}
	if a := obs.list(); len(a) != 4 || len(fs.recorded()) != 3 {
		t.Fatalf("%d attempts and %d waits, want 4 and 3", len(a), len(fs.recorded()))
	}
}

func TestConnectionResetIsRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.(*net.TCPConn).SetLinger(0) // close with RST
				conn.Close()
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t)
	var obs attempts
	resp, err := c.Do(context.Background(), Request{Method: "POST", URL: srv.URL, Body: []byte("x")}, Policy{}, obs.observe)
	if err != nil {
		t.Fatal(err)
	}
	var ce *ConnError
	if a := obs.list(); resp.Status != 200 || len(a) != 2 || !errors.As(a[0].Err, &ce) {
		t.Fatalf("got %d, observed %+v; want a connection error then 200", resp.Status, a)
	}
}

func TestContextCancelStopsBackoffWait(t *testing.T) {
	srv, hits := statusSequence(t, http.Header{"Retry-After": {"30"}}, 503)
	c := New(Options{AllowCIDRs: Loopback()}) // real sleep
	t.Cleanup(c.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, Request{URL: srv.URL}, Policy{}, func(a Attempt) {
			if a.WillRetry {
				cancel()
			}
		})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do kept waiting 30s for Retry-After after the context was cancelled")
	}
	if hits.Load() != 1 {
		t.Fatalf("%d requests, want 1", hits.Load())
	}
}

func TestResponseBodyCap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size      int
		limit     int64
		chunked   bool
		wantLen   int
		truncated bool
	}{
		{"under", 999, 1000, false, 999, false},
		{"exact", 1000, 1000, false, 1000, false},
		{"over", 5000, 1000, false, 1000, true},
		{"over chunked", 5000, 1000, true, 1000, true},
		{"default cap", DefaultMaxResponseBytes + 10, 0, true, DefaultMaxResponseBytes, true},
		{"empty", 0, 0, false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Repeat("x", tc.size)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !tc.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				}
				io.WriteString(w, body)
			}))
			t.Cleanup(srv.Close)
			c, _ := newTestClient(t)
			resp, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{MaxResponseBytes: tc.limit}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Body) != tc.wantLen || resp.Truncated != tc.truncated || string(resp.Body) != body[:tc.wantLen] {
				t.Fatalf("body of %d bytes, truncated %v; want %d, %v", len(resp.Body), resp.Truncated, tc.wantLen, tc.truncated)
			}
		})
	}
}

func TestSendsMethodHeadersAndBody(t *testing.T) {
	type seen struct {
		method, path, ctype, ua, custom, body string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.UserAgent(), r.Header.Get("X-Custom"), string(b)}
		w.Header().Set("X-Reply", "yes")
		w.WriteHeader(201)
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t)
	resp, err := c.Do(context.Background(), Request{
		Method: "PUT",
		URL:    srv.URL + "/v1/things?x=1",
		Header: http.Header{"content-type": {"application/json"}, "X-Custom": {"a b"}},
		Body:   []byte(`{"event":"$pageview"}`),
	}, Policy{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := seen{"PUT", "/v1/things?x=1", "application/json", "hogwire", "a b", `{"event":"$pageview"}`}
	if s := <-got; s != want {
		t.Fatalf("server saw %+v, want %+v", s, want)
	}
	if resp.Status != 201 || resp.Header.Get("X-Reply") != "yes" || string(resp.Body) != `{"ok":true}` {
		t.Fatalf("response %d %v %q", resp.Status, resp.Header, resp.Body)
	}
}

func TestUserinfoBecomesBasicAuthAndStaysOutOfErrors(t *testing.T) {
	user := make(chan [2]string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		user <- [2]string{u, p}
	}))
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t)
	withCreds := strings.Replace(srv.URL, "http://", "http://apiuser:s3cr3t@", 1)
	for range 2 { // parsed, then from the client's URL cache
		if _, err := c.Do(context.Background(), Request{URL: withCreds}, Policy{}, nil); err != nil {
			t.Fatal(err)
		}
		if got := <-user; got != [2]string{"apiuser", "s3cr3t"} {
			t.Fatalf("server saw basic auth %v", got)
		}
	}

	for _, raw := range []string{
		"http://apiuser:s3cr3t@" + testport.Addr(t) + "/",
		"http://apiuser:s3cr3t@10.0.0.1/",
		"http://apiuser:s3cr3t@host:badport/",
		"ftp://apiuser:s3cr3t@host/",
	} {
		var obs attempts
		_, err := c.Do(context.Background(), Request{URL: raw}, Policy{MaxRetries: -1}, obs.observe)
		if err == nil {
			t.Fatalf("%s: no error", raw)
		}
		for _, e := range append([]error{err}, errsOf(obs.list())...) {
			if msg := e.Error(); strings.Contains(msg, "s3cr3t") || strings.Contains(msg, "apiuser") {
				t.Errorf("error %q leaks credentials", msg)
			}
		}
	}
}

// URLs are parsed once and cached; more distinct URLs than the cache holds
// (an id in the path per event) all still go where they say.
func TestManyDistinctURLs(t *testing.T) {
	paths := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { paths <- r.URL.Path }))
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t)
	for i := range maxTargets + 50 {
		want := fmt.Sprintf("/people/%d", i%(maxTargets+10))
		if _, err := c.Do(context.Background(), Request{URL: srv.URL + want}, Policy{}, nil); err != nil {
			t.Fatal(err)
		}
		if got := <-paths; got != want {
			t.Fatalf("request %d went to %s, want %s", i, got, want)
		}
	}
}

func errsOf(as []Attempt) []error {
	var errs []error
	for _, a := range as {
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
	}
	return errs
}

func TestInvalidRequestsAreRefusedBeforeSending(t *testing.T) {
	for _, req := range []Request{
		{URL: "ftp://example.com/file"},
		{URL: "file:///etc/passwd"},
		{URL: "gopher://example.com"},
		{URL: "http:///no-host"},
		{URL: "http://example.com/%zz"},
		{URL: "not a url"},
		{Method: "GET POST", URL: "http://example.com"},
		{URL: "http://example.com", Header: http.Header{"X-A": {"one\r\nX-Injected: 1"}}},
		{URL: "http://example.com", Header: http.Header{"Bad Name": {"v"}}},
	} {
		var obs attempts
		resp, err := New(Options{}).Do(context.Background(), req, Policy{}, obs.observe)
		if !errors.Is(err, ErrInvalidRequest) || resp != nil {
			t.Errorf("%+v: got %v, want ErrInvalidRequest", req, err)
		}
		if len(obs.list()) != 0 {
			t.Errorf("%+v: an attempt was made", req)
		}
	}
}

// connCountingServer serves handler and counts the connections opened
// to it.
func connCountingServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var newConns atomic.Int32
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &newConns
}

func TestKeepAliveReusesConnections(t *testing.T) {
	srv, newConns := connCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	c, _ := newTestClient(t)
	for range 20 {
		if _, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := newConns.Load(); n != 1 {
		t.Fatalf("20 sequential requests opened %d connections, want 1", n)
	}
}

// TestKeepAliveKeepsAHostsPeakConcurrency: many destinations share one
// vendor's host. Connections opened for a burst of concurrent requests
// are all kept for the next burst; a per-host idle cap below the burst
// closed the excess after each one and dialled it again in the next.
func TestKeepAliveKeepsAHostsPeakConcurrency(t *testing.T) {
	const burst = 600 // above the 512 that used to be the per-host cap
	var arrived sync.WaitGroup
	srv, newConns := connCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		// Every request of a burst holds its connection until all have
		// arrived, so that the burst needs burst connections.
		arrived.Done()
		arrived.Wait()
		io.WriteString(w, "ok")
	})
	c, _ := newTestClient(t)
	send := func() {
		arrived.Add(burst)
		var wg sync.WaitGroup
		for range burst {
			wg.Go(func() {
				if _, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{MaxRetries: -1}, nil); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	send()
	if n := newConns.Load(); n != burst {
		t.Fatalf("a burst of %d concurrent requests opened %d connections", burst, n)
	}
	// The transport puts a connection back just after its body's last
	// read, which Do may return before.
	time.Sleep(100 * time.Millisecond)
	send()
	if n := newConns.Load() - burst; n != 0 {
		t.Fatalf("the second burst opened %d new connections, want 0: idle connections were closed", n)
	}
}

func TestHTTP2OverTLS(t *testing.T) {
	proto := make(chan int, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto <- r.ProtoMajor
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := New(Options{AllowCIDRs: Loopback(), TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	t.Cleanup(c.CloseIdleConnections)
	if _, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{}, nil); err != nil {
		t.Fatal(err)
	}
	if p := <-proto; p != 2 {
		t.Fatalf("server saw HTTP/%d, want HTTP/2", p)
	}
}

func TestUntrustedCertificateIsNotRetried(t *testing.T) {
	srv, hits := func() (*httptest.Server, *atomic.Int32) {
		var n atomic.Int32
		s := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
		return s, &n
	}()
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t)
	var obs attempts
	_, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{}, obs.observe)
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Kind != ConnTLS {
		t.Fatalf("error %v, want a tls *ConnError", err)
	}
	if len(obs.list()) != 1 || hits.Load() != 0 {
		t.Fatalf("%d attempts, want 1", len(obs.list()))
	}
}

func TestIgnoresProxyFromEnvironment(t *testing.T) {
	c := New(Options{})
	if c.transport.Proxy != nil {
		t.Fatal("transport has a Proxy func; destinations could reach the proxy's network")
	}
}

func TestConcurrentUse(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.WriteHeader(503)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 10 {
				want := fmt.Sprintf("%d-%d", i, j)
				resp, err := c.Do(context.Background(), Request{Method: "POST", URL: srv.URL, Body: []byte(want)}, Policy{}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if resp.Status == 200 && string(resp.Body) != want {
					t.Errorf("body %q, want %q", resp.Body, want)
				}
			}
		})
	}
	wg.Wait()
}

func TestTimeoutWaitingForConnection(t *testing.T) {
	busy := make(chan struct{})
	srv, _ := blockingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		close(busy)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	// One connection per host, held by the first request: the second can
	// only wait for it.
	c := New(Options{AllowCIDRs: Loopback(), MaxConnsPerHost: 1})
	t.Cleanup(c.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, Request{URL: srv.URL}, Policy{MaxRetries: -1}, nil)
		first <- err
	}()
	<-busy
	_, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{Timeout: 100 * time.Millisecond, MaxRetries: -1}, nil)
	cancel()
	<-first
	var te *TimeoutError
	if !errors.As(err, &te) || te.Phase != PhaseConnect {
		t.Fatalf("error %v, want a timeout in the connect phase", err)
	}
}

func TestDNSFailureIsAConnectionError(t *testing.T) {
	var lookups atomic.Int32
	c := New(Options{Resolver: &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			lookups.Add(1)
			return nil, errors.New("no DNS server in this test")
		},
	}})
	t.Cleanup(c.CloseIdleConnections)
	fs := &fakeSleep{}
	c.sleep = fs.sleep
	_, err := c.Do(context.Background(), Request{URL: "http://hogwire-fetch-test.example/"}, Policy{MaxRetries: 1}, nil)
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Kind != ConnDNS || !errors.Is(err, ErrConnection) {
		t.Fatalf("error %v, want a dns *ConnError", err)
	}
	if len(fs.recorded()) != 1 {
		t.Fatalf("%d retries, want 1: DNS failures are retried", len(fs.recorded()))
	}
}

// Request.Timeout shortens the policy's per-attempt timeout, never
// lengthens it.
func TestRequestTimeout(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	c, _ := newTestClient(t)
	_, err := c.Do(context.Background(), Request{URL: slow.URL, Timeout: 30 * time.Millisecond}, Policy{MaxRetries: -1, Timeout: 4 * time.Second}, nil)
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("Do: %v, want a timeout", err)
	}
	_, err = c.Do(context.Background(), Request{URL: slow.URL, Timeout: time.Hour}, Policy{MaxRetries: -1, Timeout: 30 * time.Millisecond}, nil)
	if !errors.As(err, &te) {
		t.Fatalf("Do with a longer request timeout: %v, want the policy's timeout", err)
	}
}

// gzipServer answers with body gzip-encoded when the request accepts gzip,
// reporting what Accept-Encoding it saw.
func gzipServer(t *testing.T, body string, seen chan<- []string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Values("Accept-Encoding")
		if r.Header.Get("Accept-Encoding") != "gzip" {
			io.WriteString(w, body)
			return
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		io.WriteString(zw, body)
		zw.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
		w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The client asks for gzip, as net/http does, and hands back the body
// decoded, without the headers that described the encoded one.
func TestGzipResponsesAreDecoded(t *testing.T) {
	body := strings.Repeat(`{"ok":true}`, 100)
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprint("http2=", h2), func(t *testing.T) {
			seen := make(chan []string, 1)
			srv := gzipServer(t, body, seen)
			c := New(Options{AllowCIDRs: Loopback()})
			if h2 {
				srv.EnableHTTP2 = true
				srv.StartTLS()
				c = New(Options{AllowCIDRs: Loopback(), TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig})
			} else {
				srv.Start()
			}
			t.Cleanup(c.CloseIdleConnections)
			for range 2 { // the second from a pooled decoder
				resp, err := c.Do(context.Background(), Request{Method: "POST", URL: srv.URL, Body: []byte("{}")}, Policy{}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if ae := <-seen; len(ae) != 1 || ae[0] != "gzip" {
					t.Fatalf("server saw Accept-Encoding %q, want [gzip]", ae)
				}
				if string(resp.Body) != body || resp.Truncated {
					t.Fatalf("body %.40q… (%d bytes, truncated %v), want the decoded %d bytes", resp.Body, len(resp.Body), resp.Truncated, len(body))
				}
				if _, ok := resp.Header["Content-Encoding"]; ok {
					t.Fatalf("response header %v still describes the encoded body", resp.Header)
				}
				if _, ok := resp.Header["Content-Length"]; ok {
					t.Fatalf("response header %v still describes the encoded body", resp.Header)
				}
			}
		})
	}
}

// The body cap applies to the decoded body.
func TestGzipResponseBodyCap(t *testing.T) {
	seen := make(chan []string, 1)
	srv := gzipServer(t, strings.Repeat("x", 5000), seen)
	srv.Start()
	c, _ := newTestClient(t)
	resp, err := c.Do(context.Background(), Request{URL: srv.URL}, Policy{MaxResponseBytes: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-seen
	if string(resp.Body) != strings.Repeat("x", 1000) || !resp.Truncated {
		t.Fatalf("body of %d bytes, truncated %v; want the first 1000 decoded bytes, truncated", len(resp.Body), resp.Truncated)
	}
}

// A request that names its own Accept-Encoding, or asks for a range, or is
// a HEAD, is sent as it is and its response body is not decoded.
func TestGzipIsOnlyAskedForWhenTheRequestDoesNot(t *testing.T) {
	seen := make(chan []string, 1)
	srv := gzipServer(t, "plain body", seen)
	srv.Start()
	c, _ := newTestClient(t)
	for _, tc := range []struct {
		req     Request
		want    []string
		encoded bool
	}{
		{Request{Header: http.Header{"Accept-Encoding": {"gzip"}}}, []string{"gzip"}, true},
		{Request{Header: http.Header{"accept-encoding": {"identity"}}}, []string{"identity"}, false},
		{Request{Header: http.Header{"Range": {"bytes=0-3"}}}, nil, false},
		{Request{Method: "HEAD"}, nil, false},
	} {
		tc.req.URL = srv.URL
		resp, err := c.Do(context.Background(), tc.req, Policy{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ae := <-seen; !slices.Equal(ae, tc.want) {
			t.Errorf("%+v: server saw Accept-Encoding %q, want %q", tc.req, ae, tc.want)
		}
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.encoded {
			t.Errorf("%+v: Content-Encoding %q", tc.req, resp.Header.Get("Content-Encoding"))
		}
		if tc.encoded && len(resp.Body) > 0 && resp.Body[0] != 0x1f {
			t.Errorf("%+v: body %q was decoded; the caller asked for the encoding itself", tc.req, resp.Body)
		}
	}
}

// An empty gzip body is an empty body; one that is not gzip is a broken
// exchange, as net/http reports them.
func TestGzipEmptyAndCorruptBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		if r.URL.Path == "/corrupt" {
			io.WriteString(w, "not gzip at all")
			return
		}
		// Chunked and empty: a Content-Length of 0 would say there is
		// no body to decode at all.
		w.(http.Flusher).Flush()
	}))
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t)
	resp, err := c.Do(context.Background(), Request{URL: srv.URL + "/empty"}, Policy{}, nil)
	if err != nil || resp.Status != 200 || len(resp.Body) != 0 || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("empty gzip body: %+v, %v; want an empty 200", resp, err)
	}
	_, err = c.Do(context.Background(), Request{URL: srv.URL + "/corrupt"}, Policy{MaxRetries: -1}, nil)
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Kind != ConnProtocol || !errors.Is(err, gzip.ErrHeader) {
		t.Fatalf("corrupt gzip body: %v, want a protocol *ConnError wrapping gzip.ErrHeader", err)
	}
}

// A request whose keep-alive connection the server closed as it arrived
// is sent again, body included, on a new connection, as net/http does for
// requests it may replay.
func TestReplaysBodyOnAClosedKeepAliveConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bodies := make(chan string, 3)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for i := 0; ; i++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(conn)
			read := func() bool {
				r, err := http.ReadRequest(br)
				if err != nil {
					return false
				}
				b, _ := io.ReadAll(r.Body)
				bodies <- string(b)
				return true
			}
			if read() {
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				// The first connection takes the second request and
				// closes without answering.
				if i == 0 {
					read()
				}
			}
			conn.Close()
		}
	})
	c, _ := newTestClient(t)
	var obs attempts
	for n := range 2 {
		body := fmt.Sprintf(`{"n":%d}`, n)
		req := Request{Method: "POST", URL: "http://" + ln.Addr().String(), Header: http.Header{"Idempotency-Key": {body}}, Body: []byte(body)}
		resp, err := c.Do(context.Background(), req, Policy{MaxRetries: -1}, obs.observe)
		if err != nil || string(resp.Body) != "ok" {
			t.Fatalf("request %d: %+v, %v", n, resp, err)
		}
	}
	for i, want := range []string{`{"n":0}`, `{"n":1}`, `{"n":1}`} {
		if got := <-bodies; got != want {
			t.Fatalf("server's request %d had body %q, want %q", i+1, got, want)
		}
	}
	if len(obs.list()) != 2 {
		t.Fatalf("%d attempts observed, want 2: the replay is net/http's, within one attempt", len(obs.list()))
	}
}

// A host name is looked up before connecting; the phase reported after a
// lookup is the one the attempt got to, not "dns".
func TestPhasesAfterALookup(t *testing.T) {
	if _, err := net.DefaultResolver.LookupHost(context.Background(), "localhost"); err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	srv, _ := blockingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c, _ := newTestClient(t)
	_, err := c.Do(context.Background(), Request{URL: "http://localhost:" + port + "/"}, Policy{Timeout: phaseTimeout, MaxRetries: -1}, nil)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Phase != PhaseResponse {
		t.Fatalf("error %v, want a timeout in the response phase", err)
	}
}

// writeCounter counts the writes on the connections it dials.
type writeCounter struct {
	net.Conn
	writes *atomic.Int32
}

func (c writeCounter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A small request leaves in one write, header and body together, as
// net/http sends a body it knows to be in memory.
func TestRequestIsWrittenAtOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t)
	var writes atomic.Int32
	dial := c.dialContext
	c.dialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return writeCounter{conn, &writes}, nil
	}
	for range 3 {
		if _, err := c.Do(context.Background(), Request{Method: "POST", URL: srv.URL, Body: []byte(`{"event":"$pageview"}`)}, Policy{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := writes.Load(); n != 3 {
		t.Fatalf("3 requests took %d writes, want 3", n)
	}
}

// Requests with the same header share one prepared header. What a request
// sends is still its own header: a caller that changes a value in place
// once Do returns, a HEAD, an invalid value like a valid one cached.
func TestPreparedHeadersFollowTheRequest(t *testing.T) {
	type seen struct{ custom, accept, ua string }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Get("X-Custom"), r.Header.Get("Accept-Encoding"), r.UserAgent()}
	}))
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t)
	h := http.Header{"X-Custom": {"one"}, "content-type": {"application/json"}}
	send := func(method string, want seen) {
		t.Helper()
		if _, err := c.Do(context.Background(), Request{Method: method, URL: srv.URL, Header: h}, Policy{}, nil); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != want {
			t.Fatalf("%s: server saw %+v, want %+v", method, s, want)
		}
	}
	send("GET", seen{"one", "gzip", "hogwire"})
	send("GET", seen{"one", "gzip", "hogwire"})
	h["X-Custom"][0] = "two"
	send("GET", seen{"two", "gzip", "hogwire"})
	h, old := http.Header{"X-Custom": {"one"}, "content-type": {"application/json"}}, h
	send("GET", seen{"one", "gzip", "hogwire"})
	h = old
	send("HEAD", seen{"two", "", "hogwire"})
	h["User-Agent"] = []string{"mine"}
	send("GET", seen{"two", "gzip", "mine"})
	h["X-Custom"][0] = "two\r\nX-Injected: 1"
	if _, err := c.Do(context.Background(), Request{URL: srv.URL, Header: h}, Policy{}, nil); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("an invalid value: %v, want ErrInvalidRequest", err)
	}
}
