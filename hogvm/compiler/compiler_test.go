package compiler_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/parser"
)

// code builds an expected element list; ints become int64 as the compiler
// emits them.
func code(elems ...any) []any {
	out := make([]any, len(elems))
	for i, e := range elems {
		if n, ok := e.(int); ok {
			out[i] = int64(n)
		} else {
			out[i] = e
		}
	}
	return out
}

func TestCompileExpr(t *testing.T) {
	tests := []struct {
		src  string
		want []any
	}{
		{"1 + 2", code(33, 2, 33, 1, 6, 38)},
		{"event = '$pageview' and properties.$browser = 'Chrome'", code(
			32, "$pageview", 32, "event", 1, 1, 11,
			32, "Chrome", 32, "$browser", 32, "properties", 1, 2, 11,
			3, 2, 38)},
		{"event.properties.`my key` ?? 'x'", code(32, "my key", 32, "properties", 32, "event", 1, 3, 47, 3, 35, 32, "x", 38)},
		{"-x", code(32, "x", 1, 1, 33, 0, 7, 38)},
		{"-1.5", code(34, -1.5, 38)},
		{"not a or b", code(32, "a", 1, 1, 5, 32, "b", 1, 1, 4, 2, 38)},
		{"a ? 1 : 2", code(32, "a", 1, 1, 40, 4, 33, 1, 39, 2, 33, 2, 38)},
		{"x is not null", code(31, 32, "x", 1, 1, 12, 38)},
		{"'a' || b || 'c'", code(32, "a", 32, "b", 1, 1, 32, "c", 2, "concat", 3, 38)},
		{"x not in (1, 2)", code(33, 1, 33, 2, 44, 2, 32, "x", 1, 1, 22, 38)},
		{"s !~* 'x'", code(32, "x", 32, "s", 1, 1, 26, 38)},
		{"a[1].b", code(32, "a", 1, 1, 33, 1, 45, 32, "b", 45, 38)},
		{"a?.b?.[2]", code(32, "a", 1, 1, 32, "b", 48, 33, 2, 48, 38)},
		{"(1, 2).1", code(33, 1, 33, 2, 44, 2, 33, 1, 45, 38)},
		{"inf", code(34, 0.0, 34, 1.0, 9, 38)},
		{"true", code(29, 38)},
		{"TRUE and False", code(29, 30, 3, 2, 38)},
		{"if(c, 1)", code(32, "c", 1, 1, 40, 4, 33, 1, 39, 1, 31, 38)},
		{"interval 2 day", code(33, 2, 2, "toIntervalDay", 1, 38)},
		{"trim(leading 'x' from s)", code(32, "s", 1, 1, 32, "x", 2, "trimLeft", 2, 38)},
		{"fetch('u')", code(32, "u", 2, "fetch", 1, 38)},
	}
	opts := compiler.Options{Functions: []string{"fetch"}}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, err := compiler.CompileExpr(tt.src, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Code, tt.want) {
				t.Errorf("got  %v\nwant %v", p.Code, tt.want)
			}
			if p.Version != bytecode.Version {
				t.Errorf("version %d", p.Version)
			}
		})
	}
}

func TestCompileTemplate(t *testing.T) {
	tests := []struct {
		src  string
		want []any
	}{
		{"Hello {event.properties.name}!", code(
			32, "Hello ", 32, "name", 32, "properties", 32, "event", 1, 3, 32, "!", 2, "concat", 3, 38)},
		{"{event.properties}", code(32, "properties", 32, "event", 1, 2, 38)},
		{"plain text", code(32, "plain text", 38)},
		{"", code(32, "", 38)},
		{`it's \{literal} {1 + 1}`, code(32, "it's {literal} ", 33, 1, 33, 1, 6, 2, "concat", 2, 38)},
		{`{'{'}`, code(32, "{", 38)},
		{`a\nb`, code(32, "a\nb", 38)},
		{`{f'x{1}'}`, code(32, "x", 33, 1, 2, "concat", 2, 38)},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, err := compiler.CompileTemplate(tt.src, compiler.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Code, tt.want) {
				t.Errorf("got  %v\nwant %v", p.Code, tt.want)
			}
		})
	}
}

func TestCompileProgramLowering(t *testing.T) {
	tests := []struct {
		name, src string
		want      []any
	}{
		{"let and pop", "let x := 1", code(33, 1, 35)},
		{"return", "return 1", code(33, 1, 38)},
		{"bare return", "return", code(31, 38)},
		{"assign", "let x := 1\nx := 2", code(33, 1, 33, 2, 37, 0, 35)},
		{"property assign", "let d := {}\nd.a.b := 1", code(42, 0, 36, 0, 32, "a", 45, 32, "b", 33, 1, 46, 35)},
		{"while", "while (a) x()", code(32, "a", 1, 1, 40, 6, 2, "x", 0, 35, 39, -12)},
		{"if else", "if (a) 1 else 2", code(32, "a", 1, 1, 40, 5, 33, 1, 35, 39, 3, 33, 2, 35)},
		{"lambda", "let f := x -> x", code(52, "lambda", 1, 0, 3, 36, 0, 38, 53, 0, 35)},
		{"closure", "let a := 1\nlet f := () -> a", code(33, 1, 52, "lambda", 0, 1, 3, 55, 0, 38, 53, 1, true, 0, 35, 57)},
		{"throw", "throw Error('x')", code(32, "x", 2, "Error", 1, 49)},
		{"empty statements", ";;", code()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := compiler.Compile(tt.src, compiler.Options{AllowUnknownFunctions: true})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Code, tt.want) {
				t.Errorf("got  %v\nwant %v", p.Code, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, src    string
		line, column int
		msg          string
	}{
		{"unclosed call", "print(1\n}", 2, 1, "expected ')' after arguments, got '}'"},
		{"unknown function", "let x := 1\n  foo(x)", 2, 3, "unknown function 'foo'"},
		{"redeclared", "let a := 1\nlet a := 2", 2, 1, "variable 'a' is already declared in this scope"},
		{"assign global", "event := 1", 1, 1, "globals can not be assigned to"},
		{"assign call", "let f := () -> 1\nf() := 1", 2, 1, "can not assign to this kind of expression"},
		{"assign constant", "1 := 2", 1, 1, "can not assign to this kind of expression"},
		{"index zero", "let a := [1]\nprint(a[0])", 2, 9, "array access starts from 1"},
		{"finally", "try { } catch { } finally { }", 1, 27, "finally blocks are not yet supported"},
		{"no catch", "try { print(1) }", 1, 1, "at least one catch"},
		{"bang", "print(!x)", 1, 7, "unexpected character '!'"},
		{"and and", "a && b", 1, 3, "unexpected character '&'"},
		{"unterminated string", "print('abc)", 1, 7, "unterminated string"},
		{"unterminated comment", "/* abc", 1, 1, "unterminated comment"},
		{"bad escape", `print('\q')`, 1, 8, `invalid escape sequence '\q'`},
		{"equals assignment", "let x = 1", 1, 7, "use ':='"},
		{"cohort", "x in cohort 2", 1, 1, "cohorts"},
		{"placeholder", "print({x})", 1, 7, "placeholders"},
		{"missing expr", "let x := ", 1, 10, "unexpected end of input"},
		{"missing paren", "if (a { }", 1, 7, "expected ')' after the if condition"},
		{"too many if args", "if(1, 2, 3, 4)", 1, 1, "if() takes 2 or 3 arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compiler.Compile(tt.src, compiler.Options{})
			var cerr *compiler.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got %v, want a *compiler.Error", err)
			}
			if cerr.Line != tt.line || cerr.Column != tt.column || !strings.Contains(cerr.Msg, tt.msg) {
				t.Errorf("got %d:%d %q, want %d:%d containing %q", cerr.Line, cerr.Column, cerr.Msg, tt.line, tt.column, tt.msg)
			}
		})
	}
}

func TestSyntaxErrorUnwrapsToParserError(t *testing.T) {
	_, err := compiler.CompileExpr("1 +", compiler.Options{})
	var perr *parser.Error
	if !errors.As(err, &perr) {
		t.Fatalf("got %T %v, want a *parser.Error inside", err, err)
	}
}

func TestUnknownFunctions(t *testing.T) {
	if _, err := compiler.Compile("postHogCapture({})", compiler.Options{}); err == nil {
		t.Error("host function compiled without being declared")
	}
	if _, err := compiler.Compile("postHogCapture({})", compiler.Options{Functions: []string{"postHogCapture"}}); err != nil {
		t.Errorf("declared host function: %v", err)
	}
	p, err := compiler.Compile("whatever(1)", compiler.Options{AllowUnknownFunctions: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := code(33, 1, 2, "whatever", 1, 35); !reflect.DeepEqual(p.Code, want) {
		t.Errorf("got %v want %v", p.Code, want)
	}
	// A local or captured name shadows the global function table.
	if _, err := compiler.Compile("let foo := x -> x\nfoo(1)\nfun g() { return foo(2) }", compiler.Options{}); err != nil {
		t.Errorf("local function: %v", err)
	}
}

func TestNestingLimit(t *testing.T) {
	for _, src := range []string{
		strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000),
		strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
		strings.Repeat("- ", 5000) + "x",
		strings.Repeat("not ", 5000) + "1",
		"1" + strings.Repeat(" + 1", 5000),
		"a" + strings.Repeat("[1]", 5000),
		strings.Repeat("{", 5000),
		strings.Repeat("if (a) ", 5000) + "1",
		strings.Repeat("f'{", 2000),
		strings.Repeat("x -> ", 5000) + "1",
		strings.Repeat("() -> {", 3000),
	} {
		_, err := compiler.Compile(src, compiler.Options{AllowUnknownFunctions: true})
		var cerr *compiler.Error
		if !errors.As(err, &cerr) {
			t.Errorf("%.20s…: got %v, want a compile error", src, err)
		}
	}
	// Moderate nesting is fine.
	src := strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200)
	if _, err := compiler.Compile("print("+src+")", compiler.Options{}); err != nil {
		t.Errorf("200 levels: %v", err)
	}
}

// TestExprAndTemplateOnReferenceVM evaluates compiled filters and templates
// with globals on PostHog's reference VM.
func TestExprAndTemplateOnReferenceVM(t *testing.T) {
	refVM(t)
	globals := map[string]any{
		"event": map[string]any{
			"event":      "$pageview",
			"properties": map[string]any{"$browser": "Chrome", "name": "Ada", "n": 3, "list": []any{1, 2}},
		},
		"person": map[string]any{"properties": map[string]any{"email": "ada@example.com"}},
	}
	tests := []struct {
		kind, src, want string
	}{
		{"expr", "event.event = '$pageview' and event.properties.$browser = 'Chrome'", "true"},
		{"expr", "event.event = '$pageview' and event.properties.$browser = 'Firefox'", "false"},
		{"expr", "event.properties.n between 1 and 5", "true"},
		{"expr", "event.properties.missing between 1 and 5", "null"},
		{"expr", "person.properties.email ilike '%@EXAMPLE.com'", "true"},
		{"expr", "event.properties.list[2] * 10", "20"},
		{"expr", "event.properties.nope ?? 'fallback'", "'fallback'"},
		{"expr", "arrayMap(x -> x * 2, event.properties.list)", "[2, 4]"},
		{"template", "Hello {event.properties.name}!", "'Hello Ada!'"},
		{"template", "{event.properties.list}", "[1, 2]"},
		{"template", "{event.properties.n}", "3"},
		{"template", `n+1={event.properties.n + 1}, \{kept}, quote's`, `'n+1=4, {kept}, quote\'s'`},
		{"template", "{person.properties.email} / {event.properties.missing}", "'ada@example.com / '"},
	}
	var runs []*refRun
	for _, tt := range tests {
		var p *bytecode.Program
		var err error
		if tt.kind == "expr" {
			p, err = compiler.CompileExpr(tt.src, compiler.Options{})
		} else {
			p, err = compiler.CompileTemplate(tt.src, compiler.Options{})
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		runs = append(runs, &refRun{name: tt.kind, prog: p, globals: globals})
	}
	runRef(t, runs)
	for i, tt := range tests {
		if r := runs[i]; r.result != tt.want || r.err != "" {
			t.Errorf("%s %q: got %s (error %q), want %s", tt.kind, tt.src, r.result, r.err, tt.want)
		}
	}
}

func TestWarnings(t *testing.T) {
	var got []compiler.Warning
	opts := compiler.Options{
		Globals: []string{"event", "inputs"},
		Warn:    func(w compiler.Warning) { got = append(got, w) },
	}
	src := "let x := event.properties.a\nx = 2\nprint(inputs.url, persn.id)"
	if _, err := compiler.Compile(src, opts); err != nil {
		t.Fatal(err)
	}
	want := []compiler.Warning{
		{Line: 2, Column: 1, Msg: "this compares with '=' and discards the result; use ':=' to assign"},
		{Line: 3, Column: 19, Msg: "unknown global variable 'persn'"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// Without Globals, globals are not checked.
	got = nil
	opts.Globals = nil
	if _, err := compiler.Compile(src, opts); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Errorf("got %+v, want only the '=' warning", got)
	}
}
