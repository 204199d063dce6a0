// Package secrets encrypts secret destination inputs at rest with
// AES-256-GCM.
//
// A sealed value is a self-describing string:
//
//	hwenc:v1:<keyid>:<base64url(nonce ‖ ciphertext)>
//
// where keyid is a short hash of the key that sealed it. A Keyring holds
// one primary key, used for every new Seal, and any number of older keys
// that Open still accepts; that is how keys are rotated: add a new primary,
// keep the old one as an older key until NeedsRotation reports nothing left
// sealed with it.
//
// Every value is sealed with additional authenticated data (for a
// destination input, the destination's name and the input key), so a
// sealed value copied to another destination or input fails to open.
package secrets

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// prefix starts every sealed value; the version lets the format change
// without guessing.
const prefix = "hwenc:v1:"

var (
	// ErrNoKey reports a sealed value whose key is not in the keyring.
	ErrNoKey = errors.New("secrets: no key in the keyring matches the sealed value")
	// ErrCorrupt reports a value that is not a well-formed sealed value or
	// fails authentication: it was tampered with, or sealed with other
	// additional data (moved from another destination or input).
	ErrCorrupt = errors.New("secrets: sealed value is corrupt or does not belong here")
)

type key struct {
	id   string
	aead cipher.AEAD
}

// Keyring seals with its primary key and opens with any of its keys. It is
// safe for concurrent use.
type Keyring struct {
	primary key
	byID    map[string][]key
}

// NewKeyring returns a keyring that seals with primary and opens values
// sealed with primary or any of older. Every key must be KeySize bytes.
// Keys repeated in older are ignored.
func NewKeyring(primary []byte, older ...[]byte) (*Keyring, error) {
	p, err := newKey(primary)
	if err != nil {
		return nil, fmt.Errorf("primary key: %w", err)
	}
	kr := &Keyring{primary: p, byID: map[string][]key{p.id: {p}}}
	seen := map[string]bool{string(primary): true}
	for i, raw := range older {
		if seen[string(raw)] {
			continue
		}
		seen[string(raw)] = true
		k, err := newKey(raw)
		if err != nil {
			return nil, fmt.Errorf("older key %d: %w", i+1, err)
		}
		// Two keys can share an id only by a hash collision; Open then
		// tries both.
		kr.byID[k.id] = append(kr.byID[k.id], k)
	}
	return kr, nil
}

// ParseKeyring is NewKeyring for base64-encoded keys (see ParseKey).
func ParseKeyring(primary string, older ...string) (*Keyring, error) {
	p, err := ParseKey(primary)
	if err != nil {
		return nil, fmt.Errorf("primary key: %w", err)
	}
	olds := make([][]byte, 0, len(older))
	for i, s := range older {
		k, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("older key %d: %w", i+1, err)
		}
		olds = append(olds, k)
	}
	return NewKeyring(p, olds...)
}

func newKey(raw []byte) (key, error) {
	if len(raw) != KeySize {
		return key{}, fmt.Errorf("secrets: a key must be %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, fmt.Errorf("secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, fmt.Errorf("secrets: %w", err)
	}
	return key{id: KeyID(raw), aead: aead}, nil
}

// KeyID returns the id that sealed values carry for key: the first 8 bytes
// of a domain-separated SHA-256 of the key, in hex. It identifies the key
// without revealing anything useful about it.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("hogwire secrets key id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// ParseKey decodes a base64 key (standard or URL alphabet, padded or not,
// surrounding white space ignored) and checks that it is KeySize bytes.
func ParseKey(encoded string) ([]byte, error) {
	s := strings.TrimSpace(encoded)
	if s == "" {
		return nil, errors.New("secrets: the key is empty (want base64 of 32 random bytes, e.g. from `openssl rand -base64 32`)")
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("secrets: the key is not valid base64: %w", err)
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("secrets: the key decodes to %d bytes, want %d (base64 of 32 random bytes, e.g. from `openssl rand -base64 32`)", len(raw), KeySize)
	}
	return raw, nil
}

// ReadKeyFile reads base64 keys from a file, one a line; blank lines and
// lines starting with # are skipped. The first key is meant to be the
// primary and the rest older keys: ParseKeyring(keys[0], keys[1:]...).
// The keys are not decoded here.
func ReadKeyFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: reading key file: %w", err)
	}
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keys = append(keys, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("secrets: reading key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("secrets: key file %s holds no key", path)
	}
	return keys, nil
}

// GenerateKey returns a new random key, base64-encoded.
func GenerateKey() (string, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// PrimaryKeyID returns the id of the key new values are sealed with.
func (kr *Keyring) PrimaryKeyID() string { return kr.primary.id }

// Seal encrypts plaintext with the primary key and a fresh random nonce.
// The same aad must be given to Open.
func (kr *Keyring) Seal(plaintext, aad []byte) (string, error) {
	k := kr.primary
	buf := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("secrets: reading a nonce: %w", err)
	}
	buf = k.aead.Seal(buf, buf, plaintext, aad)
	return prefix + k.id + ":" + base64.RawURLEncoding.EncodeToString(buf), nil
}

// Open decrypts a value made by Seal with one of the keyring's keys. The
// error matches ErrNoKey when no key has the value's key id, and
// ErrCorrupt when the value is malformed, was altered, or aad differs.
func (kr *Keyring) Open(sealed string, aad []byte) ([]byte, error) {
	id, data, err := split(sealed)
	if err != nil {
		return nil, err
	}
	keys := kr.byID[id]
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w (key id %s)", ErrNoKey, id)
	}
	for _, k := range keys {
		ns := k.aead.NonceSize()
		if len(data) < ns+k.aead.Overhead() {
			return nil, fmt.Errorf("%w: too short", ErrCorrupt)
		}
		if plain, err := k.aead.Open(nil, data[:ns], data[ns:], aad); err == nil {
			return plain, nil
		}
	}
	return nil, fmt.Errorf("%w: authentication failed", ErrCorrupt)
}

// Rotate re-seals a value with the primary key. A value already sealed
// with the primary key is returned unchanged.
func (kr *Keyring) Rotate(sealed string, aad []byte) (string, error) {
	if !kr.NeedsRotation(sealed) {
		// Still check it opens, so Rotate never vouches for a bad value.
		if _, err := kr.Open(sealed, aad); err != nil {
			return "", err
		}
		return sealed, nil
	}
	plain, err := kr.Open(sealed, aad)
	if err != nil {
		return "", err
	}
	return kr.Seal(plain, aad)
}

// NeedsRotation reports whether s is a sealed value whose key is not the
// primary key (an older key, or one the keyring does not hold).
func (kr *Keyring) NeedsRotation(s string) bool {
	id, _, err := split(s)
	return err == nil && id != kr.primary.id
}

func split(s string) (id string, data []byte, err error) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", nil, fmt.Errorf("%w: not a sealed value (no %q prefix)", ErrCorrupt, prefix)
	}
	id, enc, ok := strings.Cut(rest, ":")
	if !ok || id == "" || enc == "" {
		return "", nil, fmt.Errorf("%w: missing key id or data", ErrCorrupt)
	}
	data, err = base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", nil, fmt.Errorf("%w: data is not base64url: %v", ErrCorrupt, err)
	}
	return id, data, nil
}
