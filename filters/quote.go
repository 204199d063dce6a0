package filters

import "strings"

// QuoteString returns s as a Hog string literal ('…') that evaluates to
// exactly s. Backslashes and quotes are escaped, common control
// characters get their escapes for readability, and every other byte is
// written as is. NUL stays raw because Hog's "\0" escape drops the
// character instead of producing it.
func QuoteString(s string) string { return quote(s, '\'') }

// QuoteIdent returns s as a backtick-quoted Hog identifier, so that a
// property key with any characters ("$browser", "a b", "it's") can be read
// as properties.`key`.
func QuoteIdent(s string) string { return quote(s, '`') }

func quote(s string, q byte) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(q)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case q:
			b.WriteByte('\\')
			b.WriteByte(q)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\v':
			b.WriteString(`\v`)
		case '\a':
			b.WriteString(`\a`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}
