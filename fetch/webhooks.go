package fetch

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Prefixes of Standard Webhooks keys: a symmetric secret (HMAC-SHA256,
// scheme v1) and an ed25519 signing key (scheme v1a).
const (
	WebhookSecretPrefix     = "whsec_"
	WebhookSigningKeyPrefix = "whsk_"
)

// WebhookKey is one Standard Webhooks key: an HMAC secret or an ed25519
// private key.
type WebhookKey struct {
	hmac []byte
	ed   ed25519.PrivateKey
}

// ParseWebhookKey reads a key as the Standard Webhooks specification
// writes it: "whsec_" and the base64 of an HMAC secret (or the base64 with
// no prefix, as many providers show it), or "whsk_" and the base64 of an
// ed25519 private key (its 32-byte seed or the 64-byte key).
func ParseWebhookKey(s string) (WebhookKey, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, WebhookSigningKeyPrefix); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return WebhookKey{}, errors.New("the ed25519 signing key (whsk_) is not valid base64")
		}
		switch len(b) {
		case ed25519.SeedSize:
			return WebhookKey{ed: ed25519.NewKeyFromSeed(b)}, nil
		case ed25519.PrivateKeySize:
			return WebhookKey{ed: ed25519.PrivateKey(b)}, nil
		}
		return WebhookKey{}, fmt.Errorf("the ed25519 signing key (whsk_) is %d bytes, want %d or %d", len(b), ed25519.SeedSize, ed25519.PrivateKeySize)
	}
	rest := strings.TrimPrefix(s, WebhookSecretPrefix)
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return WebhookKey{}, errors.New("the signing secret is not whsec_ followed by base64")
	}
	// The specification asks for 24 to 64 bytes; fewer is guessable.
	if len(b) < 16 {
		return WebhookKey{}, fmt.Errorf("the signing secret is %d bytes, want at least 16", len(b))
	}
	return WebhookKey{hmac: b}, nil
}

// PublicKey is the ed25519 public key receivers verify v1a signatures
// with, or nil for an HMAC secret.
func (k WebhookKey) PublicKey() ed25519.PublicKey {
	if k.ed == nil {
		return nil
	}
	return k.ed.Public().(ed25519.PublicKey)
}

// sign returns the key's signature of content, "v1,…" or "v1a,…".
func (k WebhookKey) sign(content []byte) string {
	if k.ed != nil {
		return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(k.ed, content))
	}
	m := hmac.New(sha256.New, k.hmac)
	m.Write(content)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// StandardWebhooks signs as the Standard Webhooks specification
// describes: webhook-id names the message and is the same on every attempt
// (receivers deduplicate with it), webhook-timestamp is the attempt's time
// in Unix seconds, and webhook-signature has one signature of
// "id.timestamp.body" per key, space-separated, so that during a rotation a
// receiver holding either the old or the new key accepts it.
type StandardWebhooks struct {
	ID string `json:"id"`
	// Keys are whsec_… secrets or whsk_… signing keys (see
	// [ParseWebhookKey]), the current one first.
	Keys []string `json:"keys"`
}

func (s *StandardWebhooks) sign(h http.Header, body []byte, now time.Time) error {
	if len(s.Keys) == 0 {
		return errors.New("standard webhooks: no signing key")
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	content := make([]byte, 0, len(s.ID)+len(ts)+len(body)+2)
	content = append(append(append(append(append(content, s.ID...), '.'), ts...), '.'), body...)
	sigs := make([]string, len(s.Keys))
	for i, raw := range s.Keys {
		k, err := ParseWebhookKey(raw)
		if err != nil {
			return fmt.Errorf("standard webhooks: key %d: %w", i+1, err)
		}
		sigs[i] = k.sign(content)
	}
	h.Set("Webhook-Id", s.ID)
	h.Set("Webhook-Timestamp", ts)
	h.Set("Webhook-Signature", strings.Join(sigs, " "))
	return nil
}
