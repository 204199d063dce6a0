package executor

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// fetchAuth is what fetch()'s options ask of the host beyond the request
// itself: a per-call timeout and credentials that the host reads from the
// destination's inputs by name, so that the program never handles them.
type fetchAuth struct {
	timeout     time.Duration // timeout_ms; 0 means the destination's
	bearerInput string        // bearer_token_input
	aws         *awsSigV4Option
	webhooks    *webhooksOption
}

// awsSigV4Option is fetch's aws_sigv4 option.
type awsSigV4Option struct {
	accessKeyIDInput, secretAccessKeyInput, sessionTokenInput string
	region, service                                           string
}

// webhooksOption is fetch's standard_webhooks option: the inputs holding
// the signing keys, the current first.
type webhooksOption struct {
	keyInputs []string
}

// parseFetchAuth reads the options of fetch() that the host resolves.
func parseFetchAuth(opts *vm.Dict) (fetchAuth, error) {
	var a fetchAuth
	if v, ok := opts.GetString("timeout_ms"); ok && !v.IsNull() {
		if v.Kind() != vm.KindNumber || v.AsNumber() <= 0 {
			return a, fmt.Errorf("fetch: timeout_ms must be a positive number of milliseconds, got %s", describeValue(v))
		}
		a.timeout = time.Duration(v.AsNumber() * float64(time.Millisecond))
	}
	if v, ok := opts.GetString("bearer_token_input"); ok && !v.IsNull() {
		if v.Kind() != vm.KindString || v.AsString() == "" {
			return a, fmt.Errorf("fetch: bearer_token_input must name an input, got %s", describeValue(v))
		}
		a.bearerInput = v.AsString()
	}
	if v, ok := opts.GetString("aws_sigv4"); ok && !v.IsNull() {
		d := v.AsDict()
		if d == nil {
			return a, fmt.Errorf("fetch: aws_sigv4 must be an object, got %s", v.Kind())
		}
		o := &awsSigV4Option{}
		for _, f := range []struct {
			key      string
			dst      *string
			required bool
		}{
			{"access_key_id_input", &o.accessKeyIDInput, true},
			{"secret_access_key_input", &o.secretAccessKeyInput, true},
			{"session_token_input", &o.sessionTokenInput, false},
			{"region", &o.region, true},
			{"service", &o.service, true},
		} {
			fv, _ := d.GetString(f.key)
			if fv.Kind() == vm.KindString {
				*f.dst = strings.TrimSpace(fv.AsString())
			} else if !fv.IsNull() {
				return a, fmt.Errorf("fetch: aws_sigv4.%s must be a string, got %s", f.key, fv.Kind())
			}
			if f.required && *f.dst == "" {
				return a, fmt.Errorf("fetch: aws_sigv4.%s is required", f.key)
			}
		}
		a.aws = o
	}
	if v, ok := opts.GetString("standard_webhooks"); ok && !v.IsNull() {
		d := v.AsDict()
		if d == nil {
			return a, fmt.Errorf("fetch: standard_webhooks must be an object, got %s", v.Kind())
		}
		o := &webhooksOption{}
		for i, key := range []string{"secret_input", "previous_secret_input"} {
			fv, _ := d.GetString(key)
			switch {
			case fv.Kind() == vm.KindString && fv.AsString() != "":
				o.keyInputs = append(o.keyInputs, fv.AsString())
			case i == 0:
				return a, fmt.Errorf("fetch: standard_webhooks.secret_input must name an input, got %s", describeValue(fv))
			case !fv.IsNull():
				return a, fmt.Errorf("fetch: standard_webhooks.%s must name an input, got %s", key, describeValue(fv))
			}
		}
		a.webhooks = o
	}
	if a.aws != nil && a.webhooks != nil {
		return a, errors.New("fetch: aws_sigv4 and standard_webhooks cannot sign the same request")
	}
	return a, nil
}

func describeValue(v vm.Value) string {
	if v.Kind() == vm.KindString {
		return strconv.Quote(v.AsString())
	}
	return v.Kind().String()
}

// authorize applies a to req: it reads the named inputs, adds them to the
// secrets redaction hides (whether or not the inputs are marked secret),
// and sets the header or the per-attempt signer. n is the fetch's index in
// the invocation.
func (inv *invocation) authorize(req *fetch.Request, a fetchAuth, n int) error {
	// timeout_ms can shorten the destination's limits.fetch_timeout, not
	// exceed it (the client takes the shorter).
	req.Timeout = a.timeout
	if a.bearerInput != "" {
		tok, err := inv.secretInput("bearer_token_input", a.bearerInput, true)
		if err != nil {
			return err
		}
		// The header may be shared by every request (see
		// newFetchRequest): the token goes in a copy.
		h := make(http.Header, len(req.Header)+1)
		for k, v := range req.Header {
			h[k] = v
		}
		h.Set("Authorization", "Bearer "+tok)
		req.Header = h
	}
	if o := a.aws; o != nil {
		id, err := inv.secretInput("aws_sigv4.access_key_id_input", o.accessKeyIDInput, true)
		if err != nil {
			return err
		}
		key, err := inv.secretInput("aws_sigv4.secret_access_key_input", o.secretAccessKeyInput, true)
		if err != nil {
			return err
		}
		var token string
		if o.sessionTokenInput != "" {
			if token, err = inv.secretInput("aws_sigv4.session_token_input", o.sessionTokenInput, false); err != nil {
				return err
			}
		}
		req.Sign = &fetch.Signing{AWSSigV4: &fetch.AWSSigV4{AccessKeyID: id, SecretAccessKey: key, SessionToken: token,
			Region: o.region, Service: o.service}}
	}
	if o := a.webhooks; o != nil {
		s := &fetch.StandardWebhooks{ID: inv.webhookID(n)}
		for i, in := range o.keyInputs {
			option := "standard_webhooks.secret_input"
			if i > 0 {
				option = "standard_webhooks.previous_secret_input"
			}
			raw, err := inv.secretInput(option, in, i == 0)
			if err != nil {
				return err
			}
			if raw == "" {
				continue // no rotation under way
			}
			// Checked here, so a bad key fails before anything is sent.
			if _, err := fetch.ParseWebhookKey(raw); err != nil {
				return fmt.Errorf("fetch: %s: input %q: %w", option, in, err)
			}
			s.Keys = append(s.Keys, raw)
		}
		req.Sign = &fetch.Signing{StandardWebhooks: s}
	}
	return nil
}

// attemptTimeout is the per-attempt timeout of req under the
// destination's limit.
func attemptTimeout(req *fetch.Request, limit time.Duration) time.Duration {
	if req.Timeout > 0 && req.Timeout < limit {
		return req.Timeout
	}
	return limit
}

// secretInput returns the rendered string value of the input named key,
// remembering it as a secret. option names the fetch option, for errors.
func (inv *invocation) secretInput(option, key string, required bool) (string, error) {
	for i, in := range inv.ins {
		if in.key != key || i >= len(inv.inputVals) {
			continue
		}
		v := inv.inputVals[i]
		if !v.IsNull() && v.Kind() != vm.KindString {
			return "", fmt.Errorf("fetch: %s: input %q is a %s, not a string", option, key, v.Kind())
		}
		s := strings.TrimSpace(v.AsString())
		if s == "" {
			if required {
				return "", fmt.Errorf("fetch: %s: input %q is empty", option, key)
			}
			return "", nil
		}
		inv.res.secrets = append(inv.res.secrets, s)
		return s, nil
	}
	return "", fmt.Errorf("fetch: %s: the destination has no input %q", option, key)
}

// webhookID is the Standard Webhooks message id of the invocation's n-th
// fetch. It depends only on the destination, the event and n, so a
// delivery retried later (a new invocation of the same event) sends the
// same id and receivers can deduplicate it; the timestamp and signature
// are made afresh on every attempt.
func (inv *invocation) webhookID(n int) string {
	h := sha256.New()
	h.Write([]byte(inv.d.name))
	h.Write([]byte{0})
	h.Write([]byte(inv.g.uuid))
	h.Write([]byte{0})
	for _, g := range inv.batch[min(1, len(inv.batch)):] {
		// A batch is named by all its events: a batch retried later
		// holds the same events, so it sends the same id.
		h.Write([]byte(g.uuid))
		h.Write([]byte{0})
	}
	h.Write([]byte(strconv.Itoa(n)))
	sum := h.Sum(nil)
	return "msg_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16]))
}
