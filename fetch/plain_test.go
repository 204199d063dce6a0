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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer accepts connections on loopback and answers each request it
// reads with what respond writes, byte for byte: the framing cases that an
// http.Server would not produce. respond returns false to close the
// connection after answering.
type rawServer struct {
	addr  string
	conns atomic.Int32
	mu    sync.Mutex
	reqs  []*http.Request
	bods  []string
}

// newOKServer is a rawServer that answers every request 200 with no
// body, keeping the connection.
func newOKServer(t *testing.T) *rawServer {
	return newRawServer(t, func(w io.Writer, _ *http.Request, _ int) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		return true
	})
}

func newRawServer(t *testing.T, respond func(w io.Writer, r *http.Request, n int) bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var open sync.Map
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	var served atomic.Int32
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			open.Store(conn, nil)
			wg.Go(func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, _ := io.ReadAll(r.Body)
					s.mu.Lock()
					s.reqs = append(s.reqs, r)
					s.bods = append(s.bods, string(b))
					s.mu.Unlock()
					if !respond(conn, r, int(served.Add(1))) {
						return
					}
				}
			})
		}
	})
	return s
}

func (s *rawServer) requests() ([]*http.Request, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs, s.bods
}

func (s *rawServer) url(path string) string { return "http://" + s.addr + path }

// Responses framed every way HTTP/1.1 allows come back whole, and the
// connection is kept only when the framing says where the response ends
// and the server did not ask to close.
func TestPlainResponseFraming(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		response string
		body     string
		reused   bool
	}{
		{"content-length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello", true},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", "hello", true},
		{"chunked with trailer", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", "hello", true},
		{"no content", "POST", "HTTP/1.1 204 No Content\r\n\r\n", "", true},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "", true},
		{"continue first", "POST", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", "ok", true},
		{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok", false},
		{"HTTP/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(w io.Writer, r *http.Request, _ int) bool {
				io.WriteString(w, tc.response)
				return true
			})
			c, _ := newTestClient(t)
			for i := range 2 {
				resp, err := c.Do(context.Background(), Request{Method: tc.method, URL: srv.url("/x"), Body: []byte("{}")}, Policy{MaxRetries: -1}, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if string(resp.Body) != tc.body || resp.Status < 200 {
					t.Fatalf("request %d: %d %q, want %q", i, resp.Status, resp.Body, tc.body)
				}
			}
			want := int32(2)
			if tc.reused {
				want = 1
			}
			if n := srv.conns.Load(); n != want {
				t.Fatalf("2 requests opened %d connections, want %d", n, want)
			}
		})
	}
}

// A response without a length runs to the end of the connection, which
// is then not reused.
func TestPlainBodyUntilClose(t *testing.T) {
	srv := newRawServer(t, func(w io.Writer, r *http.Request, _ int) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\n\r\nall of it")
		return false
	})
	c, _ := newTestClient(t)
	for range 2 {
		resp, err := c.Do(context.Background(), Request{URL: srv.url("/")}, Policy{MaxRetries: -1}, nil)
		if err != nil || string(resp.Body) != "all of it" {
			t.Fatalf("%+v, %v", resp, err)
		}
	}
	if n := srv.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// A server that closes a kept-alive connection while it is idle (a short
// keep-alive timeout, common in Node and nginx) costs the next request
// nothing: it goes out on a new connection, once, even when it could not
// be replayed.
func TestPlainIdleConnectionClosedByServer(t *testing.T) {
	srv := newRawServer(t, func(w io.Writer, r *http.Request, _ int) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// Closes without saying so, as a keep-alive timeout does.
		return false
	})
	c, _ := newTestClient(t)
	var obs attempts
	for n := range 3 {
		if n > 0 {
			// Idle long enough to be asked (see peekAfter).
			time.Sleep(peekAfter + 20*time.Millisecond)
		}
		resp, err := c.Do(context.Background(), Request{Method: "POST", URL: srv.url("/"), Body: fmt.Appendf(nil, `{"n":%d}`, n)}, Policy{MaxRetries: -1}, obs.observe)
		if err != nil || string(resp.Body) != "ok" {
			t.Fatalf("request %d: %+v, %v", n, resp, err)
		}
	}
	_, bodies := srv.requests()
	if strings.Join(bodies, " ") != `{"n":0} {"n":1} {"n":2}` {
		t.Fatalf("server saw %q, want each request once", bodies)
	}
	if len(obs.list()) != 3 {
		t.Fatalf("%d attempts, want 3", len(obs.list()))
	}
}

// A POST on a kept-alive connection that breaks after the request went out
// is not sent again by the transport (the server may have acted on it):
// the attempt fails as a reset connection, which the retry policy decides
// about.
func TestPlainPostNotReplayedAfterItWasSent(t *testing.T) {
	srv := newRawServer(t, func(w io.Writer, r *http.Request, n int) bool {
		if n == 1 {
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return true
		}
		return false // takes the second request and closes without answering
	})
	c, _ := newTestClient(t)
	if _, err := c.Do(context.Background(), Request{Method: "POST", URL: srv.url("/"), Body: []byte("1")}, Policy{MaxRetries: -1}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := c.Do(context.Background(), Request{Method: "POST", URL: srv.url("/"), Body: []byte("2")}, Policy{MaxRetries: -1}, nil)
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Kind != ConnReset {
		t.Fatalf("error %v, want a reset connection", err)
	}
	if _, bodies := srv.requests(); len(bodies) != 2 {
		t.Fatalf("server saw %q, want the second request once", bodies)
	}
}

// What the request line and header say: the path and query as given, "/"
// for none, Host from the URL whatever the header says, a length the
// client computes, and net/http's rules for User-Agent and gzip.
func TestPlainRequestHead(t *testing.T) {
	srv := newOKServer(t)
	c, _ := newTestClient(t)
	do := func(req Request) *http.Request {
		t.Helper()
		if _, err := c.Do(context.Background(), req, Policy{MaxRetries: -1}, nil); err != nil {
			t.Fatal(err)
		}
		reqs, _ := srv.requests()
		return reqs[len(reqs)-1]
	}
	r := do(Request{URL: "http://" + srv.addr})
	if r.RequestURI != "/" || r.Host != srv.addr || r.Header.Get("Accept-Encoding") != "gzip" || r.UserAgent() != "hogwire" || r.ContentLength != 0 {
		t.Fatalf("GET without a path: %s %q host %q header %v", r.Method, r.RequestURI, r.Host, r.Header)
	}
	r = do(Request{Method: "POST", URL: srv.url("/a%2Fb/c?q=1&r=%20"), Header: http.Header{
		"Host": {"evil.example"}, "Content-Length": {"999"}, "X-Multi": {"one", "two"}, "User-Agent": {""},
	}})
	if r.RequestURI != "/a%2Fb/c?q=1&r=%20" || r.Host != srv.addr || r.ContentLength != 0 || r.Header.Values("X-Multi")[1] != "two" {
		t.Fatalf("POST: %q host %q length %d header %v", r.RequestURI, r.Host, r.ContentLength, r.Header)
	}
	if _, ok := r.Header["User-Agent"]; ok {
		t.Fatalf("an empty User-Agent was sent: %v", r.Header)
	}
}

// A response header past the limit is a broken exchange, not an
// allocation as large as the server likes.
func TestPlainResponseHeaderLimit(t *testing.T) {
	srv := newRawServer(t, func(w io.Writer, r *http.Request, _ int) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", maxResponseHeaderBytes)+"\r\nContent-Length: 0\r\n\r\n")
		return true
	})
	c, _ := newTestClient(t)
	_, err := c.Do(context.Background(), Request{URL: srv.url("/")}, Policy{MaxRetries: -1}, nil)
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Kind != ConnProtocol {
		t.Fatalf("error %v, want a protocol error", err)
	}
}

// Cancelling the caller's context ends a request in flight (within
// cancelCheckAfter), with the context's error, and its connection is not
// reused.
func TestPlainCancelInFlight(t *testing.T) {
	arrived := make(chan struct{}, 2)
	srv := newRawServer(t, func(w io.Writer, r *http.Request, n int) bool {
		if n == 1 {
			arrived <- struct{}{}
			time.Sleep(time.Second) // never answered in time
			return false
		}
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	c, _ := newTestClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := c.Do(ctx, Request{URL: srv.url("/")}, Policy{MaxRetries: -1, Timeout: time.Minute}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if resp, err := c.Do(context.Background(), Request{URL: srv.url("/")}, Policy{MaxRetries: -1}, nil); err != nil || string(resp.Body) != "ok" {
		t.Fatalf("next request: %+v, %v", resp, err)
	}
	if n := srv.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2: the cancelled one is not reused", n)
	}
}

// Connections idle for longer than IdleConnTimeout are not used again.
func TestPlainIdleTimeout(t *testing.T) {
	srv := newOKServer(t)
	c := New(Options{AllowCIDRs: Loopback(), IdleConnTimeout: 50 * time.Millisecond})
	t.Cleanup(c.CloseIdleConnections)
	for range 2 {
		if _, err := c.Do(context.Background(), Request{URL: srv.url("/")}, Policy{}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := srv.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// The URLs the plain path takes, and the ones left to net/http.
func TestPlainPathChoice(t *testing.T) {
	c, _ := newTestClient(t)
	for _, tc := range []struct {
		req   Request
		plain bool
	}{
		{Request{URL: "http://example.com/x"}, true},
		{Request{URL: "http://[::1]:8080/"}, true},
		{Request{URL: "https://example.com/x"}, false},
		{Request{URL: "http://bücher.example/"}, false},
		{Request{URL: "http://example.com/", Sign: &Signing{}}, false},
		{Request{Method: "CONNECT", URL: "http://example.com/"}, false},
	} {
		pr, err := c.prepare(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if pr.plain != tc.plain {
			t.Errorf("%s %s: plain %v, want %v", tc.req.Method, tc.req.URL, pr.plain, tc.plain)
		}
	}
	pr, _ := c.prepare(Request{URL: "http://[::1]/p?q"})
	if pr.addr != "[::1]:80" || pr.requestURI != "/p?q" {
		t.Fatalf("addr %q, request URI %q", pr.addr, pr.requestURI)
	}
}

// Responses whose framing cannot be trusted are broken exchanges: the
// caller gets a connection error, never a body cut or padded silently.
func TestPlainMalformedResponses(t *testing.T) {
	for _, tc := range []struct {
		name, response, kind string
	}{
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", ConnReset},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", ConnProtocol},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", ConnProtocol},
		{"unknown transfer encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", ConnProtocol},
		{"bad status line", "HTTP/1.1 2x0 OK\r\n\r\n", ConnProtocol},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", ConnProtocol},
		{"folded header", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  more\r\nContent-Length: 0\r\n\r\n", ConnProtocol},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", ConnProtocol},
		{"closed mid-header", "HTTP/1.1 200 OK\r\nContent-", ConnReset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(w io.Writer, r *http.Request, _ int) bool {
				io.WriteString(w, tc.response)
				return false
			})
			c, _ := newTestClient(t)
			resp, err := c.Do(context.Background(), Request{URL: srv.url("/")}, Policy{MaxRetries: -1}, nil)
			var ce *ConnError
			if !errors.As(err, &ce) || ce.Kind != tc.kind {
				t.Fatalf("%+v, %v; want a %s connection error", resp, err, tc.kind)
			}
		})
	}
}

// A gzip body in chunks is decoded, and the connection kept when the
// chunks end with the gzip stream.
func TestPlainChunkedGzipKeepsTheConnection(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, "decoded body")
	zw.Close()
	srv := newRawServer(t, func(w io.Writer, r *http.Request, _ int) bool {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", gz.Len(), gz.Bytes())
		return true
	})
	c, _ := newTestClient(t)
	for range 2 {
		resp, err := c.Do(context.Background(), Request{URL: srv.url("/")}, Policy{MaxRetries: -1}, nil)
		if err != nil || string(resp.Body) != "decoded body" || resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Transfer-Encoding") != "" {
			t.Fatalf("%+v, %v", resp, err)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}
