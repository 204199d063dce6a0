package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// apiError is an error response in PostHog's shape.
type apiError struct {
	status   int
	Type     string      `json:"type"`
	Code     string      `json:"code"`
	Detail   string      `json:"detail"`
	Attr     *string     `json:"attr"`
	Rejected []Rejection `json:"rejected,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Detail }

func validationError(code, detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, Type: "validation_error", Code: code, Detail: detail}
}

func tooLarge(detail string) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, Type: "validation_error", Code: "payload_too_large", Detail: detail}
}

// envelope is what a request says besides its JSON payload.
type envelope struct {
	payload []byte
	// token and sentAt come from form fields, when the body is a form.
	token, sentAt string
}

// readPayload returns the JSON text of a request, undoing the encodings
// SDKs use: Content-Encoding gzip, form bodies, base64 and gzip-js.
func (h *handler) readPayload(w http.ResponseWriter, r *http.Request) (envelope, *apiError) {
	var env envelope
	limit := h.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return env, tooLarge(fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, limit))
	}
	query := r.URL.Query()
	raw, err := readBody(w, r, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return env, tooLarge(fmt.Sprintf("request body exceeds the limit of %d bytes", limit))
		}
		return env, validationError("invalid_payload", "cannot read the request body: "+err.Error())
	}

	fromText, inflated := false, false
	if len(raw) == 0 {
		if d := query.Get("data"); d != "" {
			raw, fromText = []byte(d), true
		}
	} else {
		switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
		case "", "identity":
		case "gzip", "x-gzip":
			var aerr *apiError
			if raw, aerr = h.gunzip(raw); aerr != nil {
				return env, aerr
			}
			inflated = true
		default:
			return env, validationError("unsupported_compression", "Content-Encoding "+enc+" is not supported; use gzip")
		}
	}
	compression := strings.ToLower(query.Get("compression"))

	if !fromText && isForm(r.Header.Get("Content-Type"), raw) {
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			return env, validationError("invalid_payload", "malformed form body: "+err.Error())
		}
		raw, fromText = []byte(form.Get("data")), true
		if c := form.Get("compression"); c != "" {
			compression = strings.ToLower(c)
		}
		env.token = firstNonEmpty(form.Get("api_key"), form.Get("token"))
		env.sentAt = form.Get("sent_at")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return env, validationError("no_data", "No data found. Make sure to use a POST request when sending the payload in the body of the request.")
	}

	// Other unknown compression values are ignored, as PostHog does: the
	// bytes say what they are.
	if compression == "lz64" || compression == "lz-string" {
		return env, validationError("unsupported_compression", "lz64 compression is not supported; use gzip-js or base64")
	}
	if looksBase64(raw) {
		// Form and query decoding turned base64's '+' into spaces.
		decoded, err := decodeBase64(bytes.ReplaceAll(raw, []byte{' '}, []byte{'+'}))
		if err != nil {
			return env, validationError("invalid_payload", "data is neither JSON nor valid base64")
		}
		raw = decoded
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		var aerr *apiError
		if raw, aerr = h.gunzip(raw); aerr != nil {
			return env, aerr
		}
	} else if (compression == "gzip" || compression == "gzip-js") && !inflated {
		return env, validationError("invalid_payload", "compression="+compression+" but the body is not gzip data")
	}
	env.payload = raw
	return env, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// readBody reads at most limit bytes of the body; more is a
// *http.MaxBytesError.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	defer body.Close()
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

// isForm says whether a body is application/x-www-form-urlencoded, by its
// Content-Type or, as some SDKs omit it, by starting like posthog-js's form.
func isForm(contentType string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == "application/x-www-form-urlencoded" {
		// Some clients label JSON as a form; JSON never starts a form.
		t := bytes.TrimSpace(body)
		return len(t) == 0 || (t[0] != '{' && t[0] != '[')
	}
	return bytes.HasPrefix(body, []byte("data=")) || bytes.HasPrefix(body, []byte("ver="))
}

// looksBase64 says whether text is base64 rather than JSON: JSON payloads
// start with '{' or '[', which base64 never contains.
func looksBase64(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] == '{' || b[0] == '[' {
		return false
	}
	b = bytes.TrimRight(b, "=")
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '+', c == '/', c == '-', c == '_', c == ' ', c == '\n', c == '\r':
		default:
			return false
		}
	}
	return len(b) > 0
}

// decodeBase64 accepts the standard and URL alphabets, padded or not.
func decodeBase64(b []byte) ([]byte, error) {
	s := strings.Map(func(r rune) rune {
		switch r {
		case '\n', '\r':
			return -1
		case '-':
			return '+'
		case '_':
			return '/'
		}
		return r
	}, string(b))
	s = strings.TrimRight(s, "=")
	return base64.RawStdEncoding.DecodeString(s)
}

// gunzip inflates data, refusing to produce more than
// MaxDecompressedBytes: a gzip bomb costs at most that much memory and
// time.
func (h *handler) gunzip(data []byte) ([]byte, *apiError) {
	limit := h.cfg.MaxDecompressedBytes
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, validationError("invalid_payload", "invalid gzip data: "+err.Error())
	}
	defer zr.Close()
	var buf bytes.Buffer
	buf.Grow(int(min(int64(len(data))*8, limit) + bytes.MinRead))
	n, err := buf.ReadFrom(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, validationError("invalid_payload", "invalid gzip data: "+err.Error())
	}
	if n > limit {
		return nil, tooLarge(fmt.Sprintf("decompressed body exceeds the limit of %d bytes", limit))
	}
	return buf.Bytes(), nil
}
