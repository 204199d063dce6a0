package capture

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/hogwire/hogwire/executor"
)

// WebhookPath is where inbound (source) webhooks are served, followed by
// the webhook's id.
const WebhookPath = "/public/webhooks/"

// Webhooks runs inbound webhooks.
type Webhooks interface {
	// Receive runs the webhook id on req and returns the answer: a status
	// and a body (a string is sent as text, anything else as JSON).
	Receive(ctx context.Context, id string, req *executor.Request) (status int, body any)
}

// hiddenHeaders are the headers a webhook's code does not see: proxies'
// and the browser's, as PostHog leaves out.
var hiddenHeaders = map[string]bool{
	"x-forwarded-for": true, "x-forwarded-host": true, "x-forwarded-proto": true, "x-forwarded-port": true,
	"cookie": true, "x-csrftoken": true, "proxy-authorization": true, "referer": true, "forwarded": true,
	"x-real-ip": true, "true-client-ip": true,
}

// webhook is POST /public/webhooks/{id}: the body, read under the capture
// limits, goes to the webhook's code with the headers and query.
func (h *handler) webhook(ctx context.Context, w http.ResponseWriter, r *http.Request) (int, any, *apiError) {
	if r.Method != http.MethodPost {
		return 0, nil, &apiError{status: http.StatusMethodNotAllowed, Type: "invalid_request", Code: "method_not_allowed",
			Detail: "method " + r.Method + " is not allowed; use POST"}
	}
	if h.cfg.Webhooks == nil {
		return 0, nil, webhookNotFound()
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return 0, nil, tooLarge(fmt.Sprintf("request body of %d bytes exceeds the limit of %s", r.ContentLength, humanize.IBytes(uint64(h.cfg.MaxBodyBytes))))
	}
	mem := h.mem.lease()
	defer mem.release()
	body, aerr := h.readBody(w, r, mem)
	if aerr != nil {
		return 0, nil, aerr
	}
	req := &executor.Request{Method: r.Method, Headers: map[string]string{}, Query: map[string]string{},
		ContentType: r.Header.Get("Content-Type"), Body: body, IP: clientIP(r)}
	for k, v := range r.Header {
		if k = strings.ToLower(k); len(v) > 0 && !hiddenHeaders[k] {
			req.Headers[k] = v[0]
		}
	}
	for k, v := range r.URL.Query() {
		req.Query[k] = strings.Join(v, ",")
	}
	status, out := h.cfg.Webhooks.Receive(ctx, r.PathValue("id"), req)
	if s, ok := out.(string); ok {
		return status, webhookText(s), nil
	}
	return status, out, nil
}

// webhookNotFound is the answer for an id that names no enabled webhook.
func webhookNotFound() *apiError {
	return &apiError{status: http.StatusNotFound, Type: "invalid_request", Code: "not_found", Detail: "no such webhook"}
}

// webhookText is a webhook's answer given as text.
type webhookText string
