package fetch

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func benchServer(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkDo measures one keep-alive round trip: a small JSON POST and a
// small JSON response, through the egress guard and retry loop.
func BenchmarkDo(b *testing.B) {
	benchDo(b, false)
}

// BenchmarkDoCancelable is BenchmarkDo with a context of its own per
// request that can be cancelled, as the data plane gives every
// invocation: the path that must watch for a cancel during the exchange.
func BenchmarkDoCancelable(b *testing.B) {
	benchDo(b, true)
}

func benchDo(b *testing.B, cancelable bool) {
	srv := benchServer(b)
	c := New(Options{AllowCIDRs: Loopback()})
	b.Cleanup(c.CloseIdleConnections)
	req := Request{
		Method: "POST",
		URL:    srv.URL + "/hook",
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   []byte(`{"event":"$pageview","distinct_id":"user-1","properties":{"$current_url":"https://example.com/"}}`),
	}
	base := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := base, context.CancelCauseFunc(nil)
		if cancelable {
			ctx, cancel = context.WithCancelCause(base)
		}
		resp, err := c.Do(ctx, req, Policy{}, nil)
		if cancel != nil {
			cancel(nil)
		}
		if err != nil || resp.Status != 200 {
			b.Fatal(resp, err)
		}
	}
}

// BenchmarkDoParallel is BenchmarkDo from GOMAXPROCS goroutines sharing
// one client, as the data plane does.
func BenchmarkDoParallel(b *testing.B) {
	srv := benchServer(b)
	c := New(Options{AllowCIDRs: Loopback()})
	b.Cleanup(c.CloseIdleConnections)
	req := Request{
		Method: "POST",
		URL:    srv.URL + "/hook",
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   []byte(`{"event":"$pageview","distinct_id":"user-1"}`),
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			resp, err := c.Do(ctx, req, Policy{}, nil)
			if err != nil || resp.Status != 200 {
				b.Error(resp, err)
				return
			}
		}
	})
}

// BenchmarkNetHTTPBaseline is the same round trip through a plain
// http.Client, to show what the retry loop, tracing and guard cost.
func BenchmarkNetHTTPBaseline(b *testing.B) {
	srv := benchServer(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(hc.CloseIdleConnections)
	body := []byte(`{"event":"$pageview","distinct_id":"user-1","properties":{"$current_url":"https://example.com/"}}`)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", srv.URL+"/hook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
}
