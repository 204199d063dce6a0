package bytecode

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// MarshalJSON encodes the program as PostHog stores it: ["_H", 1, …], or
// ["_h", …] for a legacy version-0 program.
// Floats keep a decimal point (1.0) so that they read back as floats, and
// strings are escaped as Python's json.dumps escapes them. Non-finite floats
// cannot be represented in JSON and are an error.
func (p *Program) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('[')
	err := p.each(func(i int, elem []byte) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.Write(elem)
	})
	if err != nil {
		return nil, err
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// Format writes the program in the text form of PostHog's .hoge files (as
// posthog/hogql/cli.py writes them): elements joined by ", ", a new line
// started before a line would pass 118 characters, and a trailing newline.
func Format(p *Program) []byte {
	const maxLen = 120 - 2
	var out bytes.Buffer
	line := []byte("[")
	n := len(p.Code) + len(p.header())
	// Format is used for reading and diffing; an element that JSON cannot
	// hold is written in Python's spelling (NaN, Infinity) rather than
	// failing.
	_ = p.eachLoose(func(i int, elem []byte) {
		if len(line)+len(elem) > maxLen {
			out.Write(line)
			out.WriteByte('\n')
			line = line[:0]
		}
		if len(line) > 1 {
			line = append(line, ' ')
		}
		line = append(line, elem...)
		if i == n-1 {
			line = append(line, ']')
		} else {
			line = append(line, ',')
		}
	})
	if len(line) == 1 && line[0] == '[' {
		out.WriteString("[]\n")
	} else if len(line) > 0 {
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func (p *Program) header() []any {
	if p.Version == 0 {
		return []any{"_h"}
	}
	return []any{"_H", int64(p.Version)}
}

// each calls f with every encoded element, the header included.
func (p *Program) each(f func(i int, elem []byte)) error {
	return p.walk(f, true)
}

func (p *Program) eachLoose(f func(i int, elem []byte)) error {
	return p.walk(f, false)
}

func (p *Program) walk(f func(i int, elem []byte), strict bool) error {
	var buf []byte
	i := 0
	for _, list := range [][]any{p.header(), p.Code} {
		for _, v := range list {
			var err error
			buf, err = appendElem(buf[:0], v, strict)
			if err != nil {
				return fmt.Errorf("bytecode element %d: %w", i, err)
			}
			f(i, buf)
			i++
		}
	}
	return nil
}

func appendElem(b []byte, v any, strict bool) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case Op:
		return strconv.AppendInt(b, int64(v), 10), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if strict {
				return b, fmt.Errorf("float %v has no JSON form", v)
			}
		}
		return AppendPythonFloat(b, v), nil
	case string:
		return AppendPythonString(b, v), nil
	}
	return b, fmt.Errorf("unsupported element type %T", v)
}

// AppendPythonFloat appends f as Python's repr() spells it: the shortest
// digits that round-trip, always with a '.' or an exponent (1.0, 1e-05,
// 1.5e+16), and NaN, Infinity, -Infinity as json.dumps writes them.
func AppendPythonFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(b, "-0.0"...)
		}
		return append(b, "0.0"...)
	}
	// Shortest round-trip digits in scientific form: d.ddde±XX.
	sci := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp := sci, 0
	if i := bytes.IndexByte([]byte(sci), 'e'); i >= 0 {
		mant = sci[:i]
		exp, _ = strconv.Atoi(sci[i+1:])
	}
	if exp < -4 || exp >= 16 {
		b = append(b, mant...)
		b = append(b, 'e')
		if exp < 0 {
			b = append(b, '-')
			exp = -exp
		} else {
			b = append(b, '+')
		}
		if exp < 10 {
			b = append(b, '0')
		}
		return strconv.AppendInt(b, int64(exp), 10)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	b = append(b, s...)
	if !bytes.ContainsRune([]byte(s), '.') {
		b = append(b, ".0"...)
	}
	return b
}

// AppendPythonString appends s as a JSON string the way Python's json.dumps
// writes it with its default ensure_ascii: every character outside
// printable ASCII is escaped as \uXXXX (UTF-16 surrogate pairs above
// U+FFFF). Invalid UTF-8 bytes become U+FFFD.
func AppendPythonString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				if c < 0x20 || c == 0x7f {
					b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				} else {
					b = append(b, c)
				}
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		appendU := func(r rune) {
			b = append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		}
		if r > 0xFFFF {
			r -= 0x10000
			appendU(0xD800 + (r>>10)&0x3FF)
			appendU(0xDC00 + r&0x3FF)
		} else {
			appendU(r)
		}
	}
	return append(b, '"')
}
