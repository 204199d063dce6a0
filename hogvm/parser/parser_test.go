package parser_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/ast"
	"github.com/hogwire/hogwire/hogvm/parser"
)

// sexpr renders a tree compactly so that tests can state its shape.
func sexpr(n ast.Node) string {
	list := func(head string, parts ...string) string {
		return "(" + strings.Join(append([]string{head}, parts...), " ") + ")"
	}
	exprs := func(es []ast.Expr) []string {
		var out []string
		for _, e := range es {
			out = append(out, sexpr(e))
		}
		return out
	}
	stmts := func(ss []ast.Stmt) []string {
		var out []string
		for _, s := range ss {
			out = append(out, sexpr(s))
		}
		return out
	}
	switch n := n.(type) {
	case nil:
		return "nil"
	case *ast.Constant:
		if s, ok := n.Value.(string); ok {
			return fmt.Sprintf("%q", s)
		}
		return fmt.Sprint(n.Value)
	case *ast.Field:
		return strings.Join(n.Chain, ".")
	case *ast.ArrayAccess:
		h := "get"
		if n.Nullish {
			h = "get?"
		}
		return list(h, sexpr(n.Array), sexpr(n.Property))
	case *ast.TupleAccess:
		return list("tget", sexpr(n.Tuple), fmt.Sprint(n.Index))
	case *ast.Call:
		return list(n.Name, exprs(n.Args)...)
	case *ast.ExprCall:
		return list("call", append([]string{sexpr(n.Callee)}, exprs(n.Args)...)...)
	case *ast.And:
		return list("and", exprs(n.Exprs)...)
	case *ast.Or:
		return list("or", exprs(n.Exprs)...)
	case *ast.Not:
		return list("not", sexpr(n.Expr))
	case *ast.Compare:
		ops := []string{"=", "!=", ">", ">=", "<", "<=", "like", "ilike", "notlike", "notilike", "in", "notin", "=~", "!~", "=~*", "!~*", "incohort", "notincohort"}
		return list(ops[n.Op], sexpr(n.Left), sexpr(n.Right))
	case *ast.Arith:
		return list(string("+-*/%"[n.Op]), sexpr(n.Left), sexpr(n.Right))
	case *ast.Between:
		h := "between"
		if n.Negated {
			h = "notbetween"
		}
		return list(h, sexpr(n.Expr), sexpr(n.Low), sexpr(n.High))
	case *ast.Lambda:
		return list("lambda", "["+strings.Join(n.Params, " ")+"]", sexpr(n.Body))
	case *ast.Dict:
		var parts []string
		for _, kv := range n.Items {
			parts = append(parts, sexpr(kv.Key)+":"+sexpr(kv.Value))
		}
		return list("dict", parts...)
	case *ast.Array:
		return list("array", exprs(n.Exprs)...)
	case *ast.Tuple:
		return list("tuple", exprs(n.Exprs)...)
	case *ast.Placeholder:
		return list("placeholder", sexpr(n.Expr))
	case *ast.Program:
		return list("program", stmts(n.Stmts)...)
	case *ast.Block:
		return list("block", stmts(n.Stmts)...)
	case *ast.ExprStmt:
		return sexpr(n.Expr)
	case *ast.VarDecl:
		if n.Expr == nil {
			return list("let", n.Name)
		}
		return list("let", n.Name, sexpr(n.Expr))
	case *ast.Assign:
		return list(":=", sexpr(n.Left), sexpr(n.Right))
	case *ast.Return:
		if n.Expr == nil {
			return "(return)"
		}
		return list("return", sexpr(n.Expr))
	case *ast.Throw:
		return list("throw", sexpr(n.Expr))
	case *ast.If:
		if n.Else == nil {
			return list("if", sexpr(n.Cond), sexpr(n.Then))
		}
		return list("if", sexpr(n.Cond), sexpr(n.Then), sexpr(n.Else))
	case *ast.While:
		return list("while", sexpr(n.Cond), sexpr(n.Body))
	case *ast.For:
		init, incr := "nil", "nil"
		if n.Init != nil {
			init = sexpr(n.Init)
		}
		if n.Incr != nil {
			incr = sexpr(n.Incr)
		}
		cond := "nil"
		if n.Cond != nil {
			cond = sexpr(n.Cond)
		}
		return list("for", init, cond, incr, sexpr(n.Body))
	case *ast.ForIn:
		return list("forin", n.KeyVar, n.ValueVar, sexpr(n.Expr), sexpr(n.Body))
	case *ast.Function:
		return list("fun", n.Name, "["+strings.Join(n.Params, " ")+"]", sexpr(n.Body))
	case *ast.TryCatch:
		parts := []string{sexpr(n.Try)}
		for _, c := range n.Catches {
			parts = append(parts, list("catch", c.Var, c.Type, sexpr(c.Body)))
		}
		return list("try", parts...)
	}
	return fmt.Sprintf("?%T", n)
}

func TestParseExpr(t *testing.T) {
	tests := []struct{ src, want string }{
		{"1 + 2 * 3", "(+ 1 (* 2 3))"},
		{"1 - 2 - 3", "(- (- 1 2) 3)"},
		{"-1 - -x", "(- -1 (- 0 x))"},
		{"- a.b", "(- 0 a.b)"},
		{"a = 1 and b or not c", "(or (and (= a 1) b) (not c))"},
		{"a and b and c or d or e", "(or (and a b c) d e)"},
		{"not a = b", "(not (= a b))"},
		{"a ?? b ?? c", "(ifNull (ifNull a b) c)"},
		{"a ?? b = c", "(ifNull a (= b c))"},
		{"c ? a : d ? e : f", "(if c a (if d e f))"},
		{"x between 1 and 2", "(between x 1 2)"},
		{"x not between 1 + 1 and y", "(notbetween x (+ 1 1) y)"},
		{"a || b || 'c'", `(concat a b "c")`},
		{"x is null or y is not null", "(or (= x <nil>) (!= y <nil>))"},
		{"a not like b", "(notlike a b)"},
		{"a not ilike b", "(notilike a b)"},
		{"a not in b", "(notin a b)"},
		{"a in cohort 3", "(incohort a 3)"},
		{"a ~ b", "(=~ a b)"},
		{"event.properties.$browser", "event.properties.$browser"},
		{"a.b[1].c.2", "(tget (get (get a.b 1) \"c\") 2)"},
		{"a?.b?.[1]?.2", "(tget (get? (get? a \"b\") 1) 2)"},
		{"f(1)(2)", "(call (f 1) 2)"},
		{"a.b(1)", "(call a.b 1)"},
		{"(x -> x)(1)", "(call (lambda [x] x) 1)"},
		{"(a, b) -> a + b", "(lambda [a b] (+ a b))"},
		{"() -> {}", "(lambda [] (dict))"},
		{"() -> {'a': 1}", `(lambda [] (dict "a":1))`},
		{"() -> {print(1)}", "(lambda [] (block (print 1)))"},
		{"x -> { let y := x\n return y }", "(lambda [x] (block (let y x) (return y)))"},
		{"(1, 2)", "(tuple 1 2)"},
		{"(1,)", "(tuple 1)"},
		{"(1)", "1"},
		{"[1, 2, ]", "(array 1 2)"},
		{"{'a': 1, b: 2,}", `(dict "a":1 b:2)`},
		{"{x}", "(placeholder x)"},
		{"true and FALSE and null", "(and true false <nil>)"},
		{"f'a{b}c'", `(concat "a" b "c")`},
		{"f'{b}'", "b"},
		{"f''", `""`},
		{"case when a then 1 when b then 2 else 3 end", "(multiIf a 1 b 2 3)"},
		{"case when a then 1 else 2 end", "(if a 1 2)"},
		{"case x when 1 then 'a' else 'b' end", `(transform x (array 1) (array "a") "b")`},
		{"interval 1 day", "(toIntervalDay 1)"},
		{"trim(both 'x' from s)", `(trim s "x")`},
		{"if(a, b, c)", "(if a b c)"},
		{"not(a)", "(not a)"},
		{"date.key + select.from", "(+ date.key select.from)"},
		{"`let` + \"fun\"", "(+ let fun)"},
	}
	for _, tt := range tests {
		e, err := parser.ParseExpr(tt.src)
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		if got := sexpr(e); got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

func TestParseProgram(t *testing.T) {
	tests := []struct{ src, want string }{
		{"let x := 1; let y\nx := 2", "(program (let x 1) (let y) (:= x 2))"},
		{"a.b[c] := 1\na.1 := 2", "(program (:= (get a.b c) 1) (:= (tget a 1) 2))"},
		{"if (a) b() else if (c) d() else { e() }", "(program (if a (b) (if c (d) (block (e)))))"},
		{"if (a, b, c)", "(program (if a b c))"},
		{"while (x) { x := x - 1 };", "(program (while x (block (:= x (- x 1)))))"},
		{"for (let i := 0; i < 3; i := i + 1) print(i)", "(program (for (let i 0) (< i 3) (:= i (+ i 1)) (print i)))"},
		{"for (;;) {}", "(program (for nil nil nil (block)))"},
		{"for (let v in a) {}", "(program (forin  v a (block)))"},
		{"for (let k, v in a) {}", "(program (forin k v a (block)))"},
		{"fun f(a, b) { return a }", "(program (fun f [a b] (block (return a))))"},
		{"fn g() { return }", "(program (fun g [] (block (return))))"},
		{"try { a() } catch (e: RetryError) { b() } catch { c() }", "(program (try (block (a)) (catch e RetryError (block (b))) (catch   (block (c)))))"},
		{"return\n", "(program (return))"},
		{"throw Error('x');", `(program (throw (Error "x")))`},
		{";;;", "(program)"},
		{"{ let a := 1 }", "(program (block (let a 1)))"},
		{"LET X := 1\nRETURN X", "(program (let X 1) (return X))"},
		{"print(1) print(2)", "(program (print 1) (print 2))"},
		// As in PostHog's parser, else after return is the returned name.
		{"if (a) return else b()", "(program (if a (return else)) (b))"},
		{"f(a, b -> a + b)", "(program (f (lambda [a b] (+ a b))))"},
		{"[x, -> 1]", "(program (array (lambda [x] 1)))"},
		{"{'a': 1}", `(program (dict "a":1))`},
		{"{a}", "(program (block a))"},
		{"x between 1", "(program x between 1)"},
		{"x is 1", "(program x is 1)"},
	}
	for _, tt := range tests {
		p, err := parser.ParseProgram(tt.src)
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		if got := sexpr(p); got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

func TestParseTemplate(t *testing.T) {
	tests := []struct{ src, want string }{
		{"Hello {person.name}!", `(concat "Hello " person.name "!")`},
		{"{event}", "event"},
		{"", `""`},
		{"no braces", `"no braces"`},
		{`\{x}`, `"{x}"`},
		{"{a}{b}", "(concat a b)"},
	}
	for _, tt := range tests {
		e, err := parser.ParseTemplate(tt.src)
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		if got := sexpr(e); got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
	if _, err := parser.ParseTemplate("{unclosed"); err == nil {
		t.Error("unclosed placeholder accepted")
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		src          string
		line, column int
		msg          string
	}{
		{"print(1\n}", 2, 1, "expected ')' after arguments, got '}'"},
		{"let := 1", 1, 5, "expected a name after 'let', got ':='"},
		{"let x = 1", 1, 7, "use ':='"},
		{"1 +", 1, 4, "unexpected end of input"},
		{"f(1 2)", 1, 5, "expected ')' after arguments, got '2'"},
		{"(1 2)", 1, 4, "expected ')' or ','"},
		{"{ let a := 1", 1, 13, "expected '}' to close the block opened at line 1, column 1"},
		{"a.", 1, 3, "expected a property name or index"},
		{"print(x between 1)", 1, 18, "expected 'and' in 'between … and …', got ')'"},
		{"fun (a) {}", 1, 5, "expected a name after 'fun'"},
		{"fun f(a) return a", 1, 10, "expected '{'"},
		{"try {} catch (e: ) {}", 1, 18, "expected a name for the error type"},
		{"a ? b", 1, 6, "expected ':'"},
		{"print(x is 1)", 1, 9, "expected ')' after arguments, got 'is'"},
		{"(select 1)", 1, 2, "SQL queries are not supported"},
		{"a as b", 1, 3, "aliases"},
		{"while x", 1, 7, "expected '(' after 'while'"},
		{"f'abc {x'", 1, 9, "unterminated"},
	}
	for _, tt := range tests {
		_, err := parser.ParseProgram(tt.src)
		var pe *parser.Error
		if !errors.As(err, &pe) {
			t.Errorf("%q: got %v, want *parser.Error", tt.src, err)
			continue
		}
		if pe.Line != tt.line || pe.Column != tt.column || !strings.Contains(pe.Msg, tt.msg) {
			t.Errorf("%q: got %d:%d %q, want %d:%d containing %q", tt.src, pe.Line, pe.Column, pe.Msg, tt.line, tt.column, tt.msg)
		}
	}
}

// TestSpeculativeParsingIsNotExponential parses inputs where every nesting
// level first tries one reading and falls back to another; without
// remembering failed attempts these take exponential time.
func TestSpeculativeParsingIsNotExponential(t *testing.T) {
	for _, src := range []string{
		strings.Repeat("{ ", 60) + "'a': 1" + strings.Repeat(" ; 2 }", 60),
		strings.Repeat("x between (", 60) + "1" + strings.Repeat(")", 60),
		strings.Repeat("y -> { x between f(", 40) + "1" + strings.Repeat(") ; 2 }", 40),
		strings.Repeat("{ a, b -> { ", 40) + "1" + strings.Repeat(" } ; 'k': 2 }", 40),
		strings.Repeat("a and (b or (not (c like (", 30) + "d" + strings.Repeat(" and ))))", 30),
		strings.Repeat("case when (interval (x between (", 30) + "1" + strings.Repeat(" like )))", 30),
		strings.Repeat("if (a) for (b in c) if (d) { ", 30) + "e" + strings.Repeat(" ; ) }", 30),
		strings.Repeat("f(x) -> if (g(y) -> ", 30) + "1" + strings.Repeat(") {", 30),
	} {
		_, _ = parser.ParseProgram(src)
	}

	// Every level fails as an expression only after its inner lambda has
	// been parsed, then parses again as a block.
	src := "let f := " + strings.Repeat("x -> { ", 60) + "a" + strings.Repeat(" ; c }", 60)
	if _, err := parser.ParseProgram(src); err != nil {
		t.Fatal(err)
	}
	src = strings.Repeat("let f := () -> { ", 60) + strings.Repeat(" }", 59)
	if _, err := parser.ParseProgram(src); err == nil {
		t.Fatal("unbalanced nested lambdas accepted")
	}
}
