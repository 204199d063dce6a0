// Package lzstring decodes lz-string's compressToBase64 format, which
// older posthog-js versions send as compression=lz64.
//
// lz-string is an LZW variant over UTF-16 code units. Its output can grow
// quadratically with its input (every code may name a longer dictionary
// entry than the last), so the decoder takes a limit on what it produces
// and keeps dictionary entries as links to their prefixes, making its
// memory linear in the output it is allowed, never in what a hostile
// input could expand to.
package lzstring

import (
	"errors"
	"fmt"
	"unicode/utf16"
)

// ErrTooLarge is returned when the decoded text would exceed the limit.
var ErrTooLarge = errors.New("lzstring: decoded data exceeds the limit")

// ErrCorrupt is returned for input that is not lz-string data.
var ErrCorrupt = errors.New("lzstring: corrupt data")

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

var base64Value = func() (v [256]int8) {
	for i := range v {
		v[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		v[alphabet[i]] = int8(i)
	}
	// Form and query decoding turn '+' into a space.
	v[' '] = v['+']
	return v
}()

// bitReader reads the values of 6 bits that base64 characters carry, most
// significant bit first, as lz-string writes them.
type bitReader struct {
	src      []byte
	index    int // next character of src
	val      int // the character's value being read
	position int // the bit of val to read next
}

func (r *bitReader) next() error {
	if r.index >= len(r.src) {
		return fmt.Errorf("%w: it ends before its end marker", ErrCorrupt)
	}
	v := base64Value[r.src[r.index]]
	if v < 0 {
		return fmt.Errorf("%w: %q is not a base64 character", ErrCorrupt, r.src[r.index])
	}
	r.index++
	r.val, r.position = int(v), 32
	return nil
}

// bits reads n bits, least significant first.
func (r *bitReader) bits(n int) (int, error) {
	out := 0
	for i := 0; i < n; i++ {
		if r.position == 0 {
			if err := r.next(); err != nil {
				return 0, err
			}
		}
		if r.val&r.position != 0 {
			out |= 1 << i
		}
		r.position >>= 1
	}
	return out, nil
}

// entry is a dictionary entry: its prefix's code (-1 for none), its last
// code unit, its first code unit and its length.
type entry struct {
	prefix      int32
	last, first uint16
	n           int32
}

// DecompressFromBase64 decodes s, which compressToBase64 produced, into at
// most maxUnits UTF-16 code units, and returns them as a string (unpaired
// surrogates become U+FFFD).
func DecompressFromBase64(s string, maxUnits int) (string, error) {
	units, err := Decode([]byte(s), maxUnits, nil)
	if err != nil {
		return "", err
	}
	return string(utf16.Decode(units)), nil
}

// Decode decodes src into at most maxUnits UTF-16 code units. reserve,
// when not nil, is called with the bytes of every buffer before the
// decoder allocates it; its error stops the decoding and is returned.
func Decode(src []byte, maxUnits int, reserve func(bytes int64) error) ([]uint16, error) {
	if len(src) == 0 {
		return nil, nil
	}
	if reserve == nil {
		reserve = func(int64) error { return nil }
	}
	r := &bitReader{src: src}
	if err := r.next(); err != nil {
		return nil, err
	}
	const entrySize = 12
	// Codes 0, 1 and 2 are the literal markers and the end; entries start
	// at 3.
	if err := reserve(64 * entrySize); err != nil {
		return nil, err
	}
	dict := make([]entry, 3, 64)
	add := func(e entry) error {
		if len(dict) == cap(dict) {
			if err := reserve(int64(cap(dict)) * entrySize); err != nil {
				return err
			}
			dict = append(make([]entry, 0, 2*cap(dict)), dict...)
		}
		dict = append(dict, e)
		return nil
	}
	literal := func(width int) (int, error) {
		c, err := r.bits(width)
		if err != nil {
			return 0, err
		}
		if err := add(entry{prefix: -1, last: uint16(c), first: uint16(c), n: 1}); err != nil {
			return 0, err
		}
		return len(dict) - 1, nil
	}
	var out []uint16
	emit := func(code int) error {
		e := dict[code]
		if len(out)+int(e.n) > maxUnits {
			return ErrTooLarge
		}
		if need := len(out) + int(e.n); need > cap(out) {
			grown := min(max(2*cap(out), need, 256), maxUnits)
			if err := reserve(2 * int64(grown-cap(out))); err != nil {
				return err
			}
			out = append(make([]uint16, 0, grown), out...)
		}
		start := len(out)
		out = out[:start+int(e.n)]
		for i := start + int(e.n) - 1; ; i-- {
			out[i] = e.last
			if e.prefix < 0 {
				break
			}
			e = dict[e.prefix]
		}
		return nil
	}

	numBits, enlargeIn := 3, 4
	kind, err := r.bits(2)
	if err != nil {
		return nil, err
	}
	var w int
	switch kind {
	case 0:
		w, err = literal(8)
	case 1:
		w, err = literal(16)
	case 2:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: bad first code %d", ErrCorrupt, kind)
	}
	if err != nil {
		return nil, err
	}
	// The first literal takes dictionary slot 3, as the encoder's does,
	// without counting toward enlargeIn.
	if err := emit(w); err != nil {
		return nil, err
	}
	for {
		code, err := r.bits(numBits)
		if err != nil {
			return nil, err
		}
		switch code {
		case 0, 1:
			width := 8
			if code == 1 {
				width = 16
			}
			if code, err = literal(width); err != nil {
				return nil, err
			}
			if enlargeIn--; enlargeIn == 0 {
				enlargeIn, numBits = 1<<numBits, numBits+1
			}
		case 2:
			return out, nil
		}
		prev := dict[w]
		switch {
		case code < len(dict):
		case code == len(dict):
			// The entry being defined: w followed by w's first unit.
			if err := add(entry{prefix: int32(w), last: prev.first, first: prev.first, n: prev.n + 1}); err != nil {
				return nil, err
			}
			if err := emit(code); err != nil {
				return nil, err
			}
			w = code
			if enlargeIn--; enlargeIn == 0 {
				enlargeIn, numBits = 1<<numBits, numBits+1
			}
			continue
		default:
			return nil, fmt.Errorf("%w: code %d is not yet defined", ErrCorrupt, code)
		}
		if err := emit(code); err != nil {
			return nil, err
		}
		if err := add(entry{prefix: int32(w), last: dict[code].first, first: prev.first, n: prev.n + 1}); err != nil {
			return nil, err
		}
		w = code
		if enlargeIn--; enlargeIn == 0 {
			enlargeIn, numBits = 1<<numBits, numBits+1
		}
	}
}
