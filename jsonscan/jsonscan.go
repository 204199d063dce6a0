// Package jsonscan reads the literals of JSON text, strings and numbers,
// accepting and decoding exactly what encoding/json does, and writes string
// literals as JavaScript's JSON.stringify does. It serves the
// hand-written parsers that build their own values from JSON (capture's
// protobuf values, the Hog VM's values) without going through
// encoding/json's token stream.
package jsonscan

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// The errors of String and Number.
var (
	ErrEnd           = errors.New("unexpected end of input")
	ErrControl       = errors.New("control character in string")
	ErrEscape        = errors.New("invalid escape")
	ErrUnicodeEscape = errors.New(`invalid \u escape`)
	ErrNumber        = errors.New("invalid number")
	ErrSeparator     = errors.New("expected ',' or the closing bracket")
)

// Space returns the index of the first byte at or after i that is not
// JSON whitespace.
func Space(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// AfterElement reads what follows an array element or object member at
// d[i]: whitespace, then a comma and the whitespace after it, or the
// closing bracket, which closed reports. next is the index after what was
// read or, on error, of the offending byte.
func AfterElement(d []byte, i int, closing byte) (next int, closed bool, err error) {
	i = Space(d, i)
	if i >= len(d) {
		return i, false, ErrEnd
	}
	switch d[i] {
	case ',':
		return Space(d, i+1), false, nil
	case closing:
		return i + 1, true, nil
	}
	return i, false, ErrSeparator
}

// String decodes a string literal whose contents start at d[i], just after
// the opening quote. It returns the contents and the index after the
// closing quote. The contents are a subslice of d when they hold no escape
// and only ASCII; otherwise they are decoded onto buf, invalid UTF-8 and
// unpaired surrogates becoming U+FFFD as encoding/json does. On error,
// next is the index of the offending byte.
func String(d []byte, i int, buf []byte) (s []byte, next int, err error) {
	start := i
	for ; i < len(d); i++ {
		c := d[i]
		if c == '"' {
			return d[start:i], i + 1, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	buf = append(buf, d[start:i]...)
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			return buf, i + 1, nil
		case c < 0x20:
			return nil, i, ErrControl
		case c == '\\':
			if i+1 >= len(d) {
				return nil, i, ErrEnd
			}
			switch e := d[i+1]; e {
			case '"', '\\', '/':
				buf, i = append(buf, e), i+2
			case 'b':
				buf, i = append(buf, '\b'), i+2
			case 'f':
				buf, i = append(buf, '\f'), i+2
			case 'n':
				buf, i = append(buf, '\n'), i+2
			case 'r':
				buf, i = append(buf, '\r'), i+2
			case 't':
				buf, i = append(buf, '\t'), i+2
			case 'u':
				r, ok := hex4(d, i+2)
				if !ok {
					return nil, i, ErrUnicodeEscape
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A pair is decoded together; a lone half is U+FFFD
					// and what follows it is read on its own.
					r2, ok := rune(-1), false
					if i+1 < len(d) && d[i] == '\\' && d[i+1] == 'u' {
						r2, ok = hex4(d, i+2)
					}
					if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return nil, i, ErrEscape
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			buf = utf8.AppendRune(buf, r) // RuneError for an invalid byte
			i += size
		}
	}
	return nil, i, ErrEnd
}

// Number scans the number literal at d[i] and returns the index after it.
// On error, next is the index where the grammar broke.
func Number(d []byte, i int) (next int, err error) {
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i)
	default:
		return i, ErrNumber
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return i, ErrNumber
		}
		i = digits(d, i)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return i, ErrNumber
		}
		i = digits(d, i)
	}
	return i, nil
}

func digits(d []byte, i int) int {
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	return i
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// hex4 reads the four hex digits of a \u escape at d[i].
func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
