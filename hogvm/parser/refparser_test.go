package parser_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hogwire/hogwire/hogvm/ast"
	"github.com/hogwire/hogwire/hogvm/lexer"
	"github.com/hogwire/hogwire/hogvm/parser"
	"github.com/hogwire/hogwire/hogvm/refvm"
)

// refParser locates node and PostHog's parser installed by
// ../compiler/testdata/refvm/install.sh, or skips the test.
func refParser(t *testing.T) (node, dir string) {
	t.Helper()
	node, dir, err := refvm.Find(refvm.Parser)
	if err != nil {
		t.Skip(err)
	}
	return node, dir
}

// refDivergences are inputs on which we knowingly differ from PostHog's
// parser, with the reason.
var refDivergences = map[string]string{}

// hasBigInt reports an integer literal beyond 64 bits. PostHog's WebAssembly
// parser writes those as strings in its JSON; we read them as floats, as a
// JavaScript VM does, so such programs are not compared.
func hasBigInt(src string) bool {
	toks, err := lexer.Tokenize(src, lexer.Options{})
	if err != nil {
		return false
	}
	for _, t := range toks {
		if t.Kind == lexer.Float && !strings.ContainsAny(t.Raw, ".eE") || t.Kind == lexer.Float && strings.ContainsAny(t.Raw, "xX") {
			return true
		}
	}
	return false
}

// TestParserMatchesReference parses every test program, the fuzz corpus and
// a list of tricky snippets with our parser and PostHog's, and requires the
// same verdict (accept or reject) and, when both accept, the same tree.
func TestParserMatchesReference(t *testing.T) {
	node, dir := refParser(t)
	sources := referenceSources(t)
	programs := len(sources)
	sources = append(sources, templates...)
	tmp := t.TempDir()
	var files []string
	for i, src := range sources {
		ext := ".hog"
		if i >= programs {
			ext = ".tpl"
		}
		f := filepath.Join(tmp, strconv.Itoa(i)+ext)
		if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	cmd := exec.Command(node, append([]string{filepath.Join("testdata", "refparser", "parse.js")}, files...)...)
	cmd.Env = append(os.Environ(), "HOGWIRE_REFVM_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference parser failed: %v\n%s", err, out)
	}
	compared := 0
	for i, src := range sources {
		b, err := os.ReadFile(files[i] + ".ast")
		if err != nil {
			t.Fatal(err)
		}
		want := string(b)
		got := "error"
		if i < programs {
			if p, err := parser.ParseProgram(src); err == nil {
				got = canon(p)
			}
		} else if e, err := parser.ParseTemplate(src); err == nil {
			got = canon(e)
		}
		if strings.HasPrefix(want, "unsupported") {
			// A construct outside Hog (SQL, HogQLX, …): we must reject it.
			if got != "error" {
				t.Errorf("%.80q: PostHog's tree has %s; we accept it as %s", src, want, got)
			}
			continue
		}
		if i < programs && hasBigInt(src) {
			continue
		}
		compared++
		if got == want {
			continue
		}
		if reason, ok := refDivergences[src]; ok {
			t.Logf("%.80q: known divergence: %s", src, reason)
			continue
		}
		t.Errorf("%.200q:\n ours: %s\n  ref: %s", src, got, want)
	}
	t.Logf("compared %d of %d programs", compared, len(sources))
}

// referenceSources lists the programs to compare. PostHog's WebAssembly
// parser is slow (about 0.1 ms per byte), so the list leaves out PostHog's
// own test programs, whose bytecode golden_test.go already compares, and
// long fuzz inputs.
func referenceSources(t *testing.T) []string {
	const maxFuzzLen = 300
	var sources []string
	for _, pattern := range []string{"../compiler/testdata/programs/*.hog", "../compiler/testdata/bench/*.hog"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sources = append(sources, string(b))
		}
	}
	for _, pattern := range []string{"testdata/fuzz/FuzzParse/*", "../compiler/testdata/fuzz/FuzzCompile/*"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := corpusString(string(b)); ok && utf8.ValidString(s) && len(s) <= maxFuzzLen {
				sources = append(sources, s)
			}
		}
	}
	return append(sources, snippets...)
}

// corpusString decodes a one-string entry of a Go fuzz corpus file.
func corpusString(file string) (string, bool) {
	body, ok := strings.CutPrefix(file, "go test fuzz v1\n")
	if !ok {
		return "", false
	}
	body = strings.TrimSpace(body)
	q, ok := strings.CutPrefix(body, "string(")
	if !ok || !strings.HasSuffix(q, ")") {
		return "", false
	}
	s, err := strconv.Unquote(q[:len(q)-1])
	return s, err == nil
}

var snippets = []string{
	"a.b[1].c.2", "a?.b?.[1]?.2", "x -> x * 2", "(a, b) -> a + b", "() -> {}", "() -> {'a': 1}",
	"() -> {print(1)}", "x -> { let y := x; return y }", "f(1)(2)", "(f)(1)", "-x", "-1", "- 1.5", "+1",
	"not a = b", "not a and b", "a ?? b ?? c", "a ?? b = c", "c ? a : d ? e : f", "x between 1 and 2",
	"x not between 1 + 1 and y", "a || b || 'c'", "x is null or y is not null", "a not like b", "a not ilike b",
	"a not in b", "a =~ b", "a ~ b", "a !~ b", "a =~* b", "a ~* b", "a !~* b", "a <> b", "a == b",
	"event.properties.$browser", "`a b`.`c``d`", "\"x y\".z", "true and FALSE and null",
	"f'a{b}c'", "f'{b}'", "f''", "f'\\{x}'", "f'it''s'", "case when a then 1 when b then 2 else 3 end",
	"case when a then 1 else 2 end", "interval 1 day", "trim(both 'x' from s)", "if(a, b, c)", "not(a)",
	"let x := 1; let y\nx := 2", "a.b[c] := 1\na.1 := 2", "if (a) b() else if (c) d() else { e() }",
	"if (a, b, c)", "while (x) { x := x - 1 };", "for (let i := 0; i < 3; i := i + 1) print(i)",
	"for (;;) {}", "for (let v in a) {}", "for (let k, v in a) {}", "fun f(a, b) { return a }",
	"fn g() { return }", "try { a() } catch (e: RetryError) { b() } catch { c() }", "return\n",
	"throw Error('x');", ";;;", "{ let a := 1 }", "LET X := 1\nRETURN X", "print(1) print(2)",
	"if (a) return else b()", "let date := 1\nprint(date)", "print(select.from)", "1.5e3 + .5 + 2.",
	"[1, 2, ]", "{'a': 1, b: 2,}", "(1,)", "(1)", "tuple()", "print('\\n\\t\\\\')",
	"let x := 1\nx = 2", "a.1.2", "arr[-1]", "print(-1 - -2)", "a -1", "1 + 2 * 3 - 4 / 5 % 6",
	"x -> y -> x + y", "print(x -> x)(1)", "if (x) ; else ;", "while (a) ;", "print(a, )",
	"try { } catch (e) { } finally { }", "let a := {}", "print({})", "return {}",
	"print(a ? b : c ? d : e)", "not not a", "- - a", "-a.b", "-a[1]", "-(1)", "a.b.c(1).d", "a?.b(1)", "f()()",
	"(a)(b)(c)", "let select := 1\nprint(select)", "print(limit, key.id, order.by)", "true.x", "TRUE()",
	"a.1.2.3", "{a: b}", "{}", "f'{a}{b}'", "f'{ {} }'", "f'a''b'", "x = 1 = 2", "a < b < c", "a in b in c",
	"a ?? b ? c : d", "a and b between c and d", "x between a and b and c", "not x between a and b",
	"a or b ?? c", "case when a then b end", "return;", "return 1;", "fn f() {}", "fun f(a,) {}",
	"for (i := 0; i < 1; i := i + 1) {}", "for (print(1); false; print(2)) {}", "while (true) {}",
	"try {} catch (e) {} catch (f: X) {}", "throw;", "throw", "print(1);;print(2)",
	"let x := {'a': {'b': 1}}.a.b", "x -> {}", "() -> { return 1 }", "(x) -> x", "(x,) -> x", "f'{x -> x}'",
	"a.b.2.c", "a?.b.c", "$x + _ + x$1", "1e5 + 1E+5 + 0.5e-3 + 5. + .5e2", "0x1F", "inf + -inf + nan",
	"NULL + Null", "\"double\".\"quoted\"", "`a`.`b`", "a.`b c`.d", "if (x) { } else { }",
	"if (a) if (b) c else d", "a.b.c := 1", "(a).b := 1", "f() := 1", "1 := 2", "a[1] := 2",
	"x := y := 1", "let x := 1 let y := 2", "print(x) -- comment\nprint(y) // c\n/* c */ print(z)",
	"a == b != c", "a like b like c", "a ~* b", "print(a, b, )", "f(,)", "[,]", "(,)", "let", "let x :=",
	"a -> ", "(a, b) -> ", "fun f() { fun g() { return 1 } return g() }", "a.b?.[c]?.d?.1",
	"let f := () -> {'a': 1}.b", "let f := () -> {x} + 1", "f(() -> {x}, 2)", "a and", "a or", "a like", "not",
	"not not", "case", "case 0", "interval", "interval 1", "x in", "x not in", "x not", "1 .5", "1 . 5", "-1 .5",
	"0 .A", "*", "a * * b", "10000000000000000000", "0X10000000000000000", "a = not", "(0)''ilike", "trim(leading",
	"a --1", "a - -1", "a /* x */ + 1", "/* a /* b */ 1", "'a''b' || 'c\\'d'", "$a.$b", "a.$1", "f'{'}'}'",
	"f'{f'{f'x'}'}'", "x?.1.2", "x?.[1][2]", "x ?. y", "a?.b?.c", "[1, 2][-1]", "{'a': 1}['a']", "(1, 2).2",
	"print(...)", "a := b", "a.b := c.d", "a[b] := c", "let a := b := c", "print(1)\n(2)", "let a := 1\n[1]",
	"return\n1", "x = 1\n-1", "fn(a) -> 1", "fun f() -> 1", "let f := fun", "print(true, TRUE, tRuE, false)",
	"print(null, NULL, nUlL)", "let `true` := 1\nprint(`true`)", "print(\"true\")", "let if := 1",
	"let select := 1", "let let := 1", "a like b escape c", "a in (1, 2)", "a in [1]", "not a in b",
	"a ? b : c ? d : e ? f : g", "a ?? b ?? c ?? d", "(a ?? b) ?? c", "a -> b ?? c", "x -> x ? 1 : 2",
	"1 + 2 -> 3", "f(x) -> 1", "(f(x)) -> 1", "print(1, 2,)", "print(,1)", "[1, ,2]", "{,}", "{'a' 1}",
	"{'a': 1 'b': 2}", "try { } catch (e: A.B) { }", "try { } catch (a.b) { }", "for (let a, b, c in x) {}",
	"for (let a in x, y) {}", "for (a in x) {}", "while () {}", "if () {}", "if (a) else b", "fun f(a b) {}",
	"fun f(1) {}", "let 1 := 2", "let a.b := 1", "throw throw", "return return", "print(return)",
	"x := 1 := 2", "a.1 := 2", "a?.b := 1", "a?.[1] := 2", "(a, b) := (1, 2)", "[a] := [1]",
	"**", "****", "a * * * b", "-.0", "-0.0",
	// Unicode whitespace separates tokens (PostHog's Customer.io code has a
	// no-break space); a zero-width space does not.
	"let\u00a0x := 1\u3000+\u20092", "\ufeffprint(1)", "a\u2028b\u2029c\u0085d\u1680e", "a\u200bb",
	// Rejected by both.
	"print(1", "let := 1", "a &&& b", "1 +", "f(1 2)", "{ let a := 1", "a.", "x between 1",
	"fun (a) {}", "try {} catch (e: ) {}", "a ? b", "x is 1",
}

var templates = []string{
	"", "plain", "Hello {person.properties.name}!", "{event}", "{a}{b}", `\{x}`, "it's", `a\'b`, `a\nb\tc`,
	`\q`, "a}b", "{'}'}", "{f'{x}'}", "{x ?? 'none'}", "{ {'a': 1} }", "{", "{x", "x}", "{}", "\\{x}",
	"{event.properties.$current_url} {person.properties.`first name`}", "{1 + 2 * 3} {x between 1 and 2}",
}

// canon renders our tree in the form parse.js renders PostHog's.
func canon(n ast.Node) string {
	h := func(s string) string { return hex.EncodeToString([]byte(s)) }
	list := func(parts ...string) string { return "(" + strings.Join(parts, " ") + ")" }
	all := func(head string, es []ast.Expr) string {
		parts := []string{head}
		for _, e := range es {
			parts = append(parts, canon(e))
		}
		return list(parts...)
	}
	stmts := func(head string, ss []ast.Stmt) string {
		parts := []string{head}
		for _, s := range ss {
			parts = append(parts, canon(s))
		}
		return list(parts...)
	}
	opt := func(n ast.Node, isNil bool) string {
		if isNil {
			return "none"
		}
		return canon(n)
	}
	forClause := func(s ast.Stmt) string {
		switch s := s.(type) {
		case nil:
			return "none"
		case *ast.ExprStmt:
			return canon(s.Expr)
		}
		return canon(s)
	}
	hexOrNone := func(s string) string {
		if s == "" {
			return "none"
		}
		return h(s)
	}
	switch n := n.(type) {
	case *ast.Program:
		return stmts("program", n.Stmts)
	case *ast.Block:
		return stmts("block", n.Stmts)
	case *ast.ExprStmt:
		return list("expr", canon(n.Expr))
	case *ast.VarDecl:
		return list("let", h(n.Name), opt(n.Expr, n.Expr == nil))
	case *ast.Assign:
		return list("assign", canon(n.Left), canon(n.Right))
	case *ast.Return:
		return list("return", opt(n.Expr, n.Expr == nil))
	case *ast.Throw:
		return list("throw", canon(n.Expr))
	case *ast.If:
		return list("if", canon(n.Cond), canon(n.Then), opt(n.Else, n.Else == nil))
	case *ast.While:
		return list("while", canon(n.Cond), canon(n.Body))
	case *ast.For:
		return list("for", forClause(n.Init), opt(n.Cond, n.Cond == nil), forClause(n.Incr), canon(n.Body))
	case *ast.ForIn:
		return list("forin", hexOrNone(n.KeyVar), h(n.ValueVar), canon(n.Expr), canon(n.Body))
	case *ast.Function:
		var ps []string
		for _, p := range n.Params {
			ps = append(ps, h(p))
		}
		return list("fun", h(n.Name), list(ps...), canon(n.Body))
	case *ast.TryCatch:
		parts := []string{"try", canon(n.Try)}
		for _, c := range n.Catches {
			parts = append(parts, list("catch", hexOrNone(c.Var), hexOrNone(c.Type), canon(c.Body)))
		}
		return list(append(parts, opt(n.Finally, n.Finally == nil))...)
	case *ast.Constant:
		switch v := n.Value.(type) {
		case nil:
			return "null"
		case string:
			return "s" + h(v)
		case bool:
			return strconv.FormatBool(v)
		case int64:
			return "n" + strconv.FormatInt(v, 10)
		case float64:
			if v == 0 {
				v = 0 // JSON has no negative zero
			}
			b, err := json.Marshal(v)
			if err != nil {
				// The reference parser's JSON has no Infinity or NaN and
				// writes them as strings.
				switch {
				case v > 0:
					return "s" + h("Infinity")
				case v < 0:
					return "s" + h("-Infinity")
				}
				return "s" + h("NaN")
			}
			return "n" + string(b)
		}
	case *ast.Field:
		parts := []string{"field"}
		for _, c := range n.Chain {
			parts = append(parts, h(c))
		}
		return list(parts...)
	case *ast.ArrayAccess:
		head := "get"
		if n.Nullish {
			head = "get?"
		}
		return list(head, canon(n.Array), canon(n.Property))
	case *ast.TupleAccess:
		head := "tget"
		if n.Nullish {
			head = "tget?"
		}
		return list(head, canon(n.Tuple), strconv.FormatInt(n.Index, 10))
	case *ast.Call:
		return all("call "+h(n.Name), n.Args)
	case *ast.ExprCall:
		return all("exprcall "+canon(n.Callee), n.Args)
	case *ast.And:
		return all("and", n.Exprs)
	case *ast.Or:
		return all("or", n.Exprs)
	case *ast.Not:
		return list("not", canon(n.Expr))
	case *ast.Compare:
		ops := [...]string{"==", "!=", ">", ">=", "<", "<=", "like", "ilike", "not like", "not ilike", "in", "not in",
			"=~", "!~", "=~*", "!~*", "in cohort", "not in cohort"}
		return list("cmp", `"`+ops[n.Op]+`"`, canon(n.Left), canon(n.Right))
	case *ast.Arith:
		return list("arith", `"`+string("+-*/%"[n.Op])+`"`, canon(n.Left), canon(n.Right))
	case *ast.Between:
		return list("between", strconv.FormatBool(n.Negated), canon(n.Expr), canon(n.Low), canon(n.High))
	case *ast.Lambda:
		var ps []string
		for _, p := range n.Params {
			ps = append(ps, h(p))
		}
		return list("lambda", list(ps...), canon(n.Body))
	case *ast.Placeholder:
		return list("placeholder", canon(n.Expr))
	case *ast.Dict:
		parts := []string{"dict"}
		for _, kv := range n.Items {
			parts = append(parts, list(canon(kv.Key), canon(kv.Value)))
		}
		return list(parts...)
	case *ast.Array:
		return all("array", n.Exprs)
	case *ast.Tuple:
		return all("tuple", n.Exprs)
	}
	return "?"
}
