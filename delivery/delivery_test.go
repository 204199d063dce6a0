package delivery_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hogwire/hogwire/delivery"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

func loopback() *fetch.Client { return fetch.New(fetch.Options{AllowCIDRs: fetch.Loopback()}) }

// A request goes out as the executor describes it and the final response
// comes back with its first header values and the number of attempts.
func TestFetchRoundTrip(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Add("X-Echo", r.Method+" "+r.Header.Get("X-Key")+" "+string(b))
		w.Header().Add("X-Echo", "second value")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	var attempts []fetch.Attempt
	f := &delivery.Fetcher{Client: loopback(), Policy: fetch.Policy{BackoffBase: time.Millisecond},
		Observe: func(a fetch.Attempt) { attempts = append(attempts, a) }}
	resp, err := f.Fetch(context.Background(), &executor.FetchRequest{
		Method: "PATCH", URL: srv.URL, Headers: map[string]string{"X-Key": "k1"}, Body: []byte(`{"a":1}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 202 || string(resp.Body) != "ok" || resp.Headers["X-Echo"] != `PATCH k1 {"a":1}` || resp.Attempts != 2 {
		t.Errorf("response %d %q %v attempts %d, want 202 ok with the echo after 2 attempts", resp.Status, resp.Body, resp.Headers, resp.Attempts)
	}
	if len(attempts) != 2 || attempts[0].Status != 502 || !attempts[0].WillRetry || attempts[1].Status != 202 {
		t.Errorf("observed %+v, want a retried 502 then the 202", attempts)
	}
}

// Failures without a response become executor.FetchErrors that say what
// happened, so that the destination's owner reads it in words.
func TestFetchErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	noRetry := fetch.Policy{MaxRetries: -1}
	for _, c := range []struct {
		name   string
		client *fetch.Client
		req    *executor.FetchRequest
		kind   executor.FetchErrorKind
		words  string
	}{
		{"timeout", loopback(), &executor.FetchRequest{Method: "GET", URL: slow.URL, Timeout: 50 * time.Millisecond},
			executor.FetchTimeout, "timed out while waiting for the response after 50ms"},
		{"refused", loopback(), &executor.FetchRequest{Method: "GET", URL: closed},
			executor.FetchConnection, "could not connect while connecting"},
		{"egress guard", fetch.New(fetch.Options{}), &executor.FetchRequest{Method: "GET", URL: slow.URL},
			executor.FetchDenied, "was refused by the egress guard"},
	} {
		f := &delivery.Fetcher{Client: c.client, Policy: noRetry}
		_, err := f.Fetch(context.Background(), c.req)
		var fe *executor.FetchError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v, want an *executor.FetchError", c.name, err)
			continue
		}
		if fe.Kind != c.kind || !strings.HasPrefix(fe.Error(), c.words) {
			t.Errorf("%s: kind %v %q, want %v %q", c.name, fe.Kind, fe.Error(), c.kind, c.words)
		}
	}
}
