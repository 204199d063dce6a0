package store

import (
	"encoding/base64"
	"strings"
)

const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// PageSize clamps a requested page size.
func PageSize(n int32) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return int(n)
}

// EncodePageToken returns a page token: the base64 of the last key returned,
// relative to the listed prefix, with a kind tag so that a token of one list
// is refused by another.
func EncodePageToken(kind, lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "\x00" + lastKey))
}

// DecodePageToken returns the key to continue after, or ok=false when the
// token is malformed or belongs to another list.
func DecodePageToken(kind, tok string) (lastKey string, ok bool) {
	if tok == "" {
		return "", true
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", false
	}
	k, rest, found := strings.Cut(string(b), "\x00")
	if !found || k != kind {
		return "", false
	}
	return rest, true
}
