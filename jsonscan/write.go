package jsonscan

import "unicode/utf8"

// jsonSafe marks the ASCII bytes that JSON.stringify copies unchanged.
var jsonSafe = func() (t [128]bool) {
	for c := 0x20; c < 128; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a JSON string literal the way JavaScript's
// JSON.stringify writes it: only quotes, backslashes and control
// characters are escaped (not HTML characters, nor U+2028 and U+2029, which
// encoding/json escapes), and invalid UTF-8 becomes U+FFFD.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	if utf8.ValidString(s) {
		// Copy runs of bytes that need no escaping in one go; valid
		// non-ASCII text is copied as is.
		start := 0
		for i := 0; i < len(s); i++ {
			if c := s[i]; c >= utf8.RuneSelf || jsonSafe[c] {
				continue
			}
			b = append(b, s[start:i]...)
			b = appendEscape(b, s[i])
			start = i + 1
		}
		b = append(b, s[start:]...)
		return append(b, '"')
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		b = appendEscape(b, c)
		i++
	}
	return append(b, '"')
}

// appendEscape writes one ASCII byte as JSON.stringify does.
func appendEscape(b []byte, c byte) []byte {
	const hex = "0123456789abcdef"
	switch c {
	case '"':
		return append(b, `\"`...)
	case '\\':
		return append(b, `\\`...)
	case '\b':
		return append(b, `\b`...)
	case '\f':
		return append(b, `\f`...)
	case '\n':
		return append(b, `\n`...)
	case '\r':
		return append(b, `\r`...)
	case '\t':
		return append(b, `\t`...)
	}
	if c < 0x20 {
		return append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
	}
	return append(b, c)
}
