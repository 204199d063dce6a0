package fetch_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/hogwire/hogwire/fetch"
)

func Example() {
	// A destination that is briefly unavailable.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer srv.Close()

	// One client per process. Production passes no AllowCIDRs; tests and
	// "hogwire dev" allow loopback.
	client := fetch.New(fetch.Options{AllowCIDRs: fetch.Loopback()})
	defer client.CloseIdleConnections()

	policy := fetch.Policy{Timeout: 5 * time.Second, BackoffBase: time.Millisecond}
	resp, err := client.Do(context.Background(), fetch.Request{
		Method: "POST",
		URL:    srv.URL + "/webhook",
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   []byte(`{"event":"$pageview"}`),
	}, policy, func(a fetch.Attempt) {
		if a.WillRetry {
			fmt.Printf("retrying after %d, attempt %d/%d\n", a.Status, a.N, a.Max)
		}
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(resp.Status, string(resp.Body), "after", resp.Attempts, "attempts")

	// Internal addresses are refused before any connection is made.
	_, err = client.Do(context.Background(), fetch.Request{URL: "http://169.254.169.254/latest/meta-data/"}, policy, nil)
	var egress *fetch.EgressError
	fmt.Println(errors.As(err, &egress), egress.Reason)

	// Output:
	// retrying after 503, attempt 1/4
	// retrying after 503, attempt 2/4
	// 200 {"ok":true} after 3 attempts
	// true cloud metadata
}

func ExampleTimeoutError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()
	client := fetch.New(fetch.Options{AllowCIDRs: fetch.Loopback()})
	defer client.CloseIdleConnections()

	_, err := client.Do(context.Background(), fetch.Request{URL: srv.URL},
		fetch.Policy{Timeout: 50 * time.Millisecond, MaxRetries: -1}, nil)
	var te *fetch.TimeoutError
	if errors.As(err, &te) {
		fmt.Println("timed out waiting for the", te.Phase)
	}
	fmt.Println(errors.Is(err, fetch.ErrTimeout))
	// Output:
	// timed out waiting for the response
	// true
}
