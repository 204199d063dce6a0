package vm

import (
	"strings"
	"unsafe"
)

// Format renders v the way Hog's print() renders a value nested in a
// container: strings quoted and escaped, numbers in JavaScript form,
// containers recursively, cycles as null.
func Format(v Value) string {
	return string(appendValue(nil, v, nil, maxRender))
}

// FormatOutput renders v the way print() renders a top-level argument:
// strings raw, everything else as Format.
func FormatOutput(v Value) string {
	if v.k == KindString {
		return v.str()
	}
	return Format(v)
}

func AppendOutput(b []byte, v Value, limit int) []byte {
	if v.k == KindString {
		return append(b, v.str()...)
	}
	return appendValue(b, v, nil, limit)
}

func onPath(path []unsafe.Pointer, p unsafe.Pointer) bool {
	for _, q := range path {
		if q == p {
			return true
		}
	}
	return false
}

const maxPrintDepth = 512

// maxRender caps the text rendered for one value. Shared references print
// in full, so a small program can describe an exponentially large output;
// renderers stop here and callers report ErrSizeLimit.
const maxRender = 16 << 20

func appendValue(b []byte, v Value, path []unsafe.Pointer, limit int) []byte {
	if len(b) > limit {
		return b
	}
	switch v.k {
	case KindNull:
		return append(b, "null"...)
	case KindBool:
		if v.n != 0 {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case KindNumber:
		return appendNumber(b, v.num())
	case KindString:
		return appendQuoted(b, v.str())
	case KindDateTime:
		dt := (*DateTime)(v.p)
		b = append(b, "DateTime("...)
		n := len(b)
		b = appendNumber(b, dt.Seconds)
		if !strings.Contains(string(b[n:]), ".") {
			b = append(b, ".0"...)
		}
		b = append(b, ", "...)
		b = appendQuoted(b, dt.Zone)
		return append(b, ')')
	case KindDate:
		d := (*Date)(v.p)
		b = append(b, "Date("...)
		b = appendNumber(b, float64(d.Year))
		b = append(b, ", "...)
		b = appendNumber(b, float64(d.Month))
		b = append(b, ", "...)
		b = appendNumber(b, float64(d.Day))
		return append(b, ')')
	case KindError:
		e := (*ErrorValue)(v.p)
		b = append(b, e.Type...)
		b = append(b, '(')
		b = appendQuoted(b, e.Message)
		if e.Payload.Truthy() {
			b = append(b, ", "...)
			b = appendValue(b, e.Payload, append(path, v.p), limit)
		}
		return append(b, ')')
	case KindClosure:
		return appendCallable(b, v.closure().Callable)
	case KindCallable:
		return appendCallable(b, v.callable())
	}
	if onPath(path, v.p) || len(path) > maxPrintDepth {
		return append(b, "null"...)
	}
	path = append(path, v.p)
	switch v.k {
	case KindArray, KindTuple:
		elems := v.arr().Elems
		switch {
		case v.k == KindArray:
			b = append(b, '[')
		case len(elems) < 2:
			b = append(b, "tuple("...)
		default:
			b = append(b, '(')
		}
		for i, e := range elems {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendValue(b, e, path, limit)
		}
		if v.k == KindArray {
			return append(b, ']')
		}
		return append(b, ')')
	case KindDict:
		d := v.dict()
		b = append(b, '{')
		for i := range d.keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendValue(b, d.keys[i], path, limit)
			b = append(b, ": "...)
			b = appendValue(b, d.vals[i], path, limit)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

func appendCallable(b []byte, c *Callable) []byte {
	b = append(b, "fn<"...)
	b = appendIdentifier(b, c.Name)
	b = append(b, '(')
	b = appendNumber(b, float64(c.ArgCount))
	return append(b, ")>"...)
}

func escapeChar(c byte) string {
	switch c {
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	case '\r':
		return `\r`
	case '\n':
		return `\n`
	case '\t':
		return `\t`
	case 0:
		return `\0`
	case '\v':
		return `\v`
	case '\\':
		return `\\`
	}
	return ""
}

func appendQuoted(b []byte, s string) []byte {
	b = append(b, '\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\'' {
			b = append(b, `\'`...)
		} else if e := escapeChar(c); e != "" {
			b = append(b, e...)
		} else {
			b = append(b, c)
		}
	}
	return append(b, '\'')
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

func appendIdentifier(b []byte, s string) []byte {
	if isIdentifier(s) {
		return append(b, s...)
	}
	b = append(b, '`')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '`' {
			b = append(b, "``"...)
		} else if e := escapeChar(c); e != "" {
			b = append(b, e...)
		} else {
			b = append(b, c)
		}
	}
	return append(b, '`')
}
