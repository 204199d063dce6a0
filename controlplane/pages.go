package controlplane

import (
	"encoding/base64"
	"strings"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// pageSize clamps a requested page size.
func pageSize(n int32) int {
	switch {
	case n <= 0:
		return defaultPageSize
	case n > maxPageSize:
		return maxPageSize
	}
	return int(n)
}

// A page token is the base64 of the last key returned, relative to the
// listed prefix, with a kind tag so a token of one list is refused by another.
func encodePageToken(kind, lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "\x00" + lastKey))
}

// decodePageToken returns the key to continue after, or ok=false when the
// token is malformed or belongs to another list.
func decodePageToken(kind, tok string) (lastKey string, ok bool) {
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
