// Package delivery performs a destination's fetch() calls with package
// fetch's client. It is the one adapter between the executor and the HTTP
// client, shared by the data plane and the test interface so that a test
// sends requests exactly as delivery does: same retry policy, same egress
// guard, same error wording.
package delivery

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

// Fetcher implements executor.Fetcher over a fetch.Client.
type Fetcher struct {
	Client *fetch.Client
	// Policy is the retry policy; a request's own timeout (the
	// destination's limits.fetch_timeout) replaces Policy.Timeout.
	Policy fetch.Policy
	// Observe, when set, is called after every attempt, retries included.
	Observe func(fetch.Attempt)
}

// Fetch implements executor.Fetcher.
func (f *Fetcher) Fetch(ctx context.Context, req *executor.FetchRequest) (*executor.FetchResponse, error) {
	h := make(http.Header, len(req.Headers))
	// One array holds every header's value (each header has one).
	vals := make([]string, 0, len(req.Headers))
	for k, v := range req.Headers {
		vals = append(vals, v)
		h[http.CanonicalHeaderKey(k)] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	p := f.Policy
	if req.Timeout > 0 {
		p.Timeout = req.Timeout
	}
	resp, err := f.Client.Do(ctx, fetch.Request{Method: req.Method, URL: req.URL, Header: h, Body: req.Body}, p, f.Observe)
	if err != nil {
		return nil, executorError(err, p.Timeout)
	}
	out := &executor.FetchResponse{Status: resp.Status, Headers: make(map[string]string, len(resp.Header)), Body: resp.Body, Attempts: resp.Attempts}
	for k, v := range resp.Header {
		if len(v) > 0 {
			out.Headers[k] = v[0]
		}
	}
	return out, nil
}

// executorError turns the fetch package's typed errors into the executor's,
// so that the destination's owner reads which kind of failure it was and in
// which phase.
func executorError(err error, timeout time.Duration) error {
	var te *fetch.TimeoutError
	var ce *fetch.ConnError
	switch {
	case errors.As(err, &te):
		return &executor.FetchError{Kind: executor.FetchTimeout, Phase: phaseWords(te.Phase), Timeout: timeout, Err: err}
	case errors.Is(err, fetch.ErrEgressDenied):
		return &executor.FetchError{Kind: executor.FetchDenied, Err: err}
	case errors.As(err, &ce):
		return &executor.FetchError{Kind: executor.FetchConnection, Phase: "connecting", Err: err}
	}
	return &executor.FetchError{Kind: executor.FetchFailed, Err: err}
}

func phaseWords(phase string) string {
	switch phase {
	case fetch.PhaseDNS:
		return "resolving the host"
	case fetch.PhaseConnect:
		return "connecting"
	case fetch.PhaseTLS:
		return "in the TLS handshake"
	case fetch.PhaseResponse:
		return "waiting for the response"
	case fetch.PhaseBody:
		return "reading the response body"
	}
	return phase
}
