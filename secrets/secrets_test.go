package secrets_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/secrets"
)

func rawKey(b byte) []byte { return bytes.Repeat([]byte{b}, secrets.KeySize) }

func mustKeyring(t *testing.T, primary []byte, older ...[]byte) *secrets.Keyring {
	t.Helper()
	kr, err := secrets.NewKeyring(primary, older...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

var aad = []byte("projects/p/destinations/d\x00inputs\x00webhook_url")

func TestRoundTrip(t *testing.T) {
	kr := mustKeyring(t, rawKey(1))
	for _, plain := range [][]byte{nil, []byte("https://hooks.slack.com/services/T/B/x"), bytes.Repeat([]byte{0, 255}, 5000)} {
		s, err := kr.Seal(plain, aad)
		if err != nil {
			t.Fatal(err)
		}
		want := "hwenc:v1:" + secrets.KeyID(rawKey(1)) + ":"
		if !strings.HasPrefix(s, want) {
			t.Fatalf("sealed %q does not start with %q", s, want)
		}
		if !secrets.IsSealed(s) {
			t.Errorf("IsSealed(%q) = false", s)
		}
		if len(plain) > 0 && strings.Contains(s, string(plain)) {
			t.Errorf("sealed value contains the plaintext")
		}
		got, err := kr.Open(s, aad)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("Open = %q, want %q", got, plain)
		}
		if kr.NeedsRotation(s) {
			t.Error("NeedsRotation is true for a value sealed with the primary key")
		}
	}
}

func TestNoncesDiffer(t *testing.T) {
	kr := mustKeyring(t, rawKey(1))
	a, _ := kr.Seal([]byte("same"), aad)
	b, _ := kr.Seal([]byte("same"), aad)
	if a == b {
		t.Error("two seals of the same plaintext are identical: nonces are not random")
	}
}

func TestWrongKey(t *testing.T) {
	s, _ := mustKeyring(t, rawKey(1)).Seal([]byte("x"), aad)
	_, err := mustKeyring(t, rawKey(2)).Open(s, aad)
	if !errors.Is(err, secrets.ErrNoKey) {
		t.Fatalf("Open with another key: err = %v, want ErrNoKey", err)
	}
}

func TestTampering(t *testing.T) {
	kr := mustKeyring(t, rawKey(1))
	s, _ := kr.Seal([]byte("a secret value"), aad)
	i := strings.LastIndex(s, ":") + 1
	data, _ := base64.RawURLEncoding.DecodeString(s[i:])
	for pos := range data {
		d := bytes.Clone(data)
		d[pos] ^= 0x01
		bad := s[:i] + base64.RawURLEncoding.EncodeToString(d)
		if _, err := kr.Open(bad, aad); !errors.Is(err, secrets.ErrCorrupt) {
			t.Fatalf("flipping byte %d: err = %v, want ErrCorrupt", pos, err)
		}
	}
	for _, bad := range []string{
		"", "plaintext", "hwenc:v1:", "hwenc:v1:" + kr.PrimaryKeyID(), "hwenc:v1:" + kr.PrimaryKeyID() + ":",
		"hwenc:v1:" + kr.PrimaryKeyID() + ":!!!", "hwenc:v1:" + kr.PrimaryKeyID() + ":AAAA",
		s[:len(s)-4], "hwenc:v2" + s[len("hwenc:v1"):],
	} {
		if _, err := kr.Open(bad, aad); !errors.Is(err, secrets.ErrCorrupt) {
			t.Errorf("Open(%q): err = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestAADMismatch(t *testing.T) {
	kr := mustKeyring(t, rawKey(1))
	s, _ := kr.Seal([]byte("x"), []byte("projects/p/destinations/a\x00inputs\x00token"))
	for _, other := range [][]byte{nil, []byte("projects/p/destinations/b\x00inputs\x00token"), []byte("projects/p/destinations/a\x00inputs\x00url")} {
		if _, err := kr.Open(s, other); !errors.Is(err, secrets.ErrCorrupt) {
			t.Errorf("Open with aad %q: err = %v, want ErrCorrupt", other, err)
		}
	}
}

func TestRotation(t *testing.T) {
	oldKR := mustKeyring(t, rawKey(1))
	old, _ := oldKR.Seal([]byte("v"), aad)

	kr := mustKeyring(t, rawKey(2), rawKey(1))
	got, err := kr.Open(old, aad)
	if err != nil || string(got) != "v" {
		t.Fatalf("older key: Open = %q, %v", got, err)
	}
	if !kr.NeedsRotation(old) {
		t.Error("NeedsRotation(value sealed with an older key) = false")
	}
	rotated, err := kr.Rotate(old, aad)
	if err != nil {
		t.Fatal(err)
	}
	if kr.NeedsRotation(rotated) {
		t.Error("NeedsRotation(rotated value) = true")
	}
	if !strings.Contains(rotated, kr.PrimaryKeyID()) {
		t.Errorf("rotated value %q is not sealed with the primary key %s", rotated, kr.PrimaryKeyID())
	}
	if got, err := kr.Open(rotated, aad); err != nil || string(got) != "v" {
		t.Fatalf("rotated: Open = %q, %v", got, err)
	}
	// The value sealed with the new key is beyond the old keyring.
	if _, err := oldKR.Open(rotated, aad); !errors.Is(err, secrets.ErrNoKey) {
		t.Errorf("old keyring opening a rotated value: err = %v, want ErrNoKey", err)
	}
	if same, err := kr.Rotate(rotated, aad); err != nil || same != rotated {
		t.Errorf("Rotate(already primary) = %q, %v; want it unchanged", same, err)
	}
	if _, err := kr.Rotate(old, []byte("elsewhere")); !errors.Is(err, secrets.ErrCorrupt) {
		t.Errorf("Rotate with the wrong aad: err = %v, want ErrCorrupt", err)
	}
	if kr.NeedsRotation("not sealed") {
		t.Error("NeedsRotation(plaintext) = true")
	}
}

func TestParseKey(t *testing.T) {
	raw := rawKey(7)
	for _, enc := range []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		"  " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		got, err := secrets.ParseKey(enc)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ParseKey(%q) = %x, %v", enc, got, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"not base64!", "not valid base64"},
		{base64.StdEncoding.EncodeToString(make([]byte, 16)), "decodes to 16 bytes, want 32"},
		{base64.StdEncoding.EncodeToString(make([]byte, 33)), "decodes to 33 bytes"},
	} {
		_, err := secrets.ParseKey(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKey(%q): err = %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}

func TestNewKeyringErrors(t *testing.T) {
	if _, err := secrets.NewKeyring(make([]byte, 31)); err == nil || !strings.Contains(err.Error(), "primary key") {
		t.Errorf("short primary: err = %v", err)
	}
	if _, err := secrets.NewKeyring(rawKey(1), rawKey(2), make([]byte, 5)); err == nil || !strings.Contains(err.Error(), "older key 2") {
		t.Errorf("short older key: err = %v", err)
	}
	good := base64.StdEncoding.EncodeToString(rawKey(1))
	if _, err := secrets.ParseKeyring(good, "???"); err == nil || !strings.Contains(err.Error(), "older key 1") {
		t.Errorf("bad older key: err = %v", err)
	}
	if _, err := secrets.ParseKeyring("", good); err == nil || !strings.Contains(err.Error(), "primary key") {
		t.Errorf("empty primary: err = %v", err)
	}
	// A repeated key is harmless.
	if _, err := secrets.NewKeyring(rawKey(1), rawKey(1), rawKey(2), rawKey(2)); err != nil {
		t.Errorf("repeated keys: %v", err)
	}
}

func TestReadKeyFile(t *testing.T) {
	k1, _ := secrets.GenerateKey()
	k2, _ := secrets.GenerateKey()
	if k1 == k2 {
		t.Fatal("GenerateKey returned the same key twice")
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("# current\n"+k1+"\n\n# previous\n  "+k2+"  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != k1 || keys[1] != k2 {
		t.Fatalf("ReadKeyFile = %q, want [%s %s]", keys, k1, k2)
	}
	kr, err := secrets.ParseKeyring(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	raw1, _ := secrets.ParseKey(k1)
	if kr.PrimaryKeyID() != secrets.KeyID(raw1) {
		t.Error("the first key of the file is not the primary")
	}

	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("# nothing\n\n"), 0o600)
	if _, err := secrets.ReadKeyFile(empty); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("empty file: err = %v", err)
	}
	if _, err := secrets.ReadKeyFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want os.ErrNotExist", err)
	}
}

func BenchmarkSealOpen(b *testing.B) {
	kr, _ := secrets.NewKeyring(rawKey(1))
	plain := []byte(`{"value":"https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"}`)
	b.ReportAllocs()
	for b.Loop() {
		s, err := kr.Seal(plain, aad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := kr.Open(s, aad); err != nil {
			b.Fatal(err)
		}
	}
}
