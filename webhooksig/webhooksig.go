// Package webhooksig verifies the signatures vendors put on the webhooks
// they send: a plain HMAC of the body in a header, Stripe's
// Stripe-Signature, GitHub's X-Hub-Signature-256 and Standard Webhooks'
// webhook-signature (Svix, Resend, Clerk, …).
//
// Every check compares in constant time and accepts any one of several
// signatures a header may carry (vendors send several while a secret
// rotates). Errors say what was wrong without echoing the secret or the
// expected signature.
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Scheme is a way of signing webhooks.
type Scheme string

// The schemes.
const (
	// HMAC is a SHA-256 HMAC of the raw body with the secret, in a header
	// of the sender's choice, hex or base64, after an optional prefix.
	HMAC Scheme = "hmac"
	// Stripe is Stripe-Signature: t=<unix time>,v1=<hex HMAC of
	// "t.body">, within a tolerance of now.
	Stripe Scheme = "stripe"
	// GitHub is X-Hub-Signature-256: sha256=<hex HMAC of the body>.
	GitHub Scheme = "github"
	// StandardWebhooks is webhook-id, webhook-timestamp and
	// webhook-signature: "v1,<base64 HMAC of id.timestamp.body>" (several
	// separated by spaces), with a secret "whsec_<base64 key>".
	StandardWebhooks Scheme = "standard_webhooks"
)

// Schemes lists the schemes, for messages and validation.
func Schemes() []Scheme { return []Scheme{HMAC, Stripe, GitHub, StandardWebhooks} }

// Encoding is how an HMAC scheme's header writes the digest.
type Encoding string

// The encodings.
const (
	Hex    Encoding = "hex"
	Base64 Encoding = "base64"
)

// DefaultTolerance is how far a signed timestamp may be from now (Stripe's
// and Standard Webhooks' libraries' default).
const DefaultTolerance = 5 * time.Minute

// Spec says how a webhook is signed.
type Spec struct {
	Scheme Scheme
	// Secret is the signing secret: as given for HMAC, Stripe and GitHub;
	// "whsec_" and base64 for Standard Webhooks.
	Secret string
	// Header names the signature's header (HMAC only; default
	// "X-Signature").
	Header string
	// Encoding of the digest (HMAC only; default Hex).
	Encoding Encoding
	// Prefix before the digest, e.g. "sha256=" (HMAC only).
	Prefix string
	// Tolerance bounds the signed timestamp's distance from now (Stripe
	// and Standard Webhooks; zero: DefaultTolerance; negative: unchecked).
	Tolerance time.Duration
}

// DefaultHMACHeader is the HMAC scheme's header when Spec.Header is empty.
const DefaultHMACHeader = "X-Signature"

// ErrInvalid is the error of every signature that does not verify.
var ErrInvalid = errors.New("invalid webhook signature")

// invalid wraps ErrInvalid with the reason.
func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Check reports what is wrong with s itself, before any request: an
// unknown scheme or encoding, an empty secret, a Standard Webhooks secret
// that is not base64.
func (s Spec) Check() error {
	if s.Secret == "" {
		return errors.New("the signing secret is empty")
	}
	switch s.Scheme {
	case HMAC:
		if s.Encoding != "" && s.Encoding != Hex && s.Encoding != Base64 {
			return fmt.Errorf("unknown encoding %q: use hex or base64", s.Encoding)
		}
	case Stripe, GitHub:
	case StandardWebhooks:
		if _, err := standardKey(s.Secret); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown signature scheme %q: use %s", s.Scheme, schemeList())
	}
	return nil
}

func schemeList() string {
	var names []string
	for _, s := range Schemes() {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

// Verify checks the signature of a request with header values header
// (case-insensitive names, as http.Header.Get) and raw body, at time now.
// A signature that does not verify is an error wrapping ErrInvalid; a
// Spec that cannot verify anything is another error.
func Verify(s Spec, header func(name string) string, body []byte, now time.Time) error {
	if err := s.Check(); err != nil {
		return err
	}
	tol := s.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	switch s.Scheme {
	case HMAC:
		name := s.Header
		if name == "" {
			name = DefaultHMACHeader
		}
		return verifyHMAC(header(name), name, s.Prefix, s.Encoding, []byte(s.Secret), body)
	case GitHub:
		return verifyHMAC(header("X-Hub-Signature-256"), "X-Hub-Signature-256", "sha256=", Hex, []byte(s.Secret), body)
	case Stripe:
		return verifyStripe(header("Stripe-Signature"), []byte(s.Secret), body, now, tol)
	default: // StandardWebhooks, as Check allows no other
		return verifyStandard(header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"), s.Secret, body, now, tol)
	}
}

func sign(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// verifyHMAC checks a header holding prefix and the digest of body.
func verifyHMAC(value, name, prefix string, enc Encoding, key, body []byte) error {
	if value == "" {
		return invalid("the %s header is missing", name)
	}
	digest, ok := strings.CutPrefix(strings.TrimSpace(value), prefix)
	if !ok {
		return invalid("the %s header does not start with %q", name, prefix)
	}
	var (
		got []byte
		err error
	)
	if enc == Base64 {
		got, err = base64.StdEncoding.DecodeString(digest)
	} else {
		got, err = hex.DecodeString(digest)
	}
	if err != nil {
		return invalid("the %s header is not %s", name, cmpOr(enc, Hex))
	}
	if !hmac.Equal(got, sign(key, body)) {
		return invalid("the %s header does not match the body", name)
	}
	return nil
}

func cmpOr(e, def Encoding) Encoding {
	if e == "" {
		return def
	}
	return e
}

// verifyStripe checks Stripe-Signature: "t=…,v1=…[,v1=…][,v0=…]".
func verifyStripe(value string, key, body []byte, now time.Time, tol time.Duration) error {
	if value == "" {
		return invalid("the Stripe-Signature header is missing")
	}
	var (
		ts   string
		sigs [][]byte
	)
	for _, item := range strings.Split(value, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(item), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if ts == "" {
		return invalid("the Stripe-Signature header has no timestamp (t=)")
	}
	if len(sigs) == 0 {
		return invalid("the Stripe-Signature header has no v1 signature")
	}
	if err := checkTime(ts, now, tol); err != nil {
		return err
	}
	want := sign(key, []byte(ts), []byte{'.'}, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return invalid("no v1 signature of the Stripe-Signature header matches the body")
}

// checkTime checks a Unix timestamp in seconds against now.
func checkTime(ts string, now time.Time, tol time.Duration) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return invalid("the signed timestamp %q is not a Unix time", ts)
	}
	if tol < 0 {
		return nil
	}
	if d := now.Sub(time.Unix(sec, 0)); math.Abs(float64(d)) > float64(tol) {
		return invalid("the signed timestamp is %s away from now, beyond the tolerance of %s", d.Abs().Round(time.Second), tol)
	}
	return nil
}

// standardKey decodes a Standard Webhooks secret.
func standardKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, errors.New("a Standard Webhooks secret is \"whsec_\" and base64")
	}
	return key, nil
}

// verifyStandard checks Standard Webhooks' headers.
func verifyStandard(id, ts, value, secret string, body []byte, now time.Time, tol time.Duration) error {
	if id == "" || ts == "" || value == "" {
		return invalid("the webhook-id, webhook-timestamp and webhook-signature headers are required")
	}
	if err := checkTime(ts, now, tol); err != nil {
		return err
	}
	key, err := standardKey(secret)
	if err != nil {
		return err
	}
	want := sign(key, []byte(id), []byte{'.'}, []byte(ts), []byte{'.'}, body)
	for _, item := range strings.Fields(value) {
		version, sig, ok := strings.Cut(item, ",")
		if !ok || version != "v1" {
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(sig); err == nil && hmac.Equal(b, want) {
			return nil
		}
	}
	return invalid("no v1 signature of the webhook-signature header matches the body")
}
