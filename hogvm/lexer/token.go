// Package lexer splits Hog source text into tokens.
//
// The token set and the lexical rules follow PostHog's HogQL lexer: keywords
// are case-insensitive words (the parser decides which words are keywords in
// which position, because most HogQL keywords may also be identifiers),
// single quotes delimit strings, double quotes and backticks delimit quoted
// identifiers, and f'…' template strings switch the lexer into a string mode
// in which {…} holds an embedded expression.
package lexer

import "fmt"

// Kind is the type of a token.
type Kind int

// Token kinds.
const (
	EOF    Kind = iota
	Ident       // identifier or keyword; Value holds the (unquoted) name
	Int         // integer literal; Int holds the value
	Float       // float literal; Float holds the value
	String      // 'string' literal; Value holds the decoded text

	// Template strings: TemplateStart, then any mix of TemplateText and
	// TemplateExpr … RBrace, then TemplateEnd. A full template (see
	// Options.FullTemplate) has no TemplateStart and ends at EOF.
	TemplateStart // f'
	TemplateText  // literal text inside a template; Value holds the decoded text
	TemplateExpr  // { opening an embedded expression
	TemplateEnd   // ' closing a template string

	Arrow        // ->
	Asterisk     // *
	Colon        // :
	Assign       // :=
	Comma        // ,
	Concat       // ||
	Dash         // -
	Dot          // .
	EqDouble     // ==
	EqSingle     // =
	GtEq         // >=
	Gt           // >
	IRegexSingle // ~*
	IRegexDouble // =~*
	LBrace       // {
	LBracket     // [
	LParen       // (
	LtEq         // <=
	Lt           // <
	NotEq        // != or <>
	NotIRegex    // !~*
	NotRegex     // !~
	NullProperty // ?.
	Nullish      // ??
	Percent      // %
	Plus         // +
	Query        // ?
	RegexSingle  // ~
	RegexDouble  // =~
	RBrace       // }
	RBracket     // ]
	RParen       // )
	Semicolon    // ;
	Slash        // /
)

var kindNames = [...]string{
	EOF: "end of input", Ident: "identifier", Int: "number", Float: "number", String: "string",
	TemplateStart: "f'", TemplateText: "template text", TemplateExpr: "'{'", TemplateEnd: "end of template string",
	Arrow: "'->'", Asterisk: "'*'", Colon: "':'", Assign: "':='", Comma: "','", Concat: "'||'",
	Dash: "'-'", Dot: "'.'", EqDouble: "'=='", EqSingle: "'='", GtEq: "'>='", Gt: "'>'",
	IRegexSingle: "'~*'", IRegexDouble: "'=~*'", LBrace: "'{'", LBracket: "'['", LParen: "'('",
	LtEq: "'<='", Lt: "'<'", NotEq: "'!='", NotIRegex: "'!~*'", NotRegex: "'!~'",
	NullProperty: "'?.'", Nullish: "'??'", Percent: "'%'", Plus: "'+'", Query: "'?'",
	RegexSingle: "'~'", RegexDouble: "'=~'", RBrace: "'}'", RBracket: "']'", RParen: "')'",
	Semicolon: "';'", Slash: "'/'",
}

// String describes the kind for error messages.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Pos is a position in the source: 1-based line and column (in runes) and
// the 0-based byte offset.
type Pos struct {
	Line, Column, Offset int
}

// Token is one lexical token.
type Token struct {
	Kind  Kind
	Pos   Pos
	Raw   string // the source text of the token
	Value string // decoded identifier name or string contents
	// Quoted reports an identifier written in double quotes or backticks;
	// such identifiers are never keywords.
	Quoted bool
	Int    int64
	Float  float64
}

// Describe renders the token for an error message ("got ...").
func (t Token) Describe() string {
	switch t.Kind {
	case EOF:
		return "end of input"
	case Ident, Int, Float:
		return "'" + t.Raw + "'"
	case String:
		return "string " + t.Raw
	case TemplateText:
		return "template text"
	}
	return t.Kind.String()
}

// Error is a lexical error at a position.
type Error struct {
	Line, Column int
	Msg          string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg)
}
