package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
	"github.com/hogwire/hogwire/metrics"
)

// Paths returns the capture endpoints PostHog SDKs post to; each is
// served with and without a trailing slash.
func Paths() []string { return []string{"/batch", "/capture", "/e", "/i/v0/e", "/track"} }

type handler struct {
	cfg Config
	mem *memory
	// inflaters holds *inflater for gunzip to reuse.
	inflaters sync.Pool
}

// NewHandler returns the HTTP capture API: every path of Paths, with and
// without a trailing slash, and the endpoints PostHog's SDKs read their
// settings from (see sdk.go). Mount it at the server root or route those
// paths to it.
func NewHandler(cfg Config) http.Handler {
	h := newHandler(cfg)
	mux := http.NewServeMux()
	route := func(pattern string, ep endpoint) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, pattern, ep) })
	}
	for _, p := range Paths() {
		ep := h.captureAt(p)
		route(p, ep)
		route(p+"/{$}", ep)
	}
	for _, p := range []string{"/flags", "/decide"} {
		route(p, h.flags)
		route(p+"/{$}", h.flags)
	}
	route("/array/{token}/config", h.remoteConfig)
	route("/array/{token}/config.js", h.remoteConfigJS)
	route("/static/", h.staticScript)
	route(WebhookPath+"{id}", h.webhook)
	// otelhttp makes each request's server span, with the HTTP semantic
	// conventions, continuing a sender's traceparent; serve names it by
	// route.
	return otelhttp.NewHandler(mux, "capture",
		otelhttp.WithTracerProvider(h.cfg.TracerProvider),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()))
}

func newHandler(cfg Config) *handler {
	cfg = cfg.withDefaults()
	return &handler{cfg: cfg, mem: &memory{max: cfg.MemoryBytes}}
}

type okResponse struct {
	Status int `json:"status"`
}

// An endpoint answers a GET or POST with a status and a body: JSON, a
// script, or nothing (nil).
type endpoint func(ctx context.Context, w http.ResponseWriter, r *http.Request) (status int, body any, aerr *apiError)

// script is a JavaScript response body.
type script []byte

// serve runs ep with what every endpoint shares: a span, CORS for
// browsers, the preflight, and the answer's encoding.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, route string, ep endpoint) {
	ctx := r.Context()
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetName(r.Method + " " + route)
		span.SetAttributes(semconv.HTTPRoute(route))
	}

	// Browsers send posthog-js's requests cross-origin with credentials.
	if origin := r.Header.Get("Origin"); origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Add("Vary", "Origin")
	}

	var (
		status int
		body   any
	)
	switch r.Method {
	case http.MethodGet, http.MethodPost:
		var aerr *apiError
		if status, body, aerr = ep(ctx, w, r); aerr != nil {
			status, body = aerr.status, aerr
		}
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if hdrs := r.Header.Get("Access-Control-Request-Headers"); hdrs != "" {
			w.Header().Set("Access-Control-Allow-Headers", hdrs)
		}
		w.Header().Set("Access-Control-Max-Age", "86400")
		status = http.StatusOK
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		status = http.StatusMethodNotAllowed
		body = &apiError{Type: "invalid_request", Code: "method_not_allowed", Detail: "method " + r.Method + " is not allowed; use POST"}
	}

	if status >= 400 {
		// The body may be unread, or stalled: without this the server
		// would wait to read it before answering, to reuse the connection.
		w.Header().Set("Connection", "close")
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(h.cfg.RetryAfter.Seconds()))))
	}
	switch b := body.(type) {
	case nil:
		w.WriteHeader(status)
	case script:
		w.Header().Set("Content-Type", "application/javascript")
		w.WriteHeader(status)
		_, _ = w.Write(b)
	case webhookText:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(b))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if err := json.NewEncoder(w).Encode(body); err != nil {
			h.cfg.Logger.DebugContext(ctx, "capture: writing response", slog.Any("error", err))
		}
	}
}

// captureAt is the capture endpoint at path, counted under that name.
func (h *handler) captureAt(path string) endpoint {
	if h.cfg.Metrics == nil {
		return h.capture
	}
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request) (int, any, *apiError) {
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		var events int
		status, resp, aerr := h.captureCounting(ctx, w, r, &events)
		code := status
		if aerr != nil {
			code = aerr.status
		}
		h.cfg.Metrics.Record(ctx, path, ingestStatus(code), events, body.n)
		return status, resp, aerr
	}
}

// ingestStatus is the metrics status of an HTTP answer.
func ingestStatus(code int) string {
	switch {
	case code < 300:
		return metrics.StatusAccepted
	case code == http.StatusUnauthorized:
		return metrics.StatusUnauthorized
	case code == http.StatusRequestEntityTooLarge:
		return metrics.StatusTooLarge
	case code >= 500:
		return metrics.StatusUnavailable
	}
	return metrics.StatusInvalid
}

// countingBody counts the bytes read of a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// capture is the capture endpoint.
func (h *handler) capture(ctx context.Context, w http.ResponseWriter, r *http.Request) (int, any, *apiError) {
	return h.captureCounting(ctx, w, r, new(int))
}

// captureCounting is capture, setting *events to the request's events
// once they are known.
func (h *handler) captureCounting(ctx context.Context, w http.ResponseWriter, r *http.Request, events *int) (int, any, *apiError) {
	resp, aerr := h.ingest(ctx, w, r, events)
	switch {
	case aerr != nil:
		return 0, nil, aerr
	case r.URL.Query().Get("beacon") == "1":
		// sendBeacon cannot read a response; PostHog answers 204.
		return http.StatusNoContent, nil, nil
	}
	return http.StatusOK, resp, nil
}

// ingest ingests one request's events: all of them, or none.
func (h *handler) ingest(ctx context.Context, w http.ResponseWriter, r *http.Request, nevents *int) (*okResponse, *apiError) {
	log := h.cfg.Logger
	span := trace.SpanFromContext(ctx)

	// What can be refused without reading the body is refused first: a
	// token the query or headers carry, the content type, the size.
	early := requestToken(r)
	if early != "" {
		if _, ok := h.cfg.Tokens.Project(early); !ok {
			return nil, invalidToken()
		}
	}
	if ct := r.Header.Get("Content-Type"); !acceptedContentType(ct) {
		return nil, &apiError{status: http.StatusUnsupportedMediaType, Type: "validation_error", Code: "unsupported_media_type",
			Detail: "Content-Type " + ct + " is not a capture payload; send JSON, a form, or gzip"}
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return nil, tooLarge(fmt.Sprintf("request body of %d bytes exceeds the limit of %s", r.ContentLength, humanize.IBytes(uint64(h.cfg.MaxBodyBytes))))
	}
	if r.ContentLength > h.mem.largeMax() {
		return nil, h.memoryError(errTooBig)
	}

	mem := h.mem.lease()
	defer mem.release()
	env, aerr := h.readPayload(w, r, mem)
	if aerr != nil {
		log.DebugContext(ctx, "capture: unreadable request", slog.String("path", r.URL.Path), slog.String("code", aerr.Code), slog.String("detail", aerr.Detail))
		return nil, aerr
	}
	data, truncated, err := parseJSON(env.payload, payloadDepth, mem)
	switch {
	case errors.Is(err, errBusy), errors.Is(err, errTooBig):
		return nil, h.memoryError(err)
	case err != nil:
		return nil, validationError("invalid_payload", "Malformed request data: "+err.Error())
	}
	// The values own copies of their strings: the text is garbage now.
	textLen := len(env.payload)
	mem.give(int64(cap(env.payload)))
	env.payload = nil
	req, aerr := splitPayload(data)
	if aerr != nil {
		return nil, aerr
	}
	*nevents = len(req.events)
	token := firstNonEmpty(env.token, req.token)
	switch {
	case token == "" && early == "":
		return nil, &apiError{status: http.StatusUnauthorized, Type: "authentication_error", Code: "missing_api_key",
			Detail: "API key not provided. You can find your project API key in PostHog project settings."}
	case token == "":
		token = early
	case early != "" && token != early:
		return nil, &apiError{status: http.StatusUnauthorized, Type: "authentication_error", Code: "invalid_api_key",
			Detail: "the request carries two different api keys"}
	}
	project, ok := h.cfg.Tokens.Project(token)
	if !ok {
		return nil, invalidToken()
	}
	span.SetAttributes(attribute.String("hogwire.project", project))
	if len(req.events) == 0 {
		return nil, validationError("invalid_payload", "request holds no event")
	}
	if n, limit := len(req.events), h.cfg.Limits.MaxBatchEvents; n > limit {
		e := tooLarge(fmt.Sprintf("%d events exceed the limit of %d per request", n, limit))
		e.Rejected = []Rejection{{Index: limit, Rule: string(eventlimits.RuleBatchEvents), Reason: e.Detail}}
		return nil, e
	}

	c := clock{now: h.cfg.Now()}
	if ms, err := strconv.ParseInt(r.URL.Query().Get("_"), 10, 64); err == nil {
		// posthog-js sends its clock in milliseconds; older SDKs sent
		// seconds, which PostHog ignores as they would read as 1970.
		if t := time.UnixMilli(ms); t.Year() > 2020 {
			c.sentAt = t
		}
	}
	if c.sentAt.IsZero() {
		if t, ok := parseTime(req.sentAt); ok {
			c.sentAt = t
		} else if t, ok := parseTime(structpb.NewStringValue(env.sentAt)); ok {
			c.sentAt = t
		}
	}

	var ip *structpb.Value
	if !h.cfg.AnonymizeIPs {
		if a := clientIP(r); a != "" {
			ip = structpb.NewStringValue(a)
		}
	}
	events := make([]*hogwirev1.Event, 0, len(req.events))
	boxes := make([]eventBox, len(req.events))
	var ids uuidGen
	var (
		rej  rejections
		size int64
	)
	// For an EncodedPublisher the events are encoded as they are
	// converted, the encoding checking the limits on the way; else
	// checkLimits checks them, and the Publisher encodes them.
	var enc *encoding
	if _, ok := h.cfg.Publisher.(EncodedPublisher); ok {
		enc = &encoding{encoder: newEncoder(h.cfg.Limits), max: h.cfg.Limits.WithDefaults().MaxEventBytes, mem: mem, text: textLen,
			ends: make([]int, 0, len(req.events)), uuids: make([]string, 0, len(req.events))}
	}
	for i, raw := range req.events {
		if truncated {
			// A cut container in properties, $set or $set_once sits deeper
			// than the limit, which checkLimits reports with its path; one
			// anywhere else is refused here.
			if field, cut := cutField(raw); cut && field != "properties" && field != "$set" && field != "$set_once" {
				rej.add(i, field, string(eventlimits.RuleDepth), fmt.Sprintf("objects and arrays nest deeper than %d levels", eventlimits.MaxDepth))
				continue
			}
		}
		ids.left = len(req.events) - i
		ev, fe := convertEvent(raw, c, &boxes[i], &ids)
		if fe != nil {
			rej.add(i, fe.field, fe.rule, fe.reason)
			continue
		}
		ev.Project = project
		if ip != nil && ev.Properties.Fields["$ip"] == nil {
			ev.Properties.Fields["$ip"] = ip
		}
		if enc == nil {
			size += int64(checkLimits(h.cfg.Limits, ev, i, &rej))
		} else if ok, err := enc.add(ev, len(req.events)-i); err != nil {
			// The encodings need more memory than the request may take.
			// The events are checked on without them, as for a
			// Publisher, so that the answer is the same: an event that
			// breaks a limit is named, rather than memory blamed.
			size = enc.drop()
			enc = nil
			size += int64(checkLimits(h.cfg.Limits, ev, i, &rej))
		} else if !ok {
			// Check names what the encoding found broken.
			checkLimits(h.cfg.Limits, ev, i, &rej)
		}
		events = append(events, ev)
	}
	span.SetAttributes(attribute.Int("hogwire.events", len(req.events)), attribute.Int("hogwire.events.rejected", rej.count))
	if rej.count > 0 {
		first := rej.list[0]
		log.WarnContext(ctx, "capture: request refused",
			slog.String("project", project), slog.Int("events", len(req.events)), slog.Int("rejected", rej.count),
			slog.Int("first_index", first.Index), slog.String("first_field", first.Field), slog.String("first_rule", first.Rule), slog.String("first_reason", first.Reason))
		e := validationError("invalid_payload", rej.summary())
		if rej.size {
			e = tooLarge(rej.summary())
		}
		e.Rejected = rej.list
		return nil, e
	}
	if enc != nil {
		err = h.cfg.Publisher.(EncodedPublisher).PublishEncoded(ctx, project, enc.uuids, enc.events())
	} else if err = mem.take(size); err != nil { // storing encodes the events once more
		return nil, h.memoryError(err)
	} else {
		err = h.cfg.Publisher.Publish(ctx, project, events)
	}
	if err != nil {
		span.RecordError(err)
		var tl *eventlimits.TooLargeError
		if errors.As(err, &tl) {
			e := tooLarge(err.Error() + "; nothing was stored")
			if tl.Index >= 0 {
				e.Rejected = []Rejection{{Index: tl.Index, Rule: string(eventlimits.RuleEventBytes), Reason: err.Error()}}
			}
			return nil, e
		}
		log.ErrorContext(ctx, "capture: publish failed", slog.String("project", project), slog.Int("events", len(events)), slog.Any("error", err))
		return nil, unavailable("events could not be stored; retry the request")
	}
	return &okResponse{Status: 1}, nil
}

// encoding is the encodings of a request's events, made as they are
// converted: one buffer holds them all, reserved from the request's
// lease as it grows.
type encoding struct {
	encoder
	// max is the limit on an event's encoded size.
	max int
	mem *lease
	buf []byte
	// reserved is what buf's capacity has been reserved for; text is the
	// length of the request's JSON text.
	reserved, text int
	// ends are where each event's encoding ends in buf; uuids are theirs.
	ends  []int
	uuids []string
}

// add appends ev's encoding and reports whether ev keeps within the
// limits; left is how many of the request's events are yet to be
// encoded, ev included. An error is a refused reservation.
func (e *encoding) add(ev *hogwirev1.Event, left int) (bool, error) {
	if err := e.makeRoom(left); err != nil {
		return false, err
	}
	start := len(e.buf)
	var ok bool
	e.buf, ok = e.appendEvent(e.buf, ev)
	// The buffer grew within append, before it could be reserved: what
	// it took is reserved now, before anything else is allocated.
	if grown := cap(e.buf) - e.reserved; grown > 0 {
		if err := e.mem.take(int64(grown)); err != nil {
			return false, err
		}
		e.reserved = cap(e.buf)
	}
	e.ends = append(e.ends, len(e.buf))
	e.uuids = append(e.uuids, ev.Uuid)
	return ok && len(e.buf)-start <= e.max, nil
}

// makeRoom grows the buffer, when it may be too small for the next
// event, to what the events so far predict all will take, so that it is
// made about once at its final size rather than grown from nothing. The
// first event has a buffer of twice the text of an average one, as
// encodings take about as many bytes as the text; a prediction is held
// to four times the buffer or twice the whole text, whichever is more,
// in case the first events are the largest.
func (e *encoding) makeRoom(left int) error {
	done := len(e.ends)
	want := 2 * e.text / (done + left)
	if done > 0 {
		avg := len(e.buf) / done
		if cap(e.buf)-len(e.buf) >= avg {
			return nil
		}
		predicted := len(e.buf) + avg*left + avg*left/8
		want = min(predicted, max(4*len(e.buf), 2*e.text))
	}
	if want <= cap(e.buf) {
		return nil
	}
	if err := e.mem.take(int64(want - e.reserved)); err != nil {
		return err
	}
	e.reserved = want
	buf := make([]byte, len(e.buf), want)
	copy(buf, e.buf)
	e.buf = buf
	return nil
}

// drop lets go of the encodings after add failed, giving back their
// reservation, and returns the size of those add accepted.
func (e *encoding) drop() int64 {
	e.mem.give(int64(e.reserved))
	if len(e.ends) == 0 {
		return 0
	}
	return int64(e.ends[len(e.ends)-1])
}

// events returns each event's encoding, a slice of the buffer.
func (e *encoding) events() [][]byte {
	data := make([][]byte, len(e.ends))
	start := 0
	for i, end := range e.ends {
		data[i] = e.buf[start:end:end]
		start = end
	}
	return data
}

func invalidToken() *apiError {
	return &apiError{status: http.StatusUnauthorized, Type: "authentication_error", Code: "invalid_api_key",
		Detail: "Project API key invalid. You can find your project API key in PostHog project settings."}
}

// requestToken is a token carried outside the body: ?token= or ?api_key=
// in the query, or an "Authorization: Bearer" header.
func requestToken(r *http.Request) string {
	q := r.URL.Query()
	if t := firstNonEmpty(q.Get("token"), q.Get("api_key")); t != "" {
		return t
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// request is a decoded payload before its events are converted.
type request struct {
	events []*structpb.Value
	token  string
	sentAt *structpb.Value
}

// splitPayload finds the events, token and sent_at of the three payload
// shapes: an array of events, {"batch": [...]} and a single event.
func splitPayload(data *structpb.Value) (request, *apiError) {
	var req request
	if arr, ok := asList(data); ok {
		req.events = arr
	} else if d, ok := asStruct(data); ok {
		if b := d.Fields["batch"]; !isNull(b) {
			arr, ok := asList(b)
			if !ok {
				return req, validationError("invalid_payload", "batch must be an array of events")
			}
			req.events = arr
			req.token = stringField(d, "api_key", "token", "$token")
			req.sentAt = d.Fields["sent_at"]
		} else {
			req.events = []*structpb.Value{data}
		}
	} else {
		return req, validationError("invalid_payload", "payload must be a JSON object or array")
	}
	if req.token != "" {
		return req, nil
	}
	// Without a request-level token, the events carry it and must agree.
	for _, raw := range req.events {
		t := eventToken(raw)
		switch {
		case t == "":
		case req.token == "":
			req.token = t
		case t != req.token:
			return req, &apiError{status: http.StatusUnauthorized, Type: "authentication_error", Code: "invalid_api_key",
				Detail: "batch submitted with inconsistent api_key values"}
		}
	}
	return req, nil
}

func eventToken(raw *structpb.Value) string {
	m, ok := asStruct(raw)
	if !ok {
		return ""
	}
	if t := stringField(m, "token", "$token", "api_key"); t != "" {
		return t
	}
	if p, ok := asStruct(m.Fields["properties"]); ok {
		return stringField(p, "token", "$token")
	}
	return ""
}

func stringField(m *structpb.Struct, keys ...string) string {
	for _, k := range keys {
		if s, ok := asString(m.Fields[k]); ok && strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// clientIP is the sender's address as PostHog records it in $ip: the first
// address of X-Forwarded-For, which a load balancer in front of the node
// sets, else the connection's peer.
func clientIP(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
			return a.Unmap().String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return ""
}
