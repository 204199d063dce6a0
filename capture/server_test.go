package capture

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs h behind NewServer on 127.0.0.1 and returns its address.
func serve(t *testing.T, h http.Handler, cfg ServerConfig) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, cfg)
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	return lis.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A generous bound so that a broken server fails the test instead of
	// hanging it; no test asserts how fast an answer comes.
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

const okBatch = `{"api_key":"phc_t","batch":[{"event":"e","distinct_id":"d"}]}`

func rawRequest(path, headers, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s", path, headers, len(body), body)
}

// A keep-alive connection is closed after MaxRequestsPerConn requests.
func TestKeepAliveLimit(t *testing.T) {
	addr := serve(t, NewHandler(fuzzConfig(&storing{})), ServerConfig{MaxRequestsPerConn: 3})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for i := range 3 {
		if _, err := io.WriteString(c, rawRequest("/batch/", "", okBatch)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close != (i == 2) {
			t.Fatalf("request %d: status %d, close %v", i, resp.StatusCode, resp.Close)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the last request: %v, want EOF", err)
	}
}

// A body that stalls is cut off with 408, and headers that never end close
// the connection: neither holds the server.
func TestStalledClientsCutOff(t *testing.T) {
	cfg := fuzzConfig(&storing{})
	cfg.Server = ServerConfig{BodyReadTimeout: 100 * time.Millisecond, ReadHeaderTimeout: 100 * time.Millisecond}
	addr := serve(t, NewHandler(cfg), cfg.Server)

	c := dial(t, addr)
	if _, err := io.WriteString(c, "POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"api_key\":"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("stalled body: status %d, want 408", resp.StatusCode)
	}

	c = dial(t, addr)
	if _, err := io.WriteString(c, "POST /batch/ HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("stalled headers: %v, want the connection closed", err)
	}
}

// An unknown token outside the body, an unsupported content type and a
// declared size over the limit are answered before any of the body is
// read.
func TestRefusedBeforeTheBody(t *testing.T) {
	addr := serve(t, NewHandler(fuzzConfig(&storing{})), ServerConfig{})
	cases := []struct {
		name, path, headers string
		length              int
		status              int
	}{
		{"unknown query token", "/batch/?token=phc_nope", "", 1000, http.StatusUnauthorized},
		{"unknown bearer token", "/batch/", "Authorization: Bearer phc_nope\r\n", 1000, http.StatusUnauthorized},
		{"multipart", "/batch/", "Content-Type: multipart/form-data; boundary=x\r\n", 1000, http.StatusUnsupportedMediaType},
		{"declared too large", "/batch/", "", 1 << 30, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			// Headers only: the body never comes.
			if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n", tc.path, tc.headers, tc.length); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	// A known token in the query is enough: the body needs none.
	c := dial(t, addr)
	if _, err := io.WriteString(c, rawRequest("/batch/?token=phc_t", "", `[{"event":"e","distinct_id":"d"}]`)); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("query token: %v %v", resp, err)
	}
}

// gzip data inflating more than MaxDecompressionRatio times its size, past
// the first MiB, is refused; small bodies inflate freely.
func TestDecompressionRatio(t *testing.T) {
	cfg := fuzzConfig(&storing{})
	cfg.MaxDecompressedBytes, cfg.MaxBodyBytes = 64<<20, 64<<20
	addr := serve(t, NewHandler(cfg), ServerConfig{})
	for _, tc := range []struct {
		pad    int
		status int
	}{{512 << 10, http.StatusOK}, {4 << 20, http.StatusRequestEntityTooLarge}} {
		body := gzipped(t, []byte(`[`+strings.Repeat(" ", tc.pad)+`{"event":"e","distinct_id":"d","properties":{"token":"phc_t"}}]`))
		resp, err := http.Post("http://"+addr+"/e/?compression=gzip-js", "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%d bytes inflating to %d: status %d, want %d: %s", len(body), tc.pad, resp.StatusCode, tc.status, b)
		}
	}
}

// Past the memory budget, requests get 503 with Retry-After while small
// ones still pass; a request larger than any share gets 413.
func TestMemoryBudget(t *testing.T) {
	cfg := fuzzConfig(&storing{})
	cfg.MemoryBytes, cfg.MaxBodyBytes = 8<<20, 20<<20
	h := newHandler(cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("/batch/", func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, "/batch", h.capture) })
	addr := serve(t, mux, ServerConfig{})
	padded := func(n int) string {
		return `{"api_key":"phc_t","batch":[` + strings.Repeat(" ", n) + `{"event":"e","distinct_id":"d"}]}`
	}

	// A client sends 3 MiB of a body and stalls, holding a 4 MiB buffer.
	held := padded(5 << 20)
	a := dial(t, addr)
	if _, err := fmt.Fprintf(a, "POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(held), held[:3<<20]); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); h.mem.used.Load() < 4<<20; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled request holds %d bytes", h.mem.used.Load())
		}
	}
	send := func(body string) *http.Response {
		t.Helper()
		resp, err := http.Post("http://"+addr+"/batch/", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// Another large one finds the large share spent.
	if resp := send(padded(3 << 20)); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("large request beside it: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// A small one passes.
	if resp := send(okBatch); resp.StatusCode != http.StatusOK {
		t.Errorf("small request: status %d", resp.StatusCode)
	}
	// One that could never fit is 413, not a 503 to retry forever.
	if resp := send(padded(12 << 20)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("request over any share: status %d", resp.StatusCode)
	}
	// Once the stalled client goes, its memory is back.
	a.Close()
	for deadline := time.Now().Add(20 * time.Second); h.mem.used.Load() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still held", h.mem.used.Load())
		}
	}
	if resp := send(padded(3 << 20)); resp.StatusCode != http.StatusOK {
		t.Errorf("large request alone: status %d", resp.StatusCode)
	}
}
