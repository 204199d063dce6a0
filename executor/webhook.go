package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/hogvm/vm"
	"github.com/hogwire/hogwire/webhooksig"
)

// Source webhook host functions, besides print and postHogCapture.
const verifyWebhookSignature = "verifyWebhookSignature"

// KindSignature is the failure of a request whose signature
// verifyWebhookSignature refused: the sender's doing, not the code's.
const KindSignature ErrorKind = "signature"

// IsSourceWebhook reports whether d is an inbound webhook: its program
// runs on HTTP requests, not on events.
func IsSourceWebhook(d *hogwirev1.Destination) bool {
	return d.GetKind() == hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK
}

// Request is an inbound webhook request, as the code sees it in its
// request global: {method, headers, query, body, stringBody, ip}.
type Request struct {
	Method string
	// Headers have lower-case names and their first values.
	Headers map[string]string
	// Query has each parameter's values joined with commas.
	Query map[string]string
	// ContentType is the Content-Type header, which says how Body parses.
	ContentType string
	// Body is the raw body: signatures are computed over these bytes.
	Body []byte
	IP   string
}

// value builds the request global. The body is parsed when it is JSON
// (by its Content-Type, or by its first byte when it has none) or a form;
// otherwise, or when it does not parse, it is the text itself.
func (r *Request) value() vm.Value {
	d := vm.NewDict(6)
	d.SetString("method", vm.String(r.Method))
	d.SetString("headers", vm.FromGo(r.Headers))
	d.SetString("query", vm.FromGo(r.Query))
	d.SetString("body", r.parsedBody())
	d.SetString("stringBody", vm.String(string(r.Body)))
	d.SetString("ip", vm.String(r.IP))
	vm.Freeze(vm.DictValue(d))
	return vm.DictValue(d)
}

func (r *Request) parsedBody() vm.Value {
	mt, _, _ := mime.ParseMediaType(r.ContentType)
	trimmed := bytes.TrimSpace(r.Body)
	switch {
	case len(trimmed) == 0:
		return vm.DictValue(vm.NewDict(0))
	case mt == "application/x-www-form-urlencoded":
		if form, err := url.ParseQuery(string(r.Body)); err == nil {
			m := make(map[string]any, len(form))
			for k, v := range form {
				m[k] = strings.Join(v, ",")
			}
			return vm.FromGo(m)
		}
	case mt == "application/json" || strings.HasSuffix(mt, "+json") || (mt == "" && (trimmed[0] == '{' || trimmed[0] == '[')):
		if v, err := vm.ParseJSON(trimmed); err == nil {
			return v
		}
	}
	return vm.String(string(r.Body))
}

// Received is what a source webhook's code made of a request.
type Received struct {
	// Result is the invocation's, as Invoke returns it; its Captures are
	// the events to ingest, when it Succeeded.
	*Result
	// HTTPStatus and HTTPBody are the answer the code chose by returning
	// {httpResponse: {status, body}}; HTTPStatus is 0 when it chose none.
	// HTTPBody is a string, or a JSON value (maps, slices…).
	HTTPStatus int
	HTTPBody   any
}

// Receive runs a source webhook's code on one request: its inputs, then
// the program, which reads the request global and may capture an event
// with postHogCapture and verify the request's signature with
// verifyWebhookSignature (a signature that does not verify fails the
// invocation with ErrorKind KindSignature). Filters and masking do not
// apply, and fetch is not available.
func (d *Destination) Receive(ctx context.Context, req *Request, project *Project, opts Options) Received {
	g := &Globals{uuid: uuid.NewString(), name: "$incoming_webhook", project: project.value, projectURL: project.url, req: req}
	g.request = req.value()
	opts.Park, opts.Resume, opts.Fetcher, opts.SkipFilters, opts.Mask = false, nil, nil, true, nil
	res := d.Invoke(ctx, g, opts)
	out := Received{Result: res}
	if res.Status != Succeeded {
		return out
	}
	ret := res.Value.AsDict()
	if ret == nil {
		return out
	}
	if hr, ok := ret.GetString("httpResponse"); ok && hr.AsDict() != nil {
		// As PostHog: a status that is not a number is a 500.
		out.HTTPStatus = 500
		if s, ok := hr.AsDict().GetString("status"); ok && s.Kind() == vm.KindNumber {
			out.HTTPStatus = int(s.AsNumber())
		}
		out.HTTPBody = ""
		if b, ok := hr.AsDict().GetString("body"); ok {
			out.HTTPBody = b.ToGo()
		}
		if out.HTTPStatus < 100 || out.HTTPStatus > 599 {
			out.HTTPStatus = 500
		}
		level := hogwirev1.LogLevel_LOG_LEVEL_INFO
		if out.HTTPStatus >= 400 {
			level = hogwirev1.LogLevel_LOG_LEVEL_WARN
		}
		res.Logs = append(res.Logs, LogEntry{Time: opts.clock()(), Level: level, Message: fmt.Sprintf("Responded with response status - %d", out.HTTPStatus)})
	}
	return out
}

// verifySignature answers verifyWebhookSignature(scheme, secret[, options])
// on the request: true when it verifies; one that does not is an error
// of kind KindSignature, which ends the invocation. options may hold
// header, encoding and prefix (scheme 'hmac') and tolerance, in seconds
// (Stripe and Standard Webhooks).
func (inv *invocation) verifySignature(args []vm.Value) (vm.Value, error) {
	req := inv.g.req
	if req == nil {
		return vm.Null, errors.New("there is no request to verify")
	}
	if len(args) < 2 || args[0].Kind() != vm.KindString || args[1].Kind() != vm.KindString {
		return vm.Null, errors.New("takes a scheme and a secret (strings), and options")
	}
	spec := webhooksig.Spec{Scheme: webhooksig.Scheme(args[0].AsString()), Secret: args[1].AsString()}
	if len(args) > 2 && args[2].AsDict() != nil {
		o := args[2].AsDict()
		str := func(k string) string {
			if v, ok := o.GetString(k); ok && v.Kind() == vm.KindString {
				return v.AsString()
			}
			return ""
		}
		spec.Header, spec.Encoding, spec.Prefix = str("header"), webhooksig.Encoding(str("encoding")), str("prefix")
		if v, ok := o.GetString("tolerance"); ok && v.Kind() == vm.KindNumber {
			spec.Tolerance = time.Duration(v.AsNumber() * float64(time.Second))
			if spec.Tolerance == 0 {
				spec.Tolerance = -1 // 0 seconds: unchecked, not the default
			}
		}
	}
	header := func(name string) string { return req.Headers[strings.ToLower(name)] }
	err := webhooksig.Verify(spec, header, req.Body, inv.opts.Now())
	switch {
	case errors.Is(err, webhooksig.ErrInvalid):
		return vm.Null, &kindError{KindSignature, err}
	case err != nil:
		return vm.Null, err
	}
	return vm.Bool(true), nil
}
