package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/dustin/go-humanize"

	"github.com/hogwire/hogwire/lzstring"
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

func unavailable(detail string) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, Type: "server_error", Code: "unavailable", Detail: detail}
}

// memoryError turns a refused reservation into the client's answer.
func (h *handler) memoryError(err error) *apiError {
	if errors.Is(err, errTooBig) {
		return tooLarge(fmt.Sprintf("the request needs more than the %s capture gives one request (three quarters of --capture-memory); send smaller batches",
			humanize.IBytes(uint64(h.mem.largeMax()))))
	}
	return unavailable("capture is at its memory limit; retry the request")
}

// envelope is what a request says besides its JSON payload.
type envelope struct {
	payload []byte
	// token and sentAt come from form fields, when the body is a form.
	token, sentAt string
}

// readPayload returns the JSON text of a request, undoing the encodings
// SDKs use: Content-Encoding gzip, form bodies, base64 and gzip-js. Every
// buffer is reserved from the request's lease before it is allocated, and
// given back when the next stage no longer needs it.
func (h *handler) readPayload(w http.ResponseWriter, r *http.Request, mem *lease) (envelope, *apiError) {
	var env envelope
	query := r.URL.Query()
	raw, aerr := h.readBody(w, r, mem)
	if aerr != nil {
		return env, aerr
	}

	fromText, inflated := false, false
	if len(raw) == 0 {
		if d := query.Get("data"); d != "" {
			if err := mem.take(int64(len(d))); err != nil {
				return env, h.memoryError(err)
			}
			raw, fromText = []byte(d), true
		}
	} else {
		switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
		case "", "identity":
		case "gzip", "x-gzip":
			if raw, aerr = h.gunzip(raw, mem); aerr != nil {
				return env, aerr
			}
			inflated = true
		default:
			return env, validationError("unsupported_compression", "Content-Encoding "+enc+" is not supported; use gzip")
		}
	}
	compression := strings.ToLower(query.Get("compression"))

	if !fromText && isForm(r.Header.Get("Content-Type"), raw) {
		// Parsing copies the body about twice over.
		if err := mem.take(2 * int64(len(raw))); err != nil {
			return env, h.memoryError(err)
		}
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			return env, validationError("invalid_payload", "malformed form body: "+err.Error())
		}
		mem.give(int64(cap(raw)))
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
		if raw, aerr = h.lzDecode(raw, mem); aerr != nil {
			return env, aerr
		}
	} else if looksBase64(raw) {
		if err := mem.take(int64(base64.StdEncoding.DecodedLen(len(raw)))); err != nil {
			return env, h.memoryError(err)
		}
		// Form and query decoding turned base64's '+' into spaces.
		decoded, err := decodeBase64(bytes.ReplaceAll(raw, []byte{' '}, []byte{'+'}))
		if err != nil {
			return env, validationError("invalid_payload", "data is neither JSON nor valid base64")
		}
		raw = decoded
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		if raw, aerr = h.gunzip(raw, mem); aerr != nil {
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

// firstRead is the buffer a body starts in; it grows only as bytes
// arrive, never to a size the client announces.
const firstRead = 16 << 10

// readBody reads at most MaxBodyBytes of the body. Each read must make
// progress within BodyReadTimeout: a client that stalls mid-body is cut
// off instead of holding its buffer until the whole-request timeout.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request, mem *lease) ([]byte, *apiError) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	limit := h.cfg.MaxBodyBytes
	rc := http.NewResponseController(w)
	// The server's own deadline for the whole request, which a read's
	// deadline must not extend: the headers were read just before.
	end := time.Now().Add(h.cfg.Server.ReadTimeout)
	buf, err := readLimited(r.Body, limit, r.ContentLength, mem, func() {
		// Not every ResponseWriter has deadlines (tests' recorders do not).
		d := time.Now().Add(h.cfg.Server.BodyReadTimeout)
		if d.After(end) {
			d = end
		}
		_ = rc.SetReadDeadline(d)
	})
	var (
		over    *overLimitError
		tooSlow interface{ Timeout() bool }
	)
	switch {
	case err == nil:
		// Back to the server's deadline, which it would have had all along.
		_ = rc.SetReadDeadline(end)
		return buf, nil
	case errors.As(err, &over):
		return nil, tooLarge(fmt.Sprintf("request body exceeds the limit of %s", humanize.IBytes(uint64(limit))))
	case errors.Is(err, errBusy), errors.Is(err, errTooBig):
		return nil, h.memoryError(err)
	case errors.As(err, &tooSlow) && tooSlow.Timeout():
		return nil, &apiError{status: http.StatusRequestTimeout, Type: "validation_error", Code: "request_timeout",
			Detail: fmt.Sprintf("the request body stalled for %s", h.cfg.Server.BodyReadTimeout)}
	default:
		return nil, validationError("invalid_payload", "cannot read the request body: "+err.Error())
	}
}

// overLimitError is input beyond a read's limit.
type overLimitError struct{}

func (*overLimitError) Error() string { return "input exceeds the limit" }

// readLimited reads r to its end into a buffer that grows as data
// arrives, reserving each growth from mem first. More than limit bytes is
// an *overLimitError. beforeRead, when set, runs before every read.
//
// hint is the size the input announces (negative: none). It only ever
// makes a growth smaller, never larger, so a client announcing much and
// sending little still costs only what it sent: the buffer stops at the
// announced size (and a byte for the read that finds the end) instead of
// doubling past it, and a one-event request no longer takes a buffer of
// firstRead. Input beyond the hint grows the buffer as without one.
func readLimited(r io.Reader, limit, hint int64, mem *lease, beforeRead func()) ([]byte, error) {
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, &overLimitError{}
			}
			// Grow to at most one byte past the limit, which is enough
			// to tell that the input is over it.
			grown := min(max(2*int64(cap(buf)), firstRead), limit+1)
			if hint >= int64(len(buf)) {
				grown = min(grown, hint+1)
			}
			// Both buffers exist while one is copied to the other.
			if err := mem.take(grown); err != nil {
				return nil, err
			}
			next := make([]byte, len(buf), grown)
			copy(next, buf)
			mem.give(int64(cap(buf)))
			buf = next
		}
		if beforeRead != nil {
			beforeRead()
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if int64(len(buf)) > limit {
				return nil, &overLimitError{}
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
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

// acceptedContentType says whether a body of this media type can be an
// event payload: what SDKs send (JSON, text/plain for gzip-js, forms,
// binary), or nothing at all. Anything else (multipart uploads, images)
// is refused before the body is read.
func acceptedContentType(contentType string) bool {
	if strings.TrimSpace(contentType) == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"), strings.HasSuffix(mt, "+json"):
		return true
	}
	switch mt {
	case "application/json", "application/x-www-form-urlencoded", "application/octet-stream",
		"application/gzip", "application/x-gzip", "application/javascript":
		return true
	}
	return false
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

// ratioFloor is how far any body may inflate whatever its ratio: small
// bodies of repetitive JSON compress very well.
const ratioFloor = 1 << 20

// inflateLimit is how large a body of n compressed bytes may inflate:
// MaxDecompressionRatio times its size (but at least ratioFloor), and
// never beyond MaxDecompressedBytes. It reports which of the two bound it.
func (h *handler) inflateLimit(n int) (limit int64, byRatio bool) {
	byRatioLimit := max(int64(n)*int64(h.cfg.MaxDecompressionRatio), ratioFloor)
	if byRatioLimit < h.cfg.MaxDecompressedBytes {
		return byRatioLimit, true
	}
	return h.cfg.MaxDecompressedBytes, false
}

// gunzip inflates data within inflateLimit, reserving the output as it
// grows: a gzip bomb costs at most that much memory and the time to
// produce it. The compressed input's reservation is given back.
// lzDecode decodes lz-string's base64 form (compression=lz64, sent by
// older posthog-js versions), within the decompression limits and the
// request's memory lease.
func (h *handler) lzDecode(data []byte, mem *lease) ([]byte, *apiError) {
	limit, byRatio := h.inflateLimit(len(data))
	var reserved int64
	reserve := func(n int64) error {
		if err := mem.take(n); err != nil {
			return err
		}
		reserved += n
		return nil
	}
	// A code unit becomes at most 3 bytes of UTF-8 (a pair of them 4).
	units, err := lzstring.Decode(data, int(limit/3), reserve)
	switch {
	case errors.Is(err, lzstring.ErrTooLarge) && byRatio:
		return nil, tooLarge(fmt.Sprintf("lz64 data inflates more than %d times its %d bytes; send less repetitive data or in smaller batches",
			h.cfg.MaxDecompressionRatio, len(data)))
	case errors.Is(err, lzstring.ErrTooLarge):
		return nil, tooLarge(fmt.Sprintf("decompressed body exceeds the limit of %s", humanize.IBytes(uint64(limit))))
	case errors.Is(err, errBusy), errors.Is(err, errTooBig):
		return nil, h.memoryError(err)
	case err != nil:
		return nil, validationError("invalid_payload", "invalid lz64 data: "+err.Error())
	}
	if err := reserve(7 * int64(len(units))); err != nil { // the runes and the text
		return nil, h.memoryError(err)
	}
	out := []byte(string(utf16.Decode(units)))
	mem.give(reserved - int64(len(out)) + int64(cap(data)))
	return out, nil
}

func (h *handler) gunzip(data []byte, mem *lease) ([]byte, *apiError) {
	inf, _ := h.inflaters.Get().(*inflater)
	if inf == nil {
		inf = &inflater{}
	}
	zr, err := inf.reset(data)
	if err != nil {
		return nil, validationError("invalid_payload", "invalid gzip data: "+err.Error())
	}
	defer h.inflaters.Put(inf)
	defer inf.release()
	limit, byRatio := h.inflateLimit(len(data))
	// A gzip stream ends with its size (modulo 4 GiB): right for the one
	// member SDKs send, and only a hint (see readLimited) for the rest.
	hint := int64(-1)
	if len(data) >= 4 {
		hint = int64(binary.LittleEndian.Uint32(data[len(data)-4:]))
	}
	out, err := readLimited(zr, limit, hint, mem, nil)
	var over *overLimitError
	switch {
	case errors.As(err, &over) && byRatio:
		return nil, tooLarge(fmt.Sprintf("gzip data inflates more than %d times its %d bytes; send less repetitive data or in smaller batches",
			h.cfg.MaxDecompressionRatio, len(data)))
	case errors.As(err, &over):
		return nil, tooLarge(fmt.Sprintf("decompressed body exceeds the limit of %s", humanize.IBytes(uint64(limit))))
	case errors.Is(err, errBusy), errors.Is(err, errTooBig):
		return nil, h.memoryError(err)
	case err != nil:
		return nil, validationError("invalid_payload", "invalid gzip data: "+err.Error())
	}
	mem.give(int64(cap(data)))
	return out, nil
}

// inflater is a gzip reader kept for the next request: a new one costs
// some 40 KiB of decompressor state, which Reset makes as new (nothing a
// request decompressed is visible to the next: its window starts empty).
type inflater struct {
	src bytes.Reader
	zr  *gzip.Reader
}

// reset readies the inflater to read data.
func (f *inflater) reset(data []byte) (*gzip.Reader, error) {
	f.src.Reset(data)
	if f.zr == nil {
		zr, err := gzip.NewReader(&f.src)
		if err != nil {
			return nil, err
		}
		f.zr = zr
		return zr, nil
	}
	if err := f.zr.Reset(&f.src); err != nil {
		return nil, err
	}
	return f.zr, nil
}

// release lets go of the request's compressed data, which the reader
// would otherwise keep while it waits in the pool.
func (f *inflater) release() {
	f.zr.Close()
	f.src.Reset(nil)
}
