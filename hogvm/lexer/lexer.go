package lexer

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Options changes how the source is read.
type Options struct {
	// FullTemplate reads the whole source as the text of a template
	// string: everything is literal text except {expr} placeholders, and
	// quotes need no escaping. PostHog uses this mode for destination
	// input values.
	FullTemplate bool
}

type mode int

const (
	modeCode mode = iota
	modeTemplate
	modeFullTemplate
)

// maxModeDepth bounds nested braces and templates so that hostile input
// cannot grow the mode stack without limit.
const maxModeDepth = 1024

type lexer struct {
	src    string
	off    int
	line   int
	col    int
	modes  []mode
	tokens []Token
}

// Tokenize splits src into tokens. The last token is always EOF. A lexical
// error is returned as *Error.
func Tokenize(src string, opts Options) ([]Token, error) {
	l := &lexer{src: src, line: 1, col: 1, modes: []mode{modeCode}}
	if opts.FullTemplate {
		l.modes[0] = modeFullTemplate
	}
	l.tokens = make([]Token, 0, len(src)/3+1)
	for {
		var err error
		switch l.modes[len(l.modes)-1] {
		case modeCode:
			err = l.code()
		case modeTemplate:
			err = l.template(false)
		case modeFullTemplate:
			err = l.template(true)
		}
		if err != nil {
			return nil, err
		}
		if n := len(l.tokens); n > 0 && l.tokens[n-1].Kind == EOF {
			return l.tokens, nil
		}
	}
}

func (l *lexer) pos() Pos { return Pos{Line: l.line, Column: l.col, Offset: l.off} }

func (l *lexer) errorf(p Pos, format string, args ...any) error {
	return &Error{Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)}
}

// advance moves n bytes forward, keeping line and column (in runes) current.
func (l *lexer) advance(n int) {
	for i := 0; i < n && l.off < len(l.src); i++ {
		c := l.src[l.off]
		l.off++
		switch {
		case c == '\n':
			l.line++
			l.col = 1
		case c&0xC0 != 0x80: // not a UTF-8 continuation byte
			l.col++
		}
	}
}

func (l *lexer) peekByte(i int) byte {
	if l.off+i < len(l.src) {
		return l.src[l.off+i]
	}
	return 0
}

func (l *lexer) emit(k Kind, start Pos) *Token {
	l.tokens = append(l.tokens, Token{Kind: k, Pos: start, Raw: l.src[start.Offset:l.off]})
	return &l.tokens[len(l.tokens)-1]
}

func (l *lexer) push(m mode) error {
	if len(l.modes) >= maxModeDepth {
		return l.errorf(l.pos(), "braces and template strings nested too deeply")
	}
	l.modes = append(l.modes, m)
	return nil
}

func (l *lexer) pop() {
	if len(l.modes) > 1 {
		l.modes = l.modes[:len(l.modes)-1]
	}
}

// spaceLen returns the length of the non-ASCII whitespace character that s
// starts with, or 0. PostHog's grammar separates tokens with every Unicode
// White_Space character and the byte-order mark, not only ASCII spaces: a
// no-break space pasted from a rich editor (PostHog's own Customer.io code
// has one) is whitespace, not an unexpected character.
func spaceLen(s string) int {
	r, n := utf8.DecodeRuneInString(s)
	switch {
	case r == 0x85, r == 0xA0, r == 0x1680, r >= 0x2000 && r <= 0x200A, r == 0x2028, r == 0x2029,
		r == 0x202F, r == 0x205F, r == 0x3000, r == 0xFEFF:
		return n
	}
	return 0
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// valueEnds reports whether the previous token can end an operand, in which
// case a following '.' is member access rather than the start of a number,
// and digits right after a '.' are a tuple index rather than a fraction.
func (l *lexer) prevKind() Kind {
	if n := len(l.tokens); n > 0 {
		return l.tokens[n-1].Kind
	}
	return EOF
}

func endsOperand(k Kind) bool {
	switch k {
	case Ident, Int, Float, String, TemplateEnd, RParen, RBracket, RBrace:
		return true
	}
	return false
}

// code lexes one token (or skips whitespace/comments) in code mode.
func (l *lexer) code() error {
	// skip whitespace and comments
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f':
			l.advance(1)
		case c >= 0x80 && spaceLen(l.src[l.off:]) > 0:
			l.advance(spaceLen(l.src[l.off:]))
		case (c == '/' && l.peekByte(1) == '/') || (c == '-' && l.peekByte(1) == '-'):
			i := strings.IndexAny(l.src[l.off:], "\r\n")
			if i < 0 {
				i = len(l.src) - l.off
			}
			l.advance(i)
		case c == '/' && l.peekByte(1) == '*':
			start := l.pos()
			i := strings.Index(l.src[l.off+2:], "*/")
			if i < 0 {
				return l.errorf(start, "unterminated comment: '/*' without '*/'")
			}
			l.advance(i + 4)
		default:
			goto token
		}
	}
token:
	start := l.pos()
	if l.off >= len(l.src) {
		l.emit(EOF, start)
		return nil
	}
	c := l.src[l.off]
	switch {
	case c == 'f' && l.peekByte(1) == '\'':
		l.advance(2)
		l.emit(TemplateStart, start)
		return l.push(modeTemplate)
	case isIdentStart(c):
		i := l.off + 1
		for i < len(l.src) && isIdentPart(l.src[i]) {
			i++
		}
		l.advance(i - l.off)
		t := l.emit(Ident, start)
		t.Value = t.Raw
		return nil
	case c == '`' || c == '"':
		s, err := l.quoted(c)
		if err != nil {
			return err
		}
		t := l.emit(Ident, start)
		t.Value = s
		t.Quoted = true
		return nil
	case c == '\'':
		s, err := l.quoted(c)
		if err != nil {
			return err
		}
		l.emit(String, start).Value = s
		return nil
	case isDigit(c) || (c == '.' && isDigit(l.peekByte(1)) && !endsOperand(l.prevKind())):
		return l.number(start)
	}
	k, n := operator(l.src[l.off:])
	if n == 0 {
		r := []rune(l.src[l.off:min(l.off+4, len(l.src))])
		hint := ""
		switch c {
		case '!':
			hint = " (use 'not' for negation)"
		case '&':
			hint = " (use 'and')"
		case '|':
			hint = " (use 'or', or '||' to join strings)"
		}
		return l.errorf(start, "unexpected character %q%s", r[0], hint)
	}
	l.advance(n)
	l.emit(k, start)
	switch k {
	case LBrace:
		return l.push(modeCode)
	case RBrace:
		l.pop()
	}
	return nil
}

// operator matches the longest operator at the start of s.
func operator(s string) (Kind, int) {
	three := []struct {
		s string
		k Kind
	}{{"=~*", IRegexDouble}, {"!~*", NotIRegex}}
	for _, o := range three {
		if strings.HasPrefix(s, o.s) {
			return o.k, 3
		}
	}
	if len(s) >= 2 {
		switch s[:2] {
		case "->":
			return Arrow, 2
		case ":=":
			return Assign, 2
		case "||":
			return Concat, 2
		case "==":
			return EqDouble, 2
		case ">=":
			return GtEq, 2
		case "~*":
			return IRegexSingle, 2
		case "<=":
			return LtEq, 2
		case "!=", "<>":
			return NotEq, 2
		case "!~":
			return NotRegex, 2
		case "?.":
			return NullProperty, 2
		case "??":
			return Nullish, 2
		case "=~":
			return RegexDouble, 2
		}
	}
	switch s[0] {
	case '*':
		return Asterisk, 1
	case ':':
		return Colon, 1
	case ',':
		return Comma, 1
	case '-':
		return Dash, 1
	case '.':
		return Dot, 1
	case '=':
		return EqSingle, 1
	case '>':
		return Gt, 1
	case '{':
		return LBrace, 1
	case '[':
		return LBracket, 1
	case '(':
		return LParen, 1
	case '<':
		return Lt, 1
	case '%':
		return Percent, 1
	case '+':
		return Plus, 1
	case '?':
		return Query, 1
	case '~':
		return RegexSingle, 1
	case '}':
		return RBrace, 1
	case ']':
		return RBracket, 1
	case ')':
		return RParen, 1
	case ';':
		return Semicolon, 1
	case '/':
		return Slash, 1
	}
	return 0, 0
}

// number lexes an integer or float literal. Digits directly after a '.' that
// follows an operand are a tuple index (t.1.2), so no fraction is read then.
func (l *lexer) number(start Pos) error {
	s := l.src
	i := l.off
	if s[i] == '0' && i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && i+2 < len(s) && isHex(s[i+2]) {
		j := i + 2
		for j < len(s) && isHex(s[j]) {
			j++
		}
		l.advance(j - i)
		t := l.emit(Int, start)
		v, err := strconv.ParseUint(t.Raw[2:], 16, 64)
		if err != nil || v > math.MaxInt64 {
			// Beyond 64 bits, as a float: JavaScript VMs read every
			// number as a double anyway.
			f, _ := new(big.Float).SetString(t.Raw)
			t.Kind = Float
			t.Float, _ = f.Float64()
			return nil
		}
		t.Int = int64(v)
		return nil
	}
	afterDot := l.prevKind() == Dot || l.prevKind() == NullProperty
	isFloat := false
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if !afterDot {
		if j < len(s) && s[j] == '.' && !(j+1 < len(s) && s[j+1] == '.') {
			isFloat = true
			j++
			for j < len(s) && isDigit(s[j]) {
				j++
			}
		}
		if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
			k := j + 1
			if k < len(s) && (s[k] == '+' || s[k] == '-') {
				k++
			}
			if k < len(s) && isDigit(s[k]) {
				for k < len(s) && isDigit(s[k]) {
					k++
				}
				isFloat = true
				j = k
			}
		}
	}
	l.advance(j - i)
	if isFloat {
		t := l.emit(Float, start)
		v, err := strconv.ParseFloat(t.Raw, 64)
		if err != nil && !isRangeErr(err) {
			return l.errorf(start, "invalid number %s", t.Raw)
		}
		t.Float = v
		return nil
	}
	t := l.emit(Int, start)
	v, err := strconv.ParseInt(t.Raw, 10, 64)
	if err != nil {
		// Beyond 64 bits, as a float: JavaScript VMs read every number
		// as a double anyway.
		t.Kind = Float
		t.Float, _ = strconv.ParseFloat(t.Raw, 64)
		return nil
	}
	t.Int = v
	return nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// quoted reads a string or quoted identifier delimited by q. A doubled
// delimiter stands for itself.
func (l *lexer) quoted(q byte) (string, error) {
	start := l.pos()
	l.advance(1)
	var b strings.Builder
	for {
		if l.off >= len(l.src) {
			what := "string"
			if q != '\'' {
				what = "quoted identifier"
			}
			return "", l.errorf(start, "unterminated %s: missing closing %c", what, q)
		}
		c := l.src[l.off]
		switch {
		case c == q && l.peekByte(1) == q:
			b.WriteByte(q)
			l.advance(2)
		case c == q:
			l.advance(1)
			return b.String(), nil
		case c == '\\':
			if err := l.escape(&b, true, false); err != nil {
				return "", err
			}
		default:
			i := l.off + 1
			for i < len(l.src) && l.src[i] != q && l.src[i] != '\\' {
				i++
			}
			b.WriteString(l.src[l.off:i])
			l.advance(i - l.off)
		}
	}
}

// escape decodes one backslash escape at l.off into b. In a full template
// (strict=false) unknown escapes and escaped quotes stay as written, as
// PostHog leaves them there.
func (l *lexer) escape(b *strings.Builder, strict, brace bool) error {
	start := l.pos()
	if l.off+1 >= len(l.src) {
		if !strict {
			b.WriteByte('\\')
			l.advance(1)
			return nil
		}
		return l.errorf(start, "unterminated escape sequence at end of input")
	}
	c := l.src[l.off+1]
	n := 2
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'r':
		b.WriteByte('\r')
	case 'n':
		b.WriteByte('\n')
	case 't':
		b.WriteByte('\t')
	case '0':
		// PostHog's parsers drop NUL characters.
	case 'a':
		b.WriteByte('\a')
	case 'v':
		b.WriteByte('\v')
	case '\\':
		b.WriteByte('\\')
	case '{':
		if !brace {
			if strict {
				return l.errorf(start, "invalid escape sequence '\\{' (only valid in template strings)")
			}
			b.WriteString("\\{")
			break
		}
		b.WriteByte('{')
	case '\'', '"', '`':
		if !strict {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	case 'x':
		// PostHog's lexer accepts \xHH but its parser leaves the
		// sequence as written.
		if l.off+3 < len(l.src) && isHex(l.src[l.off+2]) && isHex(l.src[l.off+3]) {
			b.WriteString(l.src[l.off : l.off+4])
			n = 4
			break
		}
		fallthrough
	default:
		if !strict {
			b.WriteByte('\\')
			l.advance(1)
			return nil
		}
		return l.errorf(start, "invalid escape sequence '\\%c'", rune(c))
	}
	l.advance(n)
	return nil
}

// template lexes text inside f'…' (full=false) or a full template (full=true).
func (l *lexer) template(full bool) error {
	start := l.pos()
	var b strings.Builder
	text := false
	flush := func() {
		if text {
			l.emit(TemplateText, start).Value = b.String()
		}
	}
	for {
		if l.off >= len(l.src) {
			if !full {
				return l.errorf(start, "unterminated template string: missing closing '")
			}
			flush()
			l.emit(EOF, l.pos())
			return nil
		}
		c := l.src[l.off]
		switch {
		case c == '{':
			flush()
			p := l.pos()
			l.advance(1)
			l.emit(TemplateExpr, p)
			return l.push(modeCode)
		case c == '\'' && !full && l.peekByte(1) == '\'':
			b.WriteByte('\'')
			l.advance(2)
			text = true
		case c == '\'' && !full:
			flush()
			p := l.pos()
			l.advance(1)
			l.emit(TemplateEnd, p)
			l.pop()
			return nil
		case c == '\\':
			if err := l.escape(&b, !full, true); err != nil {
				return err
			}
			text = true
		default:
			i := l.off + 1
			for i < len(l.src) && l.src[i] != '{' && l.src[i] != '\'' && l.src[i] != '\\' {
				i++
			}
			b.WriteString(l.src[l.off:i])
			l.advance(i - l.off)
			text = true
		}
	}
}
