package lzstring_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	lz "github.com/daku10/go-lz-string"

	"github.com/hogwire/hogwire/lzstring"
)

// Text compressed by an independent implementation of lz-string decodes
// to itself.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{"ab", "abcdefghijklmnopqrstuvwxyz {}\":,", "héllo wörld ☃ 日本語 🙂"}
	cases := []string{"", "a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		`{"api_key":"phc_x","batch":[{"event":"$pageview","properties":{"$current_url":"https://example.com/"}}]}`}
	for range 300 {
		runes := []rune(alphabets[rng.IntN(len(alphabets))])
		var b strings.Builder
		for range rng.IntN(3000) {
			b.WriteRune(runes[rng.IntN(len(runes))])
		}
		cases = append(cases, b.String())
	}
	for _, want := range cases {
		enc, err := lz.CompressToBase64(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := lzstring.DecompressFromBase64(enc, 1<<20)
		if err != nil {
			t.Fatalf("decoding %q: %v", enc, err)
		}
		if got != want {
			t.Fatalf("decoded %q, want %q", got, want)
		}
		// Forms turn '+' into spaces.
		if got, err := lzstring.DecompressFromBase64(strings.ReplaceAll(enc, "+", " "), 1<<20); err != nil || got != want {
			t.Fatalf("with spaces for '+': %q, %v", got, err)
		}
	}
}

// The limit holds however much the input would expand to.
func TestLimit(t *testing.T) {
	enc, _ := lz.CompressToBase64(strings.Repeat("a", 20_000))
	if len(enc) > 2000 {
		t.Fatalf("expected a small encoding, got %d bytes", len(enc))
	}
	if _, err := lzstring.DecompressFromBase64(enc, 19_999); !errors.Is(err, lzstring.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if got, err := lzstring.DecompressFromBase64(enc, 20_000); err != nil || len(got) != 20_000 {
		t.Fatalf("at the limit: %d, %v", len(got), err)
	}
}

func TestCorrupt(t *testing.T) {
	enc, _ := lz.CompressToBase64(`{"event":"x","properties":{"a":1}}`)
	for _, bad := range []string{"!!!!", enc[:len(enc)/2], "////////////"} {
		if _, err := lzstring.DecompressFromBase64(bad, 1<<20); !errors.Is(err, lzstring.ErrCorrupt) {
			t.Errorf("%q: err = %v, want ErrCorrupt", bad, err)
		}
	}
}

func FuzzDecompress(f *testing.F) {
	enc, _ := lz.CompressToBase64(`{"event":"x","properties":{"a":1}}`)
	f.Add(enc)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := lzstring.DecompressFromBase64(s, 4096)
		if err == nil && len(out) > 3*4096 {
			t.Fatalf("%d bytes out of a 4096-unit limit", len(out))
		}
	})
}
