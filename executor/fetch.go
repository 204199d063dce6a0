package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hogwire/hogwire/hogvm/vm"
)

// Fetcher performs the HTTP requests of Hog's fetch(). The data plane's
// implementation applies the egress guard, the per-request timeout and the
// retry policy; the executor calls it once per fetch() and gives Hog the
// final response.
type Fetcher interface {
	// Fetch performs req. An HTTP response of any status is a response, not
	// an error. An error means no response came: return a *FetchError to say
	// which kind of failure it was and in which phase.
	Fetch(ctx context.Context, req *FetchRequest) (*FetchResponse, error)
}

// FetchRequest is a fetch() call, normalised as PostHog normalises it.
type FetchRequest struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    []byte // nil: no body
	// Timeout is the destination's per-request timeout (limits.fetch_timeout,
	// 10 s by default), for the Fetcher to apply to each attempt.
	Timeout time.Duration
}

// FetchResponse is what came back. Headers keep the first value of each
// header, as PostHog flattens them.
type FetchResponse struct {
	Status  int
	Headers map[string]string
	Body    []byte
	// Attempts is how many tries the Fetcher made (0 is read as 1).
	Attempts int
}

// FetchErrorKind classifies a fetch that got no HTTP response.
type FetchErrorKind int

// The kinds of fetch failures.
const (
	FetchFailed     FetchErrorKind = iota // anything else
	FetchTimeout                          // a deadline passed
	FetchConnection                       // DNS, connect, TLS, reset
	FetchDenied                           // refused by the egress guard
)

// FetchError is a fetch that got no HTTP response.
type FetchError struct {
	Kind FetchErrorKind
	// Phase, if known, is where it failed, e.g. "connecting" or "waiting
	// for the response".
	Phase string
	// Timeout is the deadline that passed, for FetchTimeout.
	Timeout time.Duration
	Err     error
}

// Error describes the failure so that it reads after "fetch to <url> ".
func (e *FetchError) Error() string {
	var b strings.Builder
	switch e.Kind {
	case FetchTimeout:
		b.WriteString("timed out")
	case FetchConnection:
		b.WriteString("could not connect")
	case FetchDenied:
		b.WriteString("was refused by the egress guard")
	default:
		b.WriteString("failed")
	}
	if e.Phase != "" {
		b.WriteString(" while ")
		b.WriteString(e.Phase)
	}
	if e.Kind == FetchTimeout && e.Timeout > 0 {
		b.WriteString(" after ")
		b.WriteString(e.Timeout.String())
	}
	if e.Err != nil && e.Kind != FetchTimeout {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *FetchError) Unwrap() error { return e.Err }

// MockFetcher answers every request with status 200 and an empty JSON
// object, like PostHog's test endpoint with mocked async functions.
type MockFetcher struct{}

// Fetch implements Fetcher.
func (MockFetcher) Fetch(context.Context, *FetchRequest) (*FetchResponse, error) {
	return &FetchResponse{Status: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: []byte("{}")}, nil
}

// newFetchRequest normalises fetch(url, options) as PostHog's fetch handler
// does: method defaults to POST and is upper-cased; headers default to
// {Content-Type: application/json} when none are given and keep only string
// values; a body that is not a string is JSON-encoded; a falsy body, or any
// body of a GET or HEAD, is not sent.
func newFetchRequest(args []vm.Value, timeout time.Duration) (*FetchRequest, error) {
	if len(args) == 0 || args[0].Kind() != vm.KindString {
		kind := "nothing"
		if len(args) > 0 {
			kind = args[0].Kind().String()
		}
		return nil, fmt.Errorf("fetch: the url must be a string, got %s", kind)
	}
	req := &FetchRequest{Method: "POST", URL: args[0].AsString(), Timeout: timeout}
	var opts *vm.Dict
	if len(args) > 1 {
		opts = args[1].AsDict()
	}
	if opts == nil {
		opts = vm.NewDict(0)
	}
	if m, ok := opts.GetString("method"); ok && m.Truthy() {
		if m.Kind() != vm.KindString {
			return nil, fmt.Errorf("fetch: the method must be a string, got %s", m.Kind())
		}
		req.Method = strings.ToUpper(m.AsString())
	}
	h, ok := opts.GetString("headers")
	if hd := h.AsDict(); ok && h.Truthy() && hd != nil {
		req.Headers = make(map[string]string, hd.Len())
		vals := hd.Values()
		for i, k := range hd.Keys() {
			if k.Kind() == vm.KindString && vals[i].Kind() == vm.KindString {
				req.Headers[k.AsString()] = vals[i].AsString()
			}
		}
	} else if !ok || !h.Truthy() {
		req.Headers = map[string]string{"Content-Type": "application/json"}
	} else {
		req.Headers = map[string]string{}
	}
	if b, ok := opts.GetString("body"); ok && b.Truthy() && req.Method != "GET" && req.Method != "HEAD" {
		if b.Kind() == vm.KindString {
			req.Body = []byte(b.AsString())
		} else {
			enc, err := b.MarshalJSON() // as JSON.stringify: no HTML escaping
			if err != nil {
				return nil, fmt.Errorf("fetch: encoding the body: %w", err)
			}
			req.Body = enc
		}
	}
	return req, nil
}

// responseValue is what fetch() returns to Hog: {status, body}, the body
// parsed when it is JSON and text otherwise. PostHog gives no headers.
func responseValue(resp *FetchResponse) vm.Value {
	body := vm.String(string(resp.Body))
	if len(resp.Body) > 0 {
		if v, err := vm.ParseJSON(resp.Body); err == nil {
			body = v
		}
	}
	d := vm.NewDict(2)
	d.SetString("status", vm.Int(int64(resp.Status)))
	d.SetString("body", body)
	return vm.DictValue(d)
}

// describeFetchError says why a fetch got no response, in words meant for
// the destination's owner.
func describeFetchError(ctx context.Context, rawURL string, timeout time.Duration, err error) string {
	var fe *FetchError
	var te interface{ Timeout() bool }
	switch {
	case errors.As(err, &fe):
		return "fetch to " + rawURL + " " + fe.Error()
	case ctx.Err() != nil:
		return "fetch to " + rawURL + " was cancelled: " + context.Cause(ctx).Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Timeout():
		return fmt.Sprintf("fetch to %s timed out after %s: %v", rawURL, timeout, err)
	}
	return "fetch to " + rawURL + " failed: " + err.Error()
}
