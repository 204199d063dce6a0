// Package parser turns Hog source text into the syntax tree of package ast.
//
// It accepts the language PostHog's HogQL grammar accepts for Hog programs
// (statements plus HogQL's column expressions), with the same operator
// precedence and the same trees; refparser_test.go checks this against
// PostHog's own parser. SQL queries, HogQLX tags and aliases (x as y) are not
// supported.
//
// Nesting is limited to MaxDepth levels so that no input can exhaust the
// stack. Where the grammar is ambiguous the parser tries one reading and
// falls back to another (a statement's {…} as a block or a dict, a lambda's
// {…} body as an expression or a block, a keyword as an operator or a
// name); every failed attempt is remembered, so parsing time stays at most
// quadratic in the input.
//
// Some consequences of PostHog's grammar surprise people and are kept for
// compatibility: f(a, x -> y) passes a single two-parameter lambda (write
// f(a, (x -> y))); a return followed by anything on the next line returns
// it; and keywords are ordinary names where no operator fits, so
// `x between 1` is three statements.
package parser

import (
	"fmt"
	"strings"

	"github.com/hogwire/hogwire/hogvm/ast"
	"github.com/hogwire/hogwire/hogvm/lexer"
)

// MaxDepth is the deepest nesting of expressions and statements accepted.
const MaxDepth = 512

// Error is a syntax error. Line and Column are 1-based.
type Error struct {
	Line, Column int
	Msg          string

	// tooDeep marks the nesting-limit error, which no speculative parse
	// may swallow.
	tooDeep bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("syntax error at line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// ParseProgram parses a whole Hog program.
func ParseProgram(src string) (*ast.Program, error) {
	p, err := newParser(src, lexer.Options{})
	if err != nil {
		return nil, err
	}
	var prog *ast.Program
	err = p.run(func() {
		prog = &ast.Program{At: p.at(p.tok())}
		for p.tok().Kind != lexer.EOF {
			if s := p.statement(); s != nil {
				prog.Stmts = append(prog.Stmts, s)
			}
		}
	})
	return prog, err
}

// ParseExpr parses a single expression, such as a filter.
func ParseExpr(src string) (ast.Expr, error) {
	p, err := newParser(src, lexer.Options{})
	if err != nil {
		return nil, err
	}
	var e ast.Expr
	err = p.run(func() {
		e = p.expr(0)
		if p.tok().Kind != lexer.EOF {
			p.failf(p.tok(), "expected end of expression, got %s", p.tok().Describe())
		}
	})
	return e, err
}

// ParseTemplate parses a template string such as "Hello {person.name}!":
// literal text with {expr} placeholders, where \{ is a literal brace. The
// result is the text alone, the single placeholder's expression (keeping
// its type), or a concat call of the pieces.
func ParseTemplate(src string) (ast.Expr, error) {
	p, err := newParser(src, lexer.Options{FullTemplate: true})
	if err != nil {
		return nil, err
	}
	var e ast.Expr
	err = p.run(func() {
		e = p.templatePieces(p.tok(), lexer.EOF)
	})
	return e, err
}

type parser struct {
	toks  []lexer.Token
	i     int
	depth int
	// failed remembers where a speculative parse failed, so that nested
	// speculative parses are not repeated exponentially often.
	failed map[specKey]*Error
	// furthest is the failed speculative parse that got furthest.
	furthest *Error
}

// specKind names what a speculative parse tried to read.
type specKind uint8

const (
	specLambdaExpr specKind = iota // a lambda's {…} body as a dict or placeholder
	specBlock                      // a statement's {…} as a block
	specOperator                   // a keyword operator and its right operand
	specPrefix                     // a keyword that starts an expression (not, case, interval, trim)
	specStatement                  // an if or for statement
)

type specKey struct {
	kind specKind
	at   int
}

// speculate runs f at the current token. If f fails, it rewinds and
// returns the error; the failure is remembered, so the same attempt at the
// same token fails at once the next time.
func (p *parser) speculate(kind specKind, f func()) *Error {
	key := specKey{kind, p.i}
	if err, ok := p.failed[key]; ok {
		return err
	}
	err := p.attempt(f)
	if err != nil {
		if p.failed == nil {
			p.failed = map[specKey]*Error{}
		}
		p.failed[key] = err
	}
	return err
}

type bailout struct{ err *Error }

func newParser(src string, opts lexer.Options) (*parser, error) {
	toks, err := lexer.Tokenize(src, opts)
	if err != nil {
		if le, ok := err.(*lexer.Error); ok {
			return nil, &Error{Line: le.Line, Column: le.Column, Msg: le.Msg}
		}
		return nil, err
	}
	return &parser{toks: toks}, nil
}

func (p *parser) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bailout)
			if !ok {
				panic(r)
			}
			// When a speculative reading got as far into the input
			// before failing, its error points closer to the mistake
			// (an if statement rather than a call of if()).
			if f := p.furthest; f != nil && !after(b.err, f) {
				err = f
				return
			}
			err = b.err
		}
	}()
	f()
	return nil
}

// after reports whether a is positioned after b.
func after(a, b *Error) bool {
	return a.Line > b.Line || (a.Line == b.Line && a.Column > b.Column)
}

func (p *parser) tok() lexer.Token { return p.toks[p.i] }

func (p *parser) peek(n int) lexer.Token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() lexer.Token {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

func (p *parser) at(t lexer.Token) ast.At {
	return ast.At{P: ast.Pos{Line: t.Pos.Line, Column: t.Pos.Column}}
}

func (p *parser) failf(t lexer.Token, format string, args ...any) {
	panic(bailout{&Error{Line: t.Pos.Line, Column: t.Pos.Column, Msg: fmt.Sprintf(format, args...)}})
}

func (p *parser) expect(k lexer.Kind, context string) lexer.Token {
	t := p.tok()
	if t.Kind != k {
		p.failf(t, "expected %s %s, got %s", k, context, t.Describe())
	}
	return p.next()
}

// enter counts one level of nesting and fails past MaxDepth.
func (p *parser) enter() {
	p.depth++
	if p.depth > MaxDepth {
		t := p.tok()
		panic(bailout{&Error{Line: t.Pos.Line, Column: t.Pos.Column, Msg: fmt.Sprintf("nesting too deep (more than %d levels)", MaxDepth), tooDeep: true}})
	}
}

func (p *parser) leave() { p.depth-- }

// isWord reports an unquoted identifier spelled w (case-insensitively).
func isWord(t lexer.Token, w string) bool {
	return t.Kind == lexer.Ident && !t.Quoted && strings.EqualFold(t.Value, w)
}

func (p *parser) isWord(w string) bool { return isWord(p.tok(), w) }

// reserved reports words that can never be identifiers in Hog: unlike
// most HogQL keywords they are not in the grammar's keyword-as-identifier
// list.
func reserved(word string) bool {
	switch strings.ToLower(word) {
	case "catch", "finally", "fn", "fun", "let", "throw", "try", "while", "null", "inf", "infinity", "nan":
		return true
	}
	return false
}

func isReserved(t lexer.Token) bool {
	return t.Kind == lexer.Ident && !t.Quoted && reserved(t.Value)
}

func (p *parser) ident(context string) string {
	t := p.tok()
	if t.Kind != lexer.Ident || isReserved(t) {
		p.failf(t, "expected a name %s, got %s", context, t.Describe())
	}
	p.next()
	return t.Value
}

// ---- statements ----

func (p *parser) semicolon() {
	if p.tok().Kind == lexer.Semicolon {
		p.next()
	}
}

// statement parses one statement; it returns nil for an empty statement.
func (p *parser) statement() ast.Stmt {
	p.enter()
	defer p.leave()
	t := p.tok()
	switch {
	case t.Kind == lexer.Semicolon:
		p.next()
		return nil
	case t.Kind == lexer.LBrace:
		return p.blockOrExpr()
	case isWord(t, "let"):
		s := p.varDecl()
		p.semicolon()
		return s
	case isWord(t, "return"):
		p.next()
		r := &ast.Return{At: p.at(t)}
		// Like PostHog's parser, `return else …` returns the variable else.
		if k := p.tok(); k.Kind != lexer.Semicolon && k.Kind != lexer.RBrace && k.Kind != lexer.EOF {
			r.Expr = p.expr(0)
		}
		p.semicolon()
		return r
	case isWord(t, "throw"):
		p.next()
		s := &ast.Throw{At: p.at(t), Expr: p.expr(0)}
		p.semicolon()
		return s
	case isWord(t, "try"):
		return p.tryCatch()
	case isWord(t, "if") && p.peek(1).Kind == lexer.LParen && !p.parenHasComma(p.i+1):
		// if and for are names too: when no statement parses, PostHog's
		// parser reads a call such as if(a) or for(a in b).
		var s ast.Stmt
		if p.speculate(specStatement, func() { s = p.ifStmt() }) == nil {
			return s
		}
	case isWord(t, "while"):
		p.next()
		p.expect(lexer.LParen, "after 'while'")
		s := &ast.While{At: p.at(t), Cond: p.expr(0)}
		p.expect(lexer.RParen, "after the while condition")
		s.Body = p.statementOrEmpty()
		p.semicolon()
		return s
	case isWord(t, "for") && p.peek(1).Kind == lexer.LParen:
		var s ast.Stmt
		if p.speculate(specStatement, func() { s = p.forStmt() }) == nil {
			return s
		}
	case isWord(t, "fun") || isWord(t, "fn"):
		p.next()
		f := &ast.Function{At: p.at(t)}
		f.Name = p.ident("after 'fun'")
		p.expect(lexer.LParen, "after the function name")
		f.Params = p.params()
		if p.tok().Kind != lexer.LBrace {
			p.failf(p.tok(), "expected '{' to start the body of function '%s', got %s", f.Name, p.tok().Describe())
		}
		f.Body = p.block()
		return f
	}
	s := p.exprOrAssign()
	p.semicolon()
	return s
}

func (p *parser) ifStmt() ast.Stmt {
	t := p.next() // if
	p.next()      // (
	s := &ast.If{At: p.at(t), Cond: p.expr(0)}
	p.expect(lexer.RParen, "after the if condition")
	s.Then = p.statementOrEmpty()
	if p.isWord("else") {
		p.next()
		s.Else = p.statementOrEmpty()
	}
	return s
}

// statementOrEmpty parses the body of if/while/for, where a lone ';' is an
// empty statement.
func (p *parser) statementOrEmpty() ast.Stmt {
	t := p.tok()
	if s := p.statement(); s != nil {
		return s
	}
	return &ast.Block{At: p.at(t)}
}

func (p *parser) exprOrAssign() ast.Stmt {
	t := p.tok()
	e := p.expr(0)
	if p.tok().Kind == lexer.Assign {
		// The compiler decides which targets can be assigned to.
		p.next()
		return &ast.Assign{At: p.at(t), Left: e, Right: p.expr(0)}
	}
	return &ast.ExprStmt{At: p.at(t), Expr: e}
}

func (p *parser) varDecl() *ast.VarDecl {
	t := p.next() // let
	d := &ast.VarDecl{At: p.at(t)}
	d.Name = p.ident("after 'let'")
	if p.tok().Kind == lexer.Assign {
		p.next()
		d.Expr = p.expr(0)
	} else if p.tok().Kind == lexer.EqSingle || p.tok().Kind == lexer.EqDouble {
		p.failf(p.tok(), "use ':=' to assign a value to '%s', not '='", d.Name)
	}
	return d
}

// params parses "a, b)" after an opening parenthesis.
func (p *parser) params() []string {
	var names []string
	for p.tok().Kind != lexer.RParen {
		names = append(names, p.ident("in the parameter list"))
		if p.tok().Kind != lexer.Comma {
			break
		}
		p.next()
	}
	p.expect(lexer.RParen, "after the parameters")
	return names
}

func (p *parser) block() *ast.Block {
	t := p.expect(lexer.LBrace, "to start a block")
	b := &ast.Block{At: p.at(t)}
	for p.tok().Kind != lexer.RBrace {
		if p.tok().Kind == lexer.EOF {
			p.failf(p.tok(), "expected '}' to close the block opened at line %d, column %d, got end of input", t.Pos.Line, t.Pos.Column)
		}
		if s := p.statement(); s != nil {
			b.Stmts = append(b.Stmts, s)
		}
	}
	p.next()
	return b
}

// blockOrExpr parses a statement starting with '{': a block when it parses
// as one (PostHog's grammar tries the block first), else an expression
// statement such as a dict.
func (p *parser) blockOrExpr() ast.Stmt {
	var b *ast.Block
	blockErr := p.speculate(specBlock, func() { b = p.block() })
	if blockErr == nil {
		return b
	}
	s := p.exprOrAssign()
	p.semicolon()
	return s
}

func (p *parser) tryCatch() ast.Stmt {
	t := p.next() // try
	s := &ast.TryCatch{At: p.at(t)}
	if p.tok().Kind != lexer.LBrace {
		p.failf(p.tok(), "expected '{' after 'try', got %s", p.tok().Describe())
	}
	s.Try = p.block()
	for p.isWord("catch") {
		c := ast.Catch{At: p.at(p.next())}
		if p.tok().Kind == lexer.LParen {
			p.next()
			c.Var = p.ident("for the caught error")
			if p.tok().Kind == lexer.Colon {
				p.next()
				c.Type = p.ident("for the error type")
			}
			p.expect(lexer.RParen, "after the catch variable")
		}
		if p.tok().Kind != lexer.LBrace {
			p.failf(p.tok(), "expected '{' after 'catch', got %s", p.tok().Describe())
		}
		c.Body = p.block()
		s.Catches = append(s.Catches, c)
	}
	if p.isWord("finally") {
		p.next()
		if p.tok().Kind != lexer.LBrace {
			p.failf(p.tok(), "expected '{' after 'finally', got %s", p.tok().Describe())
		}
		s.Finally = p.block()
	}
	return s
}

func (p *parser) forStmt() ast.Stmt {
	t := p.next() // for
	p.next()      // (
	// for (let k, v in expr)
	if p.isWord("let") && p.peek(1).Kind == lexer.Ident {
		j := 2
		if p.peek(2).Kind == lexer.Comma && p.peek(3).Kind == lexer.Ident {
			j = 4
		}
		if isWord(p.peek(j), "in") {
			p.next()
			s := &ast.ForIn{At: p.at(t)}
			first := p.ident("after 'let'")
			if p.tok().Kind == lexer.Comma {
				p.next()
				s.KeyVar = first
				s.ValueVar = p.ident("for the loop value")
			} else {
				s.ValueVar = first
			}
			p.next() // in
			s.Expr = p.expr(0)
			p.expect(lexer.RParen, "after the for-in expression")
			s.Body = p.statementOrEmpty()
			p.semicolon()
			return s
		}
	}
	s := &ast.For{At: p.at(t)}
	if p.tok().Kind != lexer.Semicolon {
		s.Init = p.forClause()
	}
	p.expect(lexer.Semicolon, "after the for-loop initializer")
	if p.tok().Kind != lexer.Semicolon {
		s.Cond = p.expr(0)
	}
	p.expect(lexer.Semicolon, "after the for-loop condition")
	if p.tok().Kind != lexer.RParen {
		s.Incr = p.forClause()
	}
	p.expect(lexer.RParen, "after the for-loop increment")
	s.Body = p.statementOrEmpty()
	p.semicolon()
	return s
}

func (p *parser) forClause() ast.Stmt {
	if p.isWord("let") {
		return p.varDecl()
	}
	return p.exprOrAssign()
}

// parenHasComma reports whether the parenthesis at token index open
// contains a comma at its own nesting level; `if (a, b, c)` is then a call
// of the if() function rather than an if statement.
func (p *parser) parenHasComma(open int) bool {
	depth := 0
	for j := open; j < len(p.toks); j++ {
		switch p.toks[j].Kind {
		case lexer.LParen, lexer.LBracket, lexer.LBrace, lexer.TemplateStart, lexer.TemplateExpr:
			depth++
		case lexer.RParen, lexer.RBracket, lexer.RBrace, lexer.TemplateEnd:
			depth--
			if depth == 0 {
				return false
			}
		case lexer.Comma:
			if depth == 1 {
				return true
			}
		case lexer.EOF:
			return false
		}
	}
	return false
}
