package fetch

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A cancel ends an exchange on a kept-alive connection whether it comes
// before the context is watched (seen when the check's deadline passes) or
// after, and the connection is not used again.
func TestPlainCancelOnAReusedConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait time.Duration // from the request's arrival to the cancel
	}{
		{"before the watch", 0},
		{"during the watch", 3 * cancelCheckAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arrived, release := make(chan struct{}, 1), make(chan struct{})
			srv := newRawServer(t, func(w io.Writer, r *http.Request, n int) bool {
				if n == 2 {
					arrived <- struct{}{}
					<-release // answered only once the test is over
					return false
				}
				io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				return true
			})
			t.Cleanup(func() { close(release) })
			c, _ := newTestClient(t)
			get := func(ctx context.Context) (*Response, error) {
				return c.Do(ctx, Request{URL: srv.url("/")}, Policy{MaxRetries: -1, Timeout: time.Hour}, nil)
			}
			if resp, err := get(context.Background()); err != nil || string(resp.Body) != "ok" {
				t.Fatalf("first request: %+v, %v", resp, err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-arrived
				time.Sleep(tc.wait)
				cancel()
			}()
			done := make(chan error, 1)
			go func() {
				_, err := get(ctx)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("error %v, want context.Canceled", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the cancel did not end the exchange")
			}
			if resp, err := get(context.Background()); err != nil || string(resp.Body) != "ok" {
				t.Fatalf("next request: %+v, %v", resp, err)
			}
			if n := srv.conns.Load(); n != 2 {
				t.Fatalf("%d connections, want 2: the cancelled one is not reused", n)
			}
		})
	}
}

// A response slower than the check, to a caller whose context could be
// cancelled, is a response like any other, on a connection kept alive.
func TestPlainSlowResponseOutlastsTheCheck(t *testing.T) {
	srv := newRawServer(t, func(w io.Writer, r *http.Request, n int) bool {
		if n == 1 {
			time.Sleep(3 * cancelCheckAfter)
		}
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	c, _ := newTestClient(t)
	for n := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := c.Do(ctx, Request{URL: srv.url("/")}, Policy{MaxRetries: -1}, nil)
		cancel()
		if err != nil || string(resp.Body) != "ok" {
			t.Fatalf("request %d: %+v, %v", n, resp, err)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// A context that ended before the call sends nothing.
func TestPlainEndedContextSendsNothing(t *testing.T) {
	srv := newOKServer(t)
	c, _ := newTestClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Do(ctx, Request{URL: srv.url("/")}, Policy{}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if _, err := c.Do(context.Background(), Request{URL: srv.url("/")}, Policy{}, nil); err != nil {
		t.Fatal(err)
	}
	if reqs, _ := srv.requests(); len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want only the second", len(reqs))
	}
}

// A connection left idle past the check's deadline and past peekAfter, so
// that it is peeked at before its reuse, is reused: the deadline that
// passed while it was idle is not taken for the server's close.
func TestPlainIdlePastTheCheckIsReused(t *testing.T) {
	srv := newOKServer(t)
	c, _ := newTestClient(t)
	for n := range 2 {
		if n > 0 {
			time.Sleep(max(peekAfter, cancelCheckAfter) + 50*time.Millisecond)
		}
		if _, err := c.Do(context.Background(), Request{URL: srv.url("/")}, Policy{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// The plain path sends a header whose keys are canonical as the caller's
// map, not a copy: what the client adds (the URL's credentials where the
// header has no Authorization, a User-Agent where it has none) is still
// sent, and the caller's own is kept where it has them.
func TestPlainHeaderAdditions(t *testing.T) {
	srv := newOKServer(t)
	c, _ := newTestClient(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p"))
	withCreds := "http://u:p@" + srv.addr + "/"
	for _, tc := range []struct {
		url      string
		header   http.Header
		auth, ua string
		auths    int
	}{
		{withCreds, nil, basic, "hogwire", 1},
		{withCreds, http.Header{"Authorization": {""}, "User-Agent": {"mine"}}, basic, "mine", 1},
		{withCreds, http.Header{"Authorization": {"Bearer t"}}, "Bearer t", "hogwire", 1},
		{srv.url("/"), http.Header{"Authorization": {"Bearer t"}, "User-Agent": {""}}, "Bearer t", "", 1},
		{srv.url("/"), http.Header{"X-A": {"1"}}, "", "hogwire", 0},
	} {
		if _, err := c.Do(context.Background(), Request{URL: tc.url, Header: tc.header}, Policy{}, nil); err != nil {
			t.Fatal(err)
		}
		reqs, _ := srv.requests()
		r := reqs[len(reqs)-1]
		if got := r.Header.Get("Authorization"); got != tc.auth || len(r.Header["Authorization"]) != tc.auths {
			t.Errorf("%v: Authorization %q, want %q", tc.header, r.Header["Authorization"], tc.auth)
		}
		if got := r.UserAgent(); got != tc.ua {
			t.Errorf("%v: User-Agent %q, want %q", tc.header, got, tc.ua)
		}
	}
}

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.set = append(c.set, t)
	return nil
}

// Exchanges in quick succession on a connection share the check's
// deadline set for the first while it is far enough ahead; an exchange
// whose own deadline comes first has that one.
func TestCancelWatchKeepsARecentCheck(t *testing.T) {
	nc := &deadlineConn{}
	var w cancelWatch
	w.init(nc)
	t0 := time.Now()
	far := t0.Add(time.Minute)
	for _, tc := range []struct {
		at       time.Duration // from t0
		deadline time.Time
		set      time.Time // the deadline newly set, or zero
		checking bool
	}{
		{0, far, t0.Add(cancelCheckAfter), true},
		{cancelCheckAfter / 4, far, time.Time{}, true},
		{cancelCheckAfter * 3 / 4, far, t0.Add(cancelCheckAfter*3/4 + cancelCheckAfter), true},
		{cancelCheckAfter, t0.Add(cancelCheckAfter + time.Millisecond), t0.Add(cancelCheckAfter + time.Millisecond), false},
		{cancelCheckAfter + time.Millisecond, far, t0.Add(2*cancelCheckAfter + time.Millisecond), true},
	} {
		nc.set = nil
		w.start(context.Background(), t0.Add(tc.at), tc.deadline)
		var set time.Time
		if len(nc.set) > 0 {
			set = nc.set[len(nc.set)-1]
		}
		if !set.Equal(tc.set) || w.checking != tc.checking {
			t.Errorf("at %v: set %v, checking %v; want %v, %v", tc.at, set, w.checking, tc.set, tc.checking)
		}
		if !w.end() {
			t.Fatalf("at %v: end false without a cancel", tc.at)
		}
	}
}
