package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// A session cookie is base64url(expiry || nonce) "." base64url(HMAC-SHA256).
// It holds no token, and verifying it needs no shared state.
type sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// sessionKey derives the cookie key from the admin token.
func sessionKey(adminToken string) []byte {
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte("hogwire console session v1"))
	return m.Sum(nil)
}

func (s *sessions) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(payload)
	return m.Sum(nil)
}

// issue returns a new session value and when it expires.
func (s *sessions) issue() (string, time.Time) {
	exp := s.now().Add(s.ttl)
	payload := make([]byte, 8+16)
	binary.BigEndian.PutUint64(payload, uint64(exp.Unix()))
	rand.Read(payload[8:])
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(s.sign(payload)), exp
}

// valid reports whether v is a session this key signed that has not expired.
func (s *sessions) valid(v string) bool {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(sig)
	if err1 != nil || err2 != nil || len(payload) != 24 {
		return false
	}
	if !hmac.Equal(mac, s.sign(payload)) {
		return false
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(payload)), 0)
	return s.now().Before(exp)
}

// sessionCookie names the cookie: with the __Host- prefix (bound to this
// host and path /, never sent without TLS) when served over TLS.
func sessionCookie(r *http.Request) string {
	if secure(r) {
		return "__Host-hogwire_session"
	}
	return "hogwire_session"
}

// secure reports whether the browser reached us over TLS, directly or
// through a proxy that says so.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (c *console) setCookie(w http.ResponseWriter, r *http.Request, value string, exp time.Time) {
	ck := &http.Cookie{
		Name: sessionCookie(r), Value: value, Path: "/", HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode,
	}
	if value == "" {
		ck.MaxAge = -1
	} else {
		ck.Expires = exp
	}
	http.SetCookie(w, ck)
}

// signIn checks the admin token posted as JSON {"token": "…"} and sets the
// session cookie.
func (c *console) signIn(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		writeJSONError(w, http.StatusBadRequest, "token", "send {\"token\": \"<admin token>\"} as JSON")
		return
	}
	tok := strings.TrimSpace(req.Token)
	if tok == "" {
		writeJSONError(w, http.StatusBadRequest, "token", "is required")
		return
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(c.adminToken)) != 1 {
		c.log.Warn("console sign-in refused", "remote", r.RemoteAddr)
		writeJSONError(w, http.StatusUnauthorized, "token", "is not the admin token")
		return
	}
	v, exp := c.sessions.issue()
	c.setCookie(w, r, v, exp)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"expires": exp.UTC().Format(time.RFC3339)})
}

func (c *console) signOut(w http.ResponseWriter, r *http.Request) {
	c.setCookie(w, r, "", time.Time{})
	w.WriteHeader(http.StatusNoContent)
}

// whoami says whether the request carries a valid session, so the app
// can choose between the sign-in form and the console. It answers 200
// either way: a missing session is not an error of the request.
func (c *console) whoami(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(sessionCookie(r))
	signedIn := err == nil && c.sessions.valid(ck.Value)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]bool{"signed_in": signedIn})
}

// writeJSONError writes an HTTP error with a JSON body naming the field.
func writeJSONError(w http.ResponseWriter, code int, field, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]string{"field": field, "message": field + ": " + msg},
	})
}
