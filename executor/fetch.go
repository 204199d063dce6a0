package executor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// Fetcher performs the HTTP requests of Hog's fetch(): *fetch.Client is
// the real one, with the egress guard and retries. The executor calls it
// once per fetch() and gives Hog the final response.
type Fetcher interface {
	// Do performs req under policy p, calling observe after every attempt.
	// An HTTP response of any status is a response, not an error; an error
	// is one of package fetch's typed errors.
	Do(ctx context.Context, req fetch.Request, p fetch.Policy, observe func(fetch.Attempt)) (*fetch.Response, error)
}

// MockFetcher answers every request with status 200 and an empty JSON
// object, like PostHog's test endpoint with mocked async functions.
type MockFetcher struct{}

// Do implements Fetcher.
func (MockFetcher) Do(_ context.Context, _ fetch.Request, _ fetch.Policy, observe func(fetch.Attempt)) (*fetch.Response, error) {
	if observe != nil {
		observe(fetch.Attempt{N: 1, Max: 1, Status: 200})
	}
	return &fetch.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte("{}"), Attempts: 1}, nil
}

// FetchError is a fetch() that got no HTTP response. It reads as the
// destination's owner needs it, e.g. "fetch to https://… timed out while
// waiting for the response after 10s"; Err is package fetch's typed error.
type FetchError struct {
	URL     string
	Timeout time.Duration // the per-attempt timeout
	Err     error
}

func (e *FetchError) Error() string {
	var te *fetch.TimeoutError
	var ce *fetch.ConnError
	var b strings.Builder
	b.WriteString("fetch to ")
	b.WriteString(e.URL)
	switch {
	case errors.As(e.Err, &te):
		b.WriteString(" timed out while ")
		b.WriteString(phaseWords(te.Phase))
		if e.Timeout > 0 {
			b.WriteString(" after ")
			b.WriteString(e.Timeout.String())
		}
	case errors.Is(e.Err, fetch.ErrEgressDenied):
		b.WriteString(" was refused by the egress guard (" + string(KindEgressRefused) + "): ")
		b.WriteString(e.Err.Error())
	case errors.As(e.Err, &ce):
		b.WriteString(" could not connect while connecting: ")
		b.WriteString(e.Err.Error())
	case errors.Is(e.Err, context.Canceled):
		b.WriteString(" was cancelled: ")
		b.WriteString(e.Err.Error())
	case errors.Is(e.Err, context.DeadlineExceeded):
		b.WriteString(" timed out after " + e.Timeout.String() + ": ")
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(" failed: ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *FetchError) Unwrap() error { return e.Err }

// Kind classifies the failure.
func (e *FetchError) Kind() ErrorKind {
	switch {
	case errors.Is(e.Err, fetch.ErrEgressDenied):
		return KindEgressRefused
	case errors.Is(e.Err, fetch.ErrTimeout):
		return KindFetchTimeout
	case errors.Is(e.Err, fetch.ErrConnection):
		return KindFetchConnection
	case errors.Is(e.Err, fetch.ErrInvalidRequest):
		return KindFetchInvalid
	}
	return KindFetchFailed
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

// newFetchRequest normalises fetch(url, options) as PostHog's fetch handler
// does: method defaults to POST and is upper-cased; headers default to
// {Content-Type: application/json} when none are given and keep only string
// values; a body that is not a string is JSON-encoded; a falsy body, or any
// body of a GET or HEAD, is not sent. The options the host resolves
// (timeout_ms, bearer_token_input, aws_sigv4, standard_webhooks) come back
// apart, for the invocation to apply.
//
// The header of a request whose headers are one of the destination's
// literal inputs (as the webhook template's are) is the one built for it
// at Prepare, shared by every request: it must not be modified.
//
// The request is built in req, which is returned.
func (d *Destination) newFetchRequest(req *fetch.Request, args []vm.Value) (*fetch.Request, fetchAuth, error) {
	if len(args) == 0 || args[0].Kind() != vm.KindString {
		kind := "nothing"
		if len(args) > 0 {
			kind = args[0].Kind().String()
		}
		return nil, fetchAuth{}, fmt.Errorf("fetch: the url must be a string, got %s", kind)
	}
	*req = fetch.Request{Method: "POST", URL: args[0].AsString()}
	var opts *vm.Dict
	if len(args) > 1 {
		opts = args[1].AsDict()
	}
	if opts == nil {
		opts = vm.NewDict(0)
	}
	if m, ok := opts.GetString("method"); ok && m.Truthy() {
		if m.Kind() != vm.KindString {
			return nil, fetchAuth{}, fmt.Errorf("fetch: the method must be a string, got %s", m.Kind())
		}
		req.Method = strings.ToUpper(m.AsString())
	}
	h, ok := opts.GetString("headers")
	if hd := h.AsDict(); ok && h.Truthy() && hd != nil {
		req.Header = d.literalHeader(hd)
		if req.Header == nil {
			req.Header = fetchHeader(hd)
		}
	} else if !ok || !h.Truthy() {
		req.Header = http.Header{"Content-Type": {"application/json"}}
	} else {
		req.Header = http.Header{}
	}
	if b, ok := opts.GetString("body"); ok && b.Truthy() && req.Method != "GET" && req.Method != "HEAD" {
		if b.Kind() == vm.KindString {
			req.Body = []byte(b.AsString())
		} else {
			// As JSON.stringify: no HTML escaping. AppendJSON sizes its
			// buffer from the value at once; MarshalJSON grows one from
			// empty, an allocation per doubling.
			req.Body = vm.AppendJSON(nil, b, 0, 0)
		}
	}
	auth, err := parseFetchAuth(opts)
	if err != nil {
		return nil, fetchAuth{}, err
	}
	return req, auth, nil
}

// fetchHeader is the header of the headers dict hd: its string values
// under their canonical keys.
func fetchHeader(hd *vm.Dict) http.Header {
	h := make(http.Header, hd.Len())
	// One array holds every header's value (each header has one).
	vals := make([]string, 0, hd.Len())
	hv := hd.Values()
	for i, k := range hd.Keys() {
		if k.Kind() == vm.KindString && hv[i].Kind() == vm.KindString {
			vals = append(vals, hv[i].AsString())
			h[http.CanonicalHeaderKey(k.AsString())] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	return h
}

// literalHeader is a header for hd built at Prepare, when hd holds one of
// the destination's literal inputs (or is a program's unchanged copy of
// one); else nil.
func (d *Destination) literalHeader(hd *vm.Dict) http.Header {
	if len(d.headers) == 0 {
		return nil
	}
	c, ok := hd.Content()
	if !ok {
		return nil
	}
	for _, lh := range d.headers {
		if lh.content == c {
			return lh.header
		}
	}
	return nil
}

// literalHeader is the header of a literal dict input, built once.
type literalHeader struct {
	content vm.DictContent
	header  http.Header
}

// prepareHeaders builds the header of every literal dict input of d and
// of its mappings: any of them may be a fetch's headers.
func (d *Destination) prepareHeaders() {
	add := func(ins []input) {
		for _, in := range ins {
			hd := in.value.lit.AsDict()
			if in.value.kind != tmplLiteral || hd == nil || len(d.headers) == maxLiteralHeaders {
				continue
			}
			if c, ok := hd.Content(); ok {
				d.headers = append(d.headers, literalHeader{content: c, header: fetchHeader(hd)})
			}
		}
	}
	add(d.inputs)
	for _, m := range d.mappings {
		add(m.inputs)
	}
}

// maxLiteralHeaders bounds the headers prepared, which every fetch's
// headers are looked for among.
const maxLiteralHeaders = 8

// responseValue is what fetch() returns to Hog: {status, body}, the body
// parsed when it is JSON and text otherwise. PostHog gives no headers.
// The dict is made in buf.
func responseValue(buf *vm.DictBuf2, resp *fetch.Response) vm.Value {
	d := buf.Dict(2)
	d.SetString("status", vm.Int(int64(resp.Status)))
	d.SetString("body", responseBody(resp.Body))
	return vm.DictValue(d)
}

func responseBody(b []byte) vm.Value {
	if len(b) > 0 {
		if v, err := vm.ParseJSON(b); err == nil {
			return v
		}
	}
	// Copied only now: a JSON body's text is not kept.
	return vm.String(string(b))
}

// attemptLog is the destination's warning for a fetch attempt that failed
// in a way worth telling, or "".
func attemptLog(a fetch.Attempt) string {
	var outcome string
	switch {
	case errors.Is(a.Err, fetch.ErrEgressDenied):
		outcome = "a refusal by the egress guard (" + string(KindEgressRefused) + ")"
	case errors.Is(a.Err, fetch.ErrTimeout):
		outcome = "a timeout"
	case a.Err != nil:
		outcome = "a connection error"
	case a.Status >= 400:
		outcome = fmt.Sprintf("HTTP %d", a.Status)
	default:
		return ""
	}
	if a.WillRetry {
		return fmt.Sprintf("retrying after %s, retry %d/%d in %s", outcome, a.N, a.Max-1, a.RetryIn.Round(time.Millisecond))
	}
	if a.Err != nil || a.Status >= 500 || a.Status == 429 || a.Status == 408 {
		return fmt.Sprintf("fetch failed with %s after %d attempt(s)", outcome, a.N)
	}
	return ""
}
