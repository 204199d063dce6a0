package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

// deliverer performs one destination's fetches through the shared client:
// the retry policy and egress guard come from package fetch, and every
// attempt is counted and, when retried or failed, logged on the destination.
type deliverer struct {
	client *fetch.Client
	policy fetch.Policy
	// count and logf record telemetry for the destination.
	count func(metric string, n int64)
	logf  func(level hogwirev1.LogLevel, format string, args ...any)
	// tracer and ctx (the invocation's) give each attempt a child span.
	tracer trace.Tracer
	ctx    context.Context
	method string
}

func (d *deliverer) Fetch(ctx context.Context, req *executor.FetchRequest) (*executor.FetchResponse, error) {
	h := make(http.Header, len(req.Headers))
	for k, v := range req.Headers {
		h.Set(k, v)
	}
	p := d.policy
	if req.Timeout > 0 {
		p.Timeout = req.Timeout
	}
	d.method = req.Method
	resp, err := d.client.Do(ctx, fetch.Request{Method: req.Method, URL: req.URL, Header: h, Body: req.Body}, p, d.observe)
	if err != nil {
		return nil, fetchError(err, p.Timeout)
	}
	out := &executor.FetchResponse{Status: resp.Status, Headers: make(map[string]string, len(resp.Header)), Body: resp.Body, Attempts: resp.Attempts}
	for k, v := range resp.Header {
		if len(v) > 0 {
			out.Headers[k] = v[0]
		}
	}
	return out, nil
}

// observe counts each attempt by outcome, logs retries and records the
// attempt as a span under the invocation's.
func (d *deliverer) observe(a fetch.Attempt) {
	d.count("fetch_attempts", 1)
	if d.tracer != nil {
		end := time.Now()
		_, span := d.tracer.Start(d.ctx, "fetch "+d.method, trace.WithTimestamp(end.Add(-a.Duration)),
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.Int("hogwire.fetch.attempt", a.N), attribute.Int("http.response.status_code", a.Status)))
		if a.Err != nil {
			span.SetStatus(codes.Error, a.Err.Error())
		}
		span.End(trace.WithTimestamp(end))
	}
	var outcome string
	switch {
	case errors.Is(a.Err, fetch.ErrTimeout):
		d.count("fetch_timeouts", 1)
		outcome = "a timeout"
	case a.Err != nil:
		d.count("fetch_errors", 1)
		outcome = "a connection error"
	case a.Status >= 500:
		d.count("fetch_failed_5xx", 1)
		outcome = fmt.Sprintf("HTTP %d", a.Status)
	case a.Status >= 400:
		d.count("fetch_failed_4xx", 1)
		outcome = fmt.Sprintf("HTTP %d", a.Status)
	}
	if outcome == "" {
		return
	}
	if a.WillRetry {
		d.logf(hogwirev1.LogLevel_LOG_LEVEL_WARN, "retrying after %s, retry %d/%d in %s", outcome, a.N, a.Max-1, a.RetryIn.Round(time.Millisecond))
	} else if a.Err != nil || a.Status >= 500 || a.Status == 429 || a.Status == 408 {
		d.logf(hogwirev1.LogLevel_LOG_LEVEL_WARN, "fetch failed with %s after %d attempt(s)", outcome, a.N)
	}
}

// fetchError turns the fetch package's typed errors into the executor's.
func fetchError(err error, timeout time.Duration) error {
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
