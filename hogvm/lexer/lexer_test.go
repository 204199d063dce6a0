package lexer_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/lexer"
)

// summary renders tokens compactly: kind names with decoded values.
func summary(toks []lexer.Token) string {
	var parts []string
	for _, t := range toks {
		switch t.Kind {
		case lexer.Ident:
			q := ""
			if t.Quoted {
				q = "q"
			}
			parts = append(parts, fmt.Sprintf("id%s(%s)", q, t.Value))
		case lexer.Int:
			parts = append(parts, fmt.Sprintf("int(%d)", t.Int))
		case lexer.Float:
			parts = append(parts, fmt.Sprintf("float(%g)", t.Float))
		case lexer.String:
			parts = append(parts, fmt.Sprintf("str(%q)", t.Value))
		case lexer.TemplateText:
			parts = append(parts, fmt.Sprintf("text(%q)", t.Value))
		case lexer.EOF:
			parts = append(parts, "EOF")
		default:
			parts = append(parts, t.Kind.String())
		}
	}
	return strings.Join(parts, " ")
}

func TestTokenize(t *testing.T) {
	tests := []struct{ src, want string }{
		{"let x := 1", "id(let) id(x) ':=' int(1) EOF"},
		{"a.1.2", "id(a) '.' int(1) '.' int(2) EOF"},
		{"1.5 2. 1e3 1E-2 0x1f", "float(1.5) float(2) float(1000) float(0.01) int(31) EOF"},
		{"(.5)", "'(' float(0.5) ')' EOF"},
		{"x?.1", "id(x) '?.' int(1) EOF"},
		{"'it''s' 'a\\'b' 'tab\\t' 'nul\\0' '\\x41'", `str("it's") str("a'b") str("tab\t") str("nul") str("\\x41") EOF`},
		{"\"my key\" `back``tick` `a\\`b`", "idq(my key) idq(back`tick) idq(a`b) EOF"},
		{"a =~* b !~* c =~ d !~ e ~* f ~ g", "id(a) '=~*' id(b) '!~*' id(c) '=~' id(d) '!~' id(e) '~*' id(f) '~' id(g) EOF"},
		{"a == b = c != d <> e <= f >= g < h > i", "id(a) '==' id(b) '=' id(c) '!=' id(d) '!=' id(e) '<=' id(f) '>=' id(g) '<' id(h) '>' id(i) EOF"},
		{"a ?? b ?. c ? d : e -> f || g", "id(a) '??' id(b) '?.' id(c) '?' id(d) ':' id(e) '->' id(f) '||' id(g) EOF"},
		{"1 // comment\n2 -- other\n3 /* multi\nline */ 4", "int(1) int(2) int(3) int(4) EOF"},
		{"f'a{x}b'", "f' text(\"a\") '{' id(x) '}' text(\"b\") end of template string EOF"},
		{"f''", "f' end of template string EOF"},
		{"f'{ {'k': 1} }'", "f' '{' '{' str(\"k\") ':' int(1) '}' '}' end of template string EOF"},
		{"f'\\{x} ''q'''", "f' text(\"{x} 'q'\") end of template string EOF"},
		{"$var _x x1", "id($var) id(_x) id(x1) EOF"},
		// Integers beyond 64 bits become floats.
		{"99999999999999999999 0x10000000000000000", "float(1e+20) float(1.8446744073709552e+19) EOF"},
	}
	for _, tt := range tests {
		toks, err := lexer.Tokenize(tt.src, lexer.Options{})
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		if got := summary(toks); got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

func TestFullTemplate(t *testing.T) {
	toks, err := lexer.Tokenize(`Hi {name}, it's \{x} \n {'}'}`, lexer.Options{FullTemplate: true})
	if err != nil {
		t.Fatal(err)
	}
	want := `text("Hi ") '{' id(name) '}' text(", it's {x} \n ") '{' str("}") '}' EOF`
	if got := summary(toks); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Unknown escapes and escaped quotes stay as written in full templates.
	toks, err = lexer.Tokenize(`a\'b\qc\`, lexer.Options{FullTemplate: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(toks); got != `text("a\\'b\\qc\\") EOF` {
		t.Errorf("got %s", got)
	}
}

func TestPositions(t *testing.T) {
	toks, err := lexer.Tokenize("let é := 'ü'\n  x", lexer.Options{})
	if err == nil {
		t.Fatalf("non-ASCII identifier accepted: %v", summary(toks))
	}
	toks, err = lexer.Tokenize("let a := 'ü'\n  x", lexer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []lexer.Pos{{Line: 1, Column: 1, Offset: 0}, {Line: 1, Column: 5, Offset: 4}, {Line: 1, Column: 7, Offset: 6},
		{Line: 1, Column: 10, Offset: 9}, {Line: 2, Column: 3, Offset: 16}, {Line: 2, Column: 4, Offset: 17}}
	for i, w := range want {
		if toks[i].Pos != w {
			t.Errorf("token %d (%s): got %+v, want %+v", i, toks[i].Raw, toks[i].Pos, w)
		}
	}
}

// TestUnicodeWhitespace checks that every character PostHog's grammar treats
// as whitespace (Unicode White_Space and the byte-order mark) separates
// tokens, and that look-alikes outside that set are still errors.
func TestUnicodeWhitespace(t *testing.T) {
	spaces := []rune{0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
		0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF}
	for _, r := range spaces {
		src := fmt.Sprintf("let%cx := 1%c+%c2%c", r, r, r, r)
		toks, err := lexer.Tokenize(src, lexer.Options{})
		if err != nil {
			t.Errorf("U+%04X: %v", r, err)
			continue
		}
		if got, want := summary(toks), "id(let) id(x) ':=' int(1) '+' int(2) EOF"; got != want {
			t.Errorf("U+%04X: got %s, want %s", r, got, want)
		}
		// Inside strings it is text, as any other character.
		toks, err = lexer.Tokenize(fmt.Sprintf("'a%cb'", r), lexer.Options{})
		if err != nil || toks[0].Value != fmt.Sprintf("a%cb", r) {
			t.Errorf("U+%04X in a string: %v %v", r, err, summary(toks))
		}
	}
	// Columns count the space as one character.
	toks, err := lexer.Tokenize("a\u00a0\u3000b", lexer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p := toks[1].Pos; p.Column != 4 || p.Offset != 6 {
		t.Errorf("b at %+v, want column 4, offset 6", p)
	}
	// Zero-width space, Mongolian vowel separator and word joiner are not
	// White_Space in Unicode, nor in PostHog's grammar.
	for _, r := range []rune{0x200B, 0x180E, 0x2060} {
		if _, err := lexer.Tokenize(fmt.Sprintf("a%cb", r), lexer.Options{}); err == nil {
			t.Errorf("U+%04X accepted as whitespace", r)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		src          string
		line, column int
		msg          string
	}{
		{"a && b", 1, 3, "unexpected character '&'"},
		{"x\n !y", 2, 2, "use 'not'"},
		{"'abc", 1, 1, "unterminated string"},
		{"`abc", 1, 1, "unterminated quoted identifier"},
		{"f'abc", 1, 3, "unterminated template string"},
		{"/* x", 1, 1, "unterminated comment"},
		{"'\\q'", 1, 2, `invalid escape sequence '\q'`},
		{"a # b", 1, 3, "unexpected character '#'"},
		{strings.Repeat("{", 2000), 1, 1025, "nested too deeply"},
	}
	for _, tt := range tests {
		_, err := lexer.Tokenize(tt.src, lexer.Options{})
		var le *lexer.Error
		if !errors.As(err, &le) {
			t.Errorf("%q: got %v, want *lexer.Error", tt.src, err)
			continue
		}
		if le.Line != tt.line || le.Column != tt.column || !strings.Contains(le.Msg, tt.msg) {
			t.Errorf("%.30q: got %d:%d %q, want %d:%d containing %q", tt.src, le.Line, le.Column, le.Msg, tt.line, tt.column, tt.msg)
		}
	}
}
