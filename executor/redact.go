package executor

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
)

// Redacted replaces secret values in redacted results.
const Redacted = "<redacted>"

// Redact replaces every occurrence of a sensitive value with Redacted in the
// error, the log messages, and the fetches' URLs, headers, bodies and
// errors. Sensitive values are, configured and rendered: every non-empty
// string of a secret input (every string leaf of a dictionary or json
// input); as in PostHog, every string of an input whose key looks like a
// credential (token, api_key, password, …); and in other inputs, the
// values under credential-like keys such as an Authorization header, with
// and without a "Bearer ", "Basic " or "Token " prefix. JSON-escaped forms
// are replaced too, so a secret inside a JSON body is caught. Redact is idempotent and
// returns r. Requests and responses are copied before they are changed, so
// a Fetcher that kept them sees the originals.
func (r *Result) Redact() *Result {
	if r.redacted {
		return r
	}
	r.redacted = true
	if !r.hasText() {
		return r
	}
	var rep *strings.Replacer
	if r.dest != nil {
		rep = r.dest.redactor(r.secrets)
	} else {
		rep = redactor(r.secrets)
	}
	if rep == nil {
		// No secret to replace, but credential headers are still hidden.
		var none *strings.Replacer
		for i := range r.Fetches {
			if f := &r.Fetches[i]; f.Request != nil && hasCredentialHeader(f.Request.Header) {
				if none == nil {
					none = strings.NewReplacer()
				}
				req := *f.Request
				req.Header = redactHeader(none, req.Header)
				req.Sign = nil
				f.Request = &req
			}
		}
		return r
	}
	r.Error = rep.Replace(r.Error)
	for i := range r.Logs {
		r.Logs[i].Message = rep.Replace(r.Logs[i].Message)
	}
	for i := range r.Fetches {
		f := &r.Fetches[i]
		if r.statusOnly {
			// The records are the invocation's own copies, of a method,
			// URL and status (see Options.FetchStatusOnly): changed in
			// place.
			if f.Request != nil {
				f.Request.URL = rep.Replace(f.Request.URL)
			}
		} else if f.Request != nil {
			req := *f.Request
			// The signing credentials go, with the rest of the secrets.
			req.Sign = nil
			req.URL = rep.Replace(req.URL)
			req.Header = redactHeader(rep, req.Header)
			if req.Body != nil {
				req.Body = []byte(rep.Replace(string(req.Body)))
			}
			f.Request = &req
		}
		if f.Response != nil && !r.statusOnly {
			resp := *f.Response
			resp.Header = redactHeader(rep, resp.Header)
			if resp.Body != nil {
				resp.Body = []byte(rep.Replace(string(resp.Body)))
			}
			f.Response = &resp
		}
		if f.Err != nil {
			if msg := rep.Replace(f.Err.Error()); msg != f.Err.Error() {
				f.Err = errors.New(msg)
			}
		}
	}
	return r
}

// hasText reports whether r holds any text a secret could be in.
func (r *Result) hasText() bool {
	if r.Error != "" || len(r.Logs) > 0 {
		return true
	}
	for _, f := range r.Fetches {
		if f.Request != nil || f.Err != nil || (f.Response != nil && (f.Response.Header != nil || f.Response.Body != nil)) {
			return true
		}
	}
	return false
}

// redactor returns the redactor of secrets, reusing the last one built
// for the destination: its secrets are the same from one invocation to
// the next unless a secret input's template renders differently.
func (d *Destination) redactor(secrets []string) *strings.Replacer {
	if len(secrets) == 0 {
		return nil
	}
	if c := d.redact.Load(); c != nil && slices.Equal(c.secrets, secrets) {
		return c.rep
	}
	c := &cachedRedactor{secrets: slices.Clone(secrets), rep: redactor(secrets)}
	d.redact.Store(c)
	return c.rep
}

type cachedRedactor struct {
	secrets []string
	rep     *strings.Replacer
}

func hasCredentialHeader(h http.Header) bool {
	for k := range h {
		if isCredentialKey(k) {
			return true
		}
	}
	return false
}

func redactHeader(rep *strings.Replacer, h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		rv := make([]string, len(vs))
		cred := isCredentialKey(k)
		for i, v := range vs {
			rv[i] = rep.Replace(v)
			if cred && rv[i] == v {
				// A credential the code derived from a secret (Basic
				// base64(key:secret), a signature) contains no secret
				// verbatim, yet is one: hide it, keeping its scheme.
				rv[i] = redactCredential(v)
			}
		}
		out[k] = rv
	}
	return out
}

// redactor returns a replacer of the secrets and their JSON-escaped forms,
// longest first so that a secret containing another is replaced whole.
func redactor(secrets []string) *strings.Replacer {
	if len(secrets) == 0 {
		return nil
	}
	var all []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		all = append(all, s, jsonEscape(s, true), jsonEscape(s, false))
	}
	slices.Sort(all)
	all = slices.Compact(all)
	slices.SortStableFunc(all, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(all))
	for _, s := range all {
		pairs = append(pairs, s, Redacted)
	}
	return strings.NewReplacer(pairs...)
}

// jsonEscape returns s as it appears inside a JSON string.
func jsonEscape(s string, html bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		return s
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// redactCredential hides a credential header's value, keeping a leading
// auth scheme ("Basic", "Bearer", "AWS4-HMAC-SHA256") so the log still
// says how the request authenticated.
func redactCredential(v string) string {
	if v == "" {
		return v
	}
	if scheme, _, ok := strings.Cut(v, " "); ok && isAuthScheme(scheme) {
		return scheme + " " + Redacted
	}
	return Redacted
}

// isAuthScheme reports whether s looks like an auth scheme: letters,
// digits and dashes.
func isAuthScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
