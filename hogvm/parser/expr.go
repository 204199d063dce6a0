package parser

import (
	"math"
	"strconv"
	"strings"

	"github.com/hogwire/hogwire/hogvm/ast"
	"github.com/hogwire/hogwire/hogvm/lexer"
)

// Binding strengths, loosest first, in the order of HogQL's grammar.
const (
	precTernary  = 1
	precOr       = 2
	precAnd      = 3
	precNot      = 4
	precBetween  = 5
	precNullish  = 6
	precIsNull   = 7
	precCompare  = 8
	precAdditive = 9
	precMult     = 10
	precNegate   = 11
	precPostfix  = 12
)

// expr parses an expression whose operators bind at least as tightly as
// minPrec (precedence climbing; binary operators are left-associative,
// the ternary operator right-associative).
func (p *parser) expr(minPrec int) ast.Expr {
	p.enter()
	defer p.leave()
	saved := p.depth
	defer func() { p.depth = saved }()

	left := p.unary()
	for {
		t := p.tok()
		switch {
		case t.Kind == lexer.Query && minPrec <= precTernary:
			p.next()
			then := p.expr(0)
			p.expect(lexer.Colon, "in the ternary operator 'cond ? a : b'")
			els := p.expr(precTernary)
			left = &ast.Call{At: atOf(left), Name: "if", Args: []ast.Expr{left, then, els}}
		case minPrec <= precBetween && (isWord(t, "between") || (isWord(t, "not") && isWord(p.peek(1), "between"))):
			// When "between … and …" does not follow, PostHog's parser
			// ends the expression here and reads between as a name.
			b, ok := p.between(left)
			if !ok {
				return left
			}
			left = b
		case isWord(t, "or") && minPrec <= precOr:
			right, ok := p.wordOperand(1, precOr+1)
			if !ok {
				return left
			}
			left = &ast.Or{At: atOf(left), Exprs: append(flattenOr(left), flattenOr(right)...)}
		case isWord(t, "and") && minPrec <= precAnd:
			right, ok := p.wordOperand(1, precAnd+1)
			if !ok {
				return left
			}
			left = &ast.And{At: atOf(left), Exprs: append(flattenAnd(left), flattenAnd(right)...)}
		case t.Kind == lexer.Nullish && minPrec <= precNullish:
			p.next()
			right := p.expr(precNullish + 1)
			left = &ast.Call{At: atOf(left), Name: "ifNull", Args: []ast.Expr{left, right}}
		case isWord(t, "is") && minPrec <= precIsNull && (isWord(p.peek(1), "null") || (isWord(p.peek(1), "not") && isWord(p.peek(2), "null"))):
			p.next()
			op := ast.Eq
			if p.isWord("not") {
				p.next()
				op = ast.NotEq
			}
			n := p.next()
			left = &ast.Compare{At: atOf(left), Op: op, Left: left, Right: &ast.Constant{At: p.at(n)}}
		case minPrec <= precCompare && p.compareOp() >= 0:
			op, words := p.compareOp(), p.compareWords()
			var right ast.Expr
			if words == 0 {
				p.next()
				right = p.expr(precCompare + 1)
			} else {
				var ok bool
				if right, ok = p.wordOperand(words, precCompare+1); !ok {
					return left
				}
			}
			left = &ast.Compare{At: atOf(left), Op: op, Left: left, Right: right}
		case minPrec <= precAdditive && (t.Kind == lexer.Plus || t.Kind == lexer.Dash || t.Kind == lexer.Concat):
			p.next()
			right := p.expr(precAdditive + 1)
			switch t.Kind {
			case lexer.Plus:
				left = &ast.Arith{At: atOf(left), Op: ast.Add, Left: left, Right: right}
			case lexer.Dash:
				left = &ast.Arith{At: atOf(left), Op: ast.Sub, Left: left, Right: right}
			default:
				left = &ast.Call{At: atOf(left), Name: "concat", Args: append(concatArgs(left), concatArgs(right)...)}
			}
		case minPrec <= precMult && (t.Kind == lexer.Asterisk || t.Kind == lexer.Slash || t.Kind == lexer.Percent):
			var right ast.Expr
			if t.Kind == lexer.Asterisk {
				// * is also a name (HogQL's "select *"): without a right
				// operand, it starts the next statement.
				var ok bool
				if right, ok = p.wordOperand(1, precMult+1); !ok {
					return left
				}
			} else {
				p.next()
				right = p.expr(precMult + 1)
			}
			op := ast.Mod
			switch t.Kind {
			case lexer.Asterisk:
				op = ast.Mul
			case lexer.Slash:
				op = ast.Div
			}
			left = &ast.Arith{At: atOf(left), Op: op, Left: left, Right: right}
		case isWord(t, "as") && (p.peek(1).Kind == lexer.Ident || p.peek(1).Kind == lexer.String):
			p.failf(t, "aliases ('as') are not supported in Hog")
		default:
			return left
		}
		// Left-deep chains (a + b + c …) nest too; count them.
		p.enter()
	}
}

func atOf(e ast.Expr) ast.At { return ast.At{P: e.Position()} }

// between parses "[not] between low and high" after x, speculatively.
func (p *parser) between(x ast.Expr) (ast.Expr, bool) {
	var b *ast.Between
	failed := p.speculate(specOperator, func() {
		negated := p.isWord("not")
		if negated {
			p.next()
		}
		p.next()
		low := p.expr(precBetween + 1)
		if !p.isWord("and") {
			p.failf(p.tok(), "expected 'and' in 'between … and …', got %s", p.tok().Describe())
		}
		p.next()
		high := p.expr(precBetween + 1)
		b = &ast.Between{At: atOf(x), Expr: x, Low: low, High: high, Negated: negated}
	})
	return b, failed == nil
}

// wordOperand parses the right operand after a keyword operator (and, or,
// like, in, …) speculatively: when no operand follows, PostHog's parser
// ends the expression before the keyword and reads the keyword as a name.
func (p *parser) wordOperand(words int, prec int) (ast.Expr, bool) {
	var right ast.Expr
	failed := p.speculate(specOperator, func() {
		for range words {
			p.next()
		}
		right = p.expr(prec)
	})
	return right, failed == nil
}

func flattenAnd(e ast.Expr) []ast.Expr {
	if a, ok := e.(*ast.And); ok {
		return a.Exprs
	}
	return []ast.Expr{e}
}

func flattenOr(e ast.Expr) []ast.Expr {
	if o, ok := e.(*ast.Or); ok {
		return o.Exprs
	}
	return []ast.Expr{e}
}

func concatArgs(e ast.Expr) []ast.Expr {
	if c, ok := e.(*ast.Call); ok && c.Name == "concat" {
		return c.Args
	}
	return []ast.Expr{e}
}

// compareOp returns the comparison operator at the current token, or -1.
func (p *parser) compareOp() ast.CompareOp {
	t := p.tok()
	switch t.Kind {
	case lexer.EqSingle, lexer.EqDouble:
		return ast.Eq
	case lexer.NotEq:
		return ast.NotEq
	case lexer.Lt:
		return ast.Lt
	case lexer.LtEq:
		return ast.LtEq
	case lexer.Gt:
		return ast.Gt
	case lexer.GtEq:
		return ast.GtEq
	case lexer.RegexSingle, lexer.RegexDouble:
		return ast.Regex
	case lexer.NotRegex:
		return ast.NotRegex
	case lexer.IRegexSingle, lexer.IRegexDouble:
		return ast.IRegex
	case lexer.NotIRegex:
		return ast.NotIRegex
	}
	if t.Kind != lexer.Ident || t.Quoted {
		return -1
	}
	word := strings.ToLower(t.Value)
	not := false
	next := p.peek(1)
	if word == "not" {
		if next.Kind != lexer.Ident || next.Quoted {
			return -1
		}
		not = true
		word = strings.ToLower(next.Value)
		next = p.peek(2)
	}
	switch word {
	case "like":
		return pick(not, ast.NotLike, ast.Like)
	case "ilike":
		return pick(not, ast.NotILike, ast.ILike)
	case "in":
		if isWord(next, "cohort") {
			return pick(not, ast.NotInCohort, ast.InCohort)
		}
		return pick(not, ast.NotIn, ast.In)
	}
	return -1
}

func pick(cond bool, a, b ast.CompareOp) ast.CompareOp {
	if cond {
		return a
	}
	return b
}

// compareWords returns how many words spell the comparison operator at the
// current token (not in cohort: 3), or 0 for a symbol such as '='.
func (p *parser) compareWords() int {
	t := p.tok()
	if t.Kind != lexer.Ident {
		return 0
	}
	n := 1
	if isWord(t, "not") {
		n++
		t = p.peek(1)
	}
	if isWord(t, "in") && isWord(p.peek(n), "cohort") {
		n++
	}
	return n
}

// unary parses prefix operators and a primary expression with its postfix
// operators.
func (p *parser) unary() ast.Expr {
	t := p.tok()
	switch {
	case t.Kind == lexer.Dash || t.Kind == lexer.Plus:
		if n := p.peek(1); n.Kind == lexer.Int || n.Kind == lexer.Float {
			// A sign is part of a number literal: -1 is INTEGER -1.
			p.next()
			p.next()
			if n.Kind == lexer.Int {
				return p.postfix(p.fraction(n, t.Kind == lexer.Dash))
			}
			return p.postfix(signed(p.at(t), n, t.Kind == lexer.Dash))
		}
		if n := p.peek(1); isWord(n, "inf") || isWord(n, "infinity") || isWord(n, "nan") {
			p.next()
			p.next()
			v := special(n.Value)
			if t.Kind == lexer.Dash {
				v = -v
			}
			return p.postfix(&ast.Constant{At: p.at(t), Value: v})
		}
		if t.Kind == lexer.Plus {
			p.failf(t, "unexpected '+'")
		}
		p.next()
		operand := p.expr(precNegate)
		return &ast.Arith{At: p.at(t), Op: ast.Sub, Left: &ast.Constant{At: p.at(t), Value: int64(0)}, Right: operand}
	case isWord(t, "not") && p.peek(1).Kind != lexer.LParen:
		var operand ast.Expr
		if p.speculate(specPrefix, func() { p.next(); operand = p.expr(precNot) }) == nil {
			return &ast.Not{At: p.at(t), Expr: operand}
		}
		// Without an operand, not is a name (as in PostHog's parser).
	}
	return p.postfix(p.primary())
}

// fraction completes an integer literal n whose token has been consumed.
// In HogQL's grammar "1." and "1.5" are float literals even with spaces
// around the dot (1 . 5), so an integer followed by a dot is a float.
func (p *parser) fraction(n lexer.Token, neg bool) ast.Expr {
	if p.tok().Kind != lexer.Dot || strings.ContainsAny(n.Raw, "xX") {
		return signed(p.at(n), n, neg)
	}
	p.next()
	text := n.Raw + "."
	if f := p.tok(); f.Kind == lexer.Int && !strings.ContainsAny(f.Raw, "xX") {
		p.next()
		text += f.Raw
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		p.failf(n, "invalid number %s", text)
	}
	f := lexer.Token{Kind: lexer.Float, Float: v}
	return signed(p.at(n), f, neg)
}

func signed(at ast.At, n lexer.Token, neg bool) ast.Expr {
	if n.Kind == lexer.Int {
		v := n.Int
		if neg {
			v = -v
		}
		return &ast.Constant{At: at, Value: v}
	}
	v := n.Float
	if neg {
		v = -v
	}
	return &ast.Constant{At: at, Value: v}
}

func special(word string) float64 {
	if strings.EqualFold(word, "nan") {
		return math.NaN()
	}
	return math.Inf(1)
}

// postfix applies calls, indexing and member access.
func (p *parser) postfix(e ast.Expr) ast.Expr {
	saved := p.depth
	defer func() { p.depth = saved }()
	for {
		t := p.tok()
		switch t.Kind {
		case lexer.LBracket:
			p.next()
			idx := p.expr(0)
			p.expect(lexer.RBracket, "after the index")
			e = &ast.ArrayAccess{At: atOf(e), Array: e, Property: idx}
		case lexer.Dot, lexer.NullProperty:
			nullish := t.Kind == lexer.NullProperty
			p.next()
			n := p.tok()
			switch {
			case n.Kind == lexer.Int && n.Raw[0] != '0' || n.Kind == lexer.Int && n.Raw == "0":
				p.next()
				e = &ast.TupleAccess{At: atOf(e), Tuple: e, Index: n.Int, Nullish: nullish}
			case n.Kind == lexer.Ident:
				p.next()
				e = &ast.ArrayAccess{At: atOf(e), Array: e, Property: &ast.Constant{At: p.at(n), Value: n.Value}, Nullish: nullish}
			case n.Kind == lexer.LBracket && nullish:
				p.next()
				idx := p.expr(0)
				p.expect(lexer.RBracket, "after the index")
				e = &ast.ArrayAccess{At: atOf(e), Array: e, Property: idx, Nullish: true}
			default:
				p.failf(n, "expected a property name or index after %s, got %s", t.Kind, n.Describe())
			}
		case lexer.LParen:
			if p.lambdaParams() {
				return e
			}
			p.next()
			e = &ast.ExprCall{At: atOf(e), Callee: e, Args: p.args()}
		default:
			return e
		}
		p.enter()
	}
}

// args parses call arguments after '(' up to and including ')'.
func (p *parser) args() []ast.Expr {
	var list []ast.Expr
	for p.tok().Kind != lexer.RParen {
		if isWord(p.tok(), "distinct") && len(list) == 0 {
			p.failf(p.tok(), "'distinct' is not supported in Hog function calls")
		}
		list = append(list, p.expr(0))
		if p.tok().Kind != lexer.Comma {
			break
		}
		p.next()
	}
	p.expect(lexer.RParen, "after arguments")
	return list
}

func (p *parser) primary() ast.Expr {
	t := p.tok()
	switch t.Kind {
	case lexer.Int:
		p.next()
		return p.fraction(t, false)
	case lexer.Float:
		p.next()
		return &ast.Constant{At: p.at(t), Value: t.Float}
	case lexer.String:
		p.next()
		return &ast.Constant{At: p.at(t), Value: t.Value}
	case lexer.TemplateStart:
		p.next()
		return p.templatePieces(t, lexer.TemplateEnd)
	case lexer.LBracket:
		p.next()
		a := &ast.Array{At: p.at(t)}
		a.Exprs = p.exprList(lexer.RBracket, "after the array elements")
		return a
	case lexer.LBrace:
		return p.braces()
	case lexer.LParen:
		return p.parens()
	case lexer.Ident:
		return p.name()
	case lexer.Asterisk:
		// HogQL's "select *" column, a name like any other in Hog.
		p.next()
		return &ast.Field{At: p.at(t), Chain: []string{"*"}}
	case lexer.EOF:
		p.failf(t, "unexpected end of input, expected an expression")
	}
	p.failf(t, "unexpected %s, expected an expression", t.Describe())
	return nil
}

// exprList parses "a, b, c," up to the closing token.
func (p *parser) exprList(end lexer.Kind, context string) []ast.Expr {
	var list []ast.Expr
	for p.tok().Kind != end {
		list = append(list, p.expr(0))
		if p.tok().Kind != lexer.Comma {
			break
		}
		p.next()
	}
	p.expect(end, context)
	return list
}

// braces parses a dict {k: v} or a placeholder {expr}.
func (p *parser) braces() ast.Expr {
	t := p.next()
	d := &ast.Dict{At: p.at(t)}
	if p.tok().Kind == lexer.RBrace {
		p.next()
		return d
	}
	first := p.expr(0)
	if p.tok().Kind == lexer.RBrace {
		p.next()
		return &ast.Placeholder{At: p.at(t), Expr: first}
	}
	for {
		p.expect(lexer.Colon, "after the dict key")
		d.Items = append(d.Items, ast.KV{Key: first, Value: p.expr(0)})
		if p.tok().Kind != lexer.Comma {
			break
		}
		p.next()
		if p.tok().Kind == lexer.RBrace {
			break
		}
		first = p.expr(0)
	}
	p.expect(lexer.RBrace, "after the dict entries")
	return d
}

// lambdaParams reports whether the '(' at the current token starts a
// lambda's parameter list: () -> or (a, b) ->.
func (p *parser) lambdaParams() bool {
	j := 1
	for {
		n := p.peek(j)
		if n.Kind == lexer.RParen {
			return p.peek(j+1).Kind == lexer.Arrow
		}
		if n.Kind != lexer.Ident {
			return false
		}
		j++
		switch p.peek(j).Kind {
		case lexer.Comma:
			j++
		case lexer.RParen:
		default:
			return false
		}
	}
}

// bareLambdaParams returns the number of parameters when the current
// token starts a lambda without parentheses, x -> … or a, b -> …, else 0.
// As in PostHog's grammar, f(a, b -> c) therefore passes one two-parameter
// lambda, not a and a lambda.
func (p *parser) bareLambdaParams() int {
	n := 0
	for j := 0; ; {
		t := p.peek(j)
		if t.Kind != lexer.Ident || isReserved(t) {
			return 0
		}
		n++
		j++
		switch p.peek(j).Kind {
		case lexer.Arrow:
			return n
		case lexer.Comma:
			j++
			if p.peek(j).Kind == lexer.Arrow {
				return n
			}
		default:
			return 0
		}
	}
}

func (p *parser) parens() ast.Expr {
	t := p.tok()
	if p.lambdaParams() {
		p.next()
		params := p.params()
		return p.lambda(t, params)
	}
	p.next()
	if p.isWord("select") || p.isWord("with") {
		p.failf(p.tok(), "SQL queries are not supported in Hog programs")
	}
	if p.tok().Kind == lexer.RParen {
		p.failf(p.tok(), "empty parentheses: write tuple() for an empty tuple")
	}
	first := p.expr(0)
	if p.tok().Kind == lexer.RParen {
		p.next()
		return first
	}
	if p.tok().Kind != lexer.Comma {
		p.failf(p.tok(), "expected ')' or ',', got %s", p.tok().Describe())
	}
	p.next()
	tu := &ast.Tuple{At: p.at(t), Exprs: []ast.Expr{first}}
	tu.Exprs = append(tu.Exprs, p.exprList(lexer.RParen, "after the tuple elements")...)
	return tu
}

// lambda parses the body after the parameters; the current token is '->'.
func (p *parser) lambda(t lexer.Token, params []string) ast.Expr {
	p.expect(lexer.Arrow, "after the lambda parameters")
	l := &ast.Lambda{At: p.at(t), Params: params}
	if p.tok().Kind != lexer.LBrace {
		l.Body = p.expr(0)
		return l
	}
	// "-> {…}" is a dict or placeholder expression when it parses as one
	// (HogQL's grammar tries the expression first), otherwise a block. A
	// placeholder {x} means the same as the block {x}.
	var body ast.Expr
	failed := p.speculate(specLambdaExpr, func() { body = p.expr(0) })
	if failed != nil {
		l.Body = p.block()
		return l
	}
	if ph, isPh := body.(*ast.Placeholder); isPh {
		e := ph.Expr
		l.Body = &ast.Block{At: ph.At, Stmts: []ast.Stmt{&ast.ExprStmt{At: atOf(e), Expr: e}}}
		return l
	}
	l.Body = body
	return l
}

// attempt runs f speculatively; on a syntax error it rewinds and returns
// the error.
func (p *parser) attempt(f func()) (failed *Error) {
	start, depth := p.i, p.depth
	defer func() {
		if r := recover(); r != nil {
			b, isBail := r.(bailout)
			if !isBail || b.err.tooDeep {
				panic(r)
			}
			p.i, p.depth = start, depth
			failed = b.err
			if p.furthest == nil || after(failed, p.furthest) {
				p.furthest = failed
			}
		}
	}()
	f()
	return nil
}

func (p *parser) name() ast.Expr {
	t := p.tok()
	if n := p.bareLambdaParams(); n > 0 {
		var params []string
		for range n {
			params = append(params, p.next().Value)
			if p.tok().Kind == lexer.Comma {
				p.next()
			}
		}
		return p.lambda(t, params)
	}
	if !t.Quoted {
		switch strings.ToLower(t.Value) {
		case "null":
			p.next()
			return &ast.Constant{At: p.at(t)}
		case "inf", "infinity", "nan":
			p.next()
			return &ast.Constant{At: p.at(t), Value: special(t.Value)}
		case "case":
			if e, ok := p.prefixForm(p.caseExpr); ok {
				return e
			}
		case "interval":
			if p.peek(1).Kind != lexer.LParen {
				if e, ok := p.prefixForm(p.interval); ok {
					return e
				}
			}
		case "trim":
			if n := p.peek(2); p.peek(1).Kind == lexer.LParen && (isWord(n, "leading") || isWord(n, "trailing") || isWord(n, "both")) {
				if e, ok := p.prefixForm(p.trimExpr); ok {
					return e
				}
			}
		}
		if isReserved(t) {
			p.failf(t, "unexpected '%s', expected an expression", t.Raw)
		}
	}
	p.next()
	// f(x) -> y is f followed by a lambda, not a call.
	if p.tok().Kind == lexer.LParen && !p.lambdaParams() {
		p.next()
		return &ast.Call{At: p.at(t), Name: t.Value, Args: p.args()}
	}
	if !t.Quoted && p.tok().Kind != lexer.Dot {
		switch strings.ToLower(t.Value) {
		case "true":
			return &ast.Constant{At: p.at(t), Value: true}
		case "false":
			return &ast.Constant{At: p.at(t), Value: false}
		}
	}
	f := &ast.Field{At: p.at(t), Chain: []string{t.Value}}
	for p.tok().Kind == lexer.Dot && p.peek(1).Kind == lexer.Ident {
		p.next()
		f.Chain = append(f.Chain, p.next().Value)
	}
	return f
}

// prefixForm parses a keyword-led form (case, interval, trim) speculatively;
// when it does not parse, the keyword is an ordinary name.
func (p *parser) prefixForm(f func() ast.Expr) (ast.Expr, bool) {
	var e ast.Expr
	failed := p.speculate(specPrefix, func() { e = f() })
	return e, failed == nil
}

// caseExpr parses CASE [x] WHEN c THEN v … [ELSE e] END.
func (p *parser) caseExpr() ast.Expr {
	t := p.next()
	var subject ast.Expr
	if !p.isWord("when") {
		subject = p.expr(0)
	}
	var cols []ast.Expr
	for p.isWord("when") {
		p.next()
		cols = append(cols, p.expr(0))
		if !p.isWord("then") {
			p.failf(p.tok(), "expected 'then' in case expression, got %s", p.tok().Describe())
		}
		p.next()
		cols = append(cols, p.expr(0))
	}
	if len(cols) == 0 {
		p.failf(p.tok(), "expected 'when' in case expression, got %s", p.tok().Describe())
	}
	var els ast.Expr
	if p.isWord("else") {
		p.next()
		els = p.expr(0)
	}
	if !p.isWord("end") {
		p.failf(p.tok(), "expected 'end' to close the case expression, got %s", p.tok().Describe())
	}
	p.next()
	if subject != nil {
		from := &ast.Array{At: p.at(t)}
		to := &ast.Array{At: p.at(t)}
		for i := 0; i < len(cols); i += 2 {
			from.Exprs = append(from.Exprs, cols[i])
			to.Exprs = append(to.Exprs, cols[i+1])
		}
		if els == nil {
			els = &ast.Constant{At: p.at(t)}
		}
		return &ast.Call{At: p.at(t), Name: "transform", Args: []ast.Expr{subject, from, to, els}}
	}
	if els == nil {
		els = &ast.Constant{At: p.at(t)}
	}
	cols = append(cols, els)
	if len(cols) == 3 {
		return &ast.Call{At: p.at(t), Name: "if", Args: cols}
	}
	return &ast.Call{At: p.at(t), Name: "multiIf", Args: cols}
}

// intervalFunc names the function INTERVAL n unit calls, or "".
func intervalFunc(unit string) string {
	switch strings.ToLower(unit) {
	case "second":
		return "toIntervalSecond"
	case "minute":
		return "toIntervalMinute"
	case "hour":
		return "toIntervalHour"
	case "day":
		return "toIntervalDay"
	case "week":
		return "toIntervalWeek"
	case "month":
		return "toIntervalMonth"
	case "quarter":
		return "toIntervalQuarter"
	case "year":
		return "toIntervalYear"
	}
	return ""
}

// interval parses INTERVAL expr unit.
func (p *parser) interval() ast.Expr {
	t := p.next()
	n := p.expr(precNegate)
	u := p.tok()
	fn := intervalFunc(u.Value)
	if u.Kind != lexer.Ident || u.Quoted || fn == "" {
		p.failf(u, "expected an interval unit (second, minute, hour, day, week, month, quarter, year), got %s", u.Describe())
	}
	p.next()
	return &ast.Call{At: p.at(t), Name: fn, Args: []ast.Expr{n}}
}

// trimExpr parses trim(LEADING|TRAILING|BOTH 'x' FROM expr).
func (p *parser) trimExpr() ast.Expr {
	t := p.next()
	p.next() // (
	mode := strings.ToLower(p.next().Value)
	var chars ast.Expr
	switch c := p.tok(); c.Kind {
	case lexer.String:
		p.next()
		chars = &ast.Constant{At: p.at(c), Value: c.Value}
	case lexer.TemplateStart:
		p.next()
		chars = p.templatePieces(c, lexer.TemplateEnd)
	default:
		p.failf(c, "expected a string after '%s', got %s", mode, c.Describe())
	}
	if !p.isWord("from") {
		p.failf(p.tok(), "expected 'from' in trim(), got %s", p.tok().Describe())
	}
	p.next()
	subject := p.expr(0)
	p.expect(lexer.RParen, "after trim arguments")
	name := "trim"
	switch mode {
	case "leading":
		name = "trimLeft"
	case "trailing":
		name = "trimRight"
	}
	return &ast.Call{At: p.at(t), Name: name, Args: []ast.Expr{subject, chars}}
}

// templatePieces parses the inside of a template string up to end: text
// pieces and {expr} placeholders. One piece stands alone; several become a
// concat call.
func (p *parser) templatePieces(t lexer.Token, end lexer.Kind) ast.Expr {
	var pieces []ast.Expr
	for {
		n := p.tok()
		switch n.Kind {
		case lexer.TemplateText:
			p.next()
			pieces = append(pieces, &ast.Constant{At: p.at(n), Value: n.Value})
			continue
		case lexer.TemplateExpr:
			p.next()
			pieces = append(pieces, p.expr(0))
			p.expect(lexer.RBrace, "to close the template placeholder")
			continue
		}
		if n.Kind != end {
			p.failf(n, "expected %s, got %s", end, n.Describe())
		}
		if end != lexer.EOF {
			p.next()
		}
		break
	}
	switch len(pieces) {
	case 0:
		return &ast.Constant{At: p.at(t), Value: ""}
	case 1:
		return pieces[0]
	}
	return &ast.Call{At: p.at(t), Name: "concat", Args: pieces}
}
