// Package compiler turns Hog source into bytecode in PostHog's format
// (["_H", 1, …]), lowering every construct the way PostHog's compiler does
// so that the result runs unchanged on PostHog's VMs and on ours.
//
// Three entry points cover the three kinds of Hog text in a destination:
// Compile for a program (the destination's code), CompileExpr for a single
// expression (a filter), and CompileTemplate for a template string (an
// input value such as "Hello {person.properties.name}").
//
// Calls resolve at compile time: a name is a local, a captured variable, a
// standard-library function, or a host function listed in
// Options.Functions. Calling any other name is a compile error (PostHog's
// editor reports the same thing as an error, "Hog function `x` is not
// implemented"), unless Options.AllowUnknownFunctions is set. Unknown
// global variables are not errors: they are read from the globals at run
// time.
//
// For PostHog's test programs the bytecode is identical to PostHog's .hoge
// snapshots. It differs only where PostHog's compiler emits code that
// misbehaves, or that JSON cannot carry:
//
//   - if(c, x) and multiIf(…) without a default push null when no branch is
//     taken (PostHog pushes nothing, unbalancing the stack).
//   - An expression used as a for-loop initializer or increment has its
//     value popped, and a missing for-loop condition means true.
//   - A typed catch clause with a variable other than e (catch (err: T))
//     skips its own scope cleanup correctly when the type does not match.
//   - x between a and b inside a larger expression or a let initializer
//     keeps its hidden locals at the right stack slots.
//   - inf and nan literals compile to 1.0/0.0 and 0.0/0.0, since JSON has no
//     Infinity or NaN.
//   - if() with more than three arguments, and tuple access t.0, are
//     compile errors rather than silently wrong code.
package compiler

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/hogwire/hogwire/hogvm/ast"
	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/parser"
)

// Options configures a compilation.
type Options struct {
	// Functions names host functions that programs may call besides the
	// standard library, such as "fetch" or "postHogCapture".
	Functions []string
	// AllowUnknownFunctions compiles a call of an unknown name to a plain
	// global call (which fails at run time unless the VM knows the name)
	// instead of reporting an error.
	AllowUnknownFunctions bool
	// Globals names the global variables the program may read, such as
	// "event" and "inputs". When it is set, reading any other global is
	// reported to Warn.
	Globals []string
	// Warn, if set, receives problems that do not stop compilation, such
	// as `x = 1` written as a statement (a comparison whose result is
	// discarded, where `x := 1` was meant).
	Warn func(Warning)
}

// Warning is a problem that does not stop compilation. Line and Column are
// 1-based.
type Warning struct {
	Line, Column int
	Msg          string
}

// Error is a compile error, syntax errors included. Line and Column are
// 1-based; Msg is meant for the user.
type Error struct {
	Line, Column int
	Msg          string
	// Err is the underlying *parser.Error for syntax errors.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Compile compiles a Hog program. The program's result is the value of its
// top-level return statement, or null.
func Compile(src string, opts Options) (*bytecode.Program, error) {
	prog, err := parser.ParseProgram(src)
	if err != nil {
		return nil, wrapSyntax(err)
	}
	return CompileProgram(prog, opts)
}

// CompileExpr compiles a single expression, such as a destination filter.
// The program returns the expression's value.
func CompileExpr(src string, opts Options) (*bytecode.Program, error) {
	e, err := parser.ParseExpr(src)
	if err != nil {
		return nil, wrapSyntax(err)
	}
	return CompileExprAST(e, opts)
}

// CompileTemplate compiles a template string: literal text with {expr}
// placeholders (\{ writes a literal brace). The program returns the text
// with each placeholder replaced by its value, as concat() renders it; a
// template that is exactly one placeholder, such as "{event.properties}",
// returns that value with its type kept.
func CompileTemplate(s string, opts Options) (*bytecode.Program, error) {
	e, err := parser.ParseTemplate(s)
	if err != nil {
		return nil, wrapSyntax(err)
	}
	return CompileExprAST(e, opts)
}

// CompileProgram compiles a parsed program.
func CompileProgram(prog *ast.Program, opts Options) (p *bytecode.Program, err error) {
	c := newCompiler(opts)
	defer c.recover(&err)
	c.program(prog)
	return &bytecode.Program{Version: bytecode.Version, Code: c.code}, nil
}

// CompileExprAST compiles a parsed expression into a program returning its
// value.
func CompileExprAST(e ast.Expr, opts Options) (p *bytecode.Program, err error) {
	c := newCompiler(opts)
	defer c.recover(&err)
	c.expr(e)
	c.op(bytecode.Return)
	return &bytecode.Program{Version: bytecode.Version, Code: c.code}, nil
}

func wrapSyntax(err error) error {
	var pe *parser.Error
	if errors.As(err, &pe) {
		return &Error{Line: pe.Line, Column: pe.Column, Msg: pe.Msg, Err: pe}
	}
	return err
}

type local struct {
	name     string
	depth    int
	captured bool
	// hidden locals are compiler temporaries that no name can refer to.
	hidden bool
}

type upvalue struct {
	index   int
	isLocal bool
}

// function is the state of one function being compiled (the program is the
// outermost one).
type function struct {
	enclosing  *function
	locals     []local
	upvalues   []upvalue
	scopeDepth int
	// temps counts values an enclosing expression has pushed above the
	// locals, which matters only where an expression declares hidden
	// locals of its own (between).
	temps int
}

type compiler struct {
	host    []string
	allow   bool
	globals []string
	warn    func(Warning)
	fn      *function
	code    []any
}

type bailout struct{ err *Error }

func newCompiler(opts Options) *compiler {
	return &compiler{
		host: opts.Functions, allow: opts.AllowUnknownFunctions, globals: opts.Globals, warn: opts.Warn,
		fn: &function{}, code: make([]any, 0, 64),
	}
}

func (c *compiler) recover(err *error) {
	if r := recover(); r != nil {
		b, ok := r.(bailout)
		if !ok {
			panic(r)
		}
		*err = b.err
	}
}

func (c *compiler) warnf(n ast.Node, format string, args ...any) {
	if c.warn != nil {
		p := n.Position()
		c.warn(Warning{Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)})
	}
}

func (c *compiler) failf(n ast.Node, format string, args ...any) {
	p := n.Position()
	panic(bailout{&Error{Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)}})
}

// ---- emission ----

func (c *compiler) op(o bytecode.Op, operands ...any) {
	c.code = append(c.code, int64(o))
	c.code = append(c.code, operands...)
}

// capture compiles f into a separate slice. PostHog's compiler builds
// code bottom-up and sometimes compiles parts in a different order than
// it emits them; the order decides upvalue numbering, so it is kept.
func (c *compiler) capture(f func()) []any {
	saved := c.code
	c.code = make([]any, 0, 32)
	f()
	out := c.code
	c.code = saved
	return out
}

func (c *compiler) emit(code []any) { c.code = append(c.code, code...) }

// withTemps compiles f as an operand that has n more values below it on
// the stack than the enclosing expression.
func (c *compiler) withTemps(n int, f func()) {
	c.fn.temps += n
	f()
	c.fn.temps -= n
}

// pending compiles the value of the local declared last, whose stack slot
// does not exist until the value has been pushed.
func (c *compiler) pending(f func()) { c.withTemps(-1, f) }

// ---- scopes and variables ----

func (c *compiler) startScope() { c.fn.scopeDepth++ }

func (c *compiler) endScope() []any {
	f := c.fn
	f.scopeDepth--
	var out []any
	for len(f.locals) > 0 {
		l := f.locals[len(f.locals)-1]
		if l.depth <= f.scopeDepth {
			break
		}
		f.locals = f.locals[:len(f.locals)-1]
		if l.captured {
			out = append(out, int64(bytecode.CloseUpvalue))
		} else {
			out = append(out, int64(bytecode.Pop))
		}
	}
	return out
}

func (c *compiler) declare(n ast.Node, name string) int {
	f := c.fn
	for i := len(f.locals) - 1; i >= 0; i-- {
		l := f.locals[i]
		if l.depth < f.scopeDepth {
			break
		}
		if !l.hidden && l.name == name {
			c.failf(n, "variable '%s' is already declared in this scope", name)
		}
	}
	f.locals = append(f.locals, local{name: name, depth: f.scopeDepth})
	return len(f.locals) - 1
}

func (c *compiler) declareHidden() int {
	f := c.fn
	f.locals = append(f.locals, local{depth: f.scopeDepth, hidden: true})
	return len(f.locals) - 1
}

func (f *function) resolveLocal(name string) int {
	for i := len(f.locals) - 1; i >= 0; i-- {
		if !f.locals[i].hidden && f.locals[i].name == name {
			return i
		}
	}
	return -1
}

func (f *function) addUpvalue(index int, isLocal bool) int {
	for i, u := range f.upvalues {
		if u.index == index && u.isLocal == isLocal {
			return i
		}
	}
	f.upvalues = append(f.upvalues, upvalue{index: index, isLocal: isLocal})
	return len(f.upvalues) - 1
}

func (f *function) resolveUpvalue(name string) int {
	if f.enclosing == nil {
		return -1
	}
	if i := f.enclosing.resolveLocal(name); i >= 0 {
		f.enclosing.locals[i].captured = true
		return f.addUpvalue(i, true)
	}
	if up := f.enclosing.resolveUpvalue(name); up >= 0 {
		return f.addUpvalue(up, false)
	}
	return -1
}

// ---- statements ----

func (c *compiler) program(p *ast.Program) {
	c.startScope()
	for _, s := range p.Stmts {
		c.stmt(s)
	}
	c.emit(c.endScope())
}

func (c *compiler) block(b *ast.Block) {
	c.startScope()
	for _, s := range b.Stmts {
		c.stmt(s)
	}
	c.emit(c.endScope())
}

func (c *compiler) stmt(s ast.Stmt) {
	switch s := s.(type) {
	case *ast.Block:
		c.block(s)
	case *ast.ExprStmt:
		if cmp, ok := s.Expr.(*ast.Compare); ok && cmp.Op == ast.Eq {
			c.warnf(s, "this compares with '=' and discards the result; use ':=' to assign")
		}
		c.expr(s.Expr)
		c.op(bytecode.Pop)
	case *ast.VarDecl:
		c.varDecl(s)
	case *ast.Assign:
		c.assign(s)
	case *ast.Return:
		if s.Expr != nil {
			c.expr(s.Expr)
		} else {
			c.op(bytecode.Null)
		}
		c.op(bytecode.Return)
	case *ast.Throw:
		c.expr(s.Expr)
		c.op(bytecode.Throw)
	case *ast.If:
		cond := c.capture(func() { c.expr(s.Cond) })
		then := c.capture(func() { c.stmt(s.Then) })
		var els []any
		if s.Else != nil {
			els = c.capture(func() { c.stmt(s.Else) })
		}
		c.ifElse(cond, then, els, s.Else != nil)
	case *ast.While:
		cond := c.capture(func() { c.expr(s.Cond) })
		body := c.capture(func() { c.stmt(s.Body) })
		c.emit(cond)
		c.op(bytecode.JumpIfFalse, int64(len(body)+2))
		c.emit(body)
		c.op(bytecode.Jump, int64(-(len(cond) + 2 + len(body) + 2)))
	case *ast.For:
		c.forStmt(s)
	case *ast.ForIn:
		c.forIn(s)
	case *ast.Function:
		c.function(s)
	case *ast.TryCatch:
		c.tryCatch(s)
	case *ast.Program:
		c.program(s)
	default:
		c.failf(s, "unsupported statement %T", s)
	}
}

func (c *compiler) ifElse(cond, then, els []any, hasElse bool) {
	c.emit(cond)
	if hasElse && len(els) > 0 {
		c.op(bytecode.JumpIfFalse, int64(len(then)+2))
		c.emit(then)
		c.op(bytecode.Jump, int64(len(els)))
		c.emit(els)
		return
	}
	c.op(bytecode.JumpIfFalse, int64(len(then)))
	c.emit(then)
}

func (c *compiler) varDecl(s *ast.VarDecl) {
	// Declared before the value is compiled, as PostHog does, so that a
	// lambda assigned with let can call itself.
	c.declare(s, s.Name)
	if s.Expr != nil {
		c.pending(func() { c.expr(s.Expr) })
	} else {
		c.op(bytecode.Null)
	}
}

func (c *compiler) forStmt(s *ast.For) {
	if s.Init != nil {
		c.startScope()
	}
	var init, cond, incr, body []any
	if s.Init != nil {
		init = c.capture(func() { c.stmt(s.Init) })
	}
	if s.Cond != nil {
		cond = c.capture(func() { c.expr(s.Cond) })
	} else {
		cond = []any{int64(bytecode.True)}
	}
	if s.Incr != nil {
		incr = c.capture(func() { c.stmt(s.Incr) })
	}
	body = c.capture(func() { c.stmt(s.Body) })
	c.emit(init)
	c.emit(cond)
	c.op(bytecode.JumpIfFalse, int64(len(body)+len(incr)+2))
	c.emit(body)
	c.emit(incr)
	c.op(bytecode.Jump, int64(-(len(incr) + len(body) + 2 + len(cond) + 2)))
	if s.Init != nil {
		c.emit(c.endScope())
	}
}

func (c *compiler) forIn(s *ast.ForIn) {
	c.startScope()
	exprLocal := c.declare(s, "__H_expr_H__")
	c.pending(func() { c.expr(s.Expr) })
	keysLocal := -1
	if s.KeyVar != "" {
		keysLocal = c.declare(s, "__H_keys_H__")
		c.op(bytecode.GetLocal, int64(exprLocal))
		c.op(bytecode.CallGlobal, "keys", int64(1))
	}
	valuesLocal := c.declare(s, "__H_values_H__")
	c.op(bytecode.GetLocal, int64(exprLocal))
	c.op(bytecode.CallGlobal, "values", int64(1))
	indexLocal := c.declare(s, "__H_index_H__")
	c.op(bytecode.Integer, int64(1))
	limitLocal := c.declare(s, "__H_limit_H__")
	c.op(bytecode.GetLocal, int64(valuesLocal))
	c.op(bytecode.CallGlobal, "length", int64(1))
	keyLocal := -1
	if s.KeyVar != "" {
		keyLocal = c.declare(s, s.KeyVar)
		c.op(bytecode.Null)
	}
	valueLocal := c.declare(s, s.ValueVar)
	c.op(bytecode.Null)

	cond := []any{int64(bytecode.GetLocal), int64(limitLocal), int64(bytecode.GetLocal), int64(indexLocal), int64(bytecode.LtEq)}
	body := c.capture(func() {
		if keyLocal >= 0 {
			c.op(bytecode.GetLocal, int64(keysLocal))
			c.op(bytecode.GetLocal, int64(indexLocal))
			c.op(bytecode.GetProperty)
			c.op(bytecode.SetLocal, int64(keyLocal))
		}
		c.op(bytecode.GetLocal, int64(valuesLocal))
		c.op(bytecode.GetLocal, int64(indexLocal))
		c.op(bytecode.GetProperty)
		c.op(bytecode.SetLocal, int64(valueLocal))
		c.stmt(s.Body)
	})
	incr := []any{int64(bytecode.GetLocal), int64(indexLocal), int64(bytecode.Integer), int64(1),
		int64(bytecode.Plus), int64(bytecode.SetLocal), int64(indexLocal)}
	c.emit(cond)
	c.op(bytecode.JumpIfFalse, int64(len(body)+len(incr)+2))
	c.emit(body)
	c.emit(incr)
	c.op(bytecode.Jump, int64(-(len(incr) + len(body) + 2 + len(cond) + 2)))
	c.emit(c.endScope())
}

func (c *compiler) function(s *ast.Function) {
	c.declare(s, s.Name)
	body := s.Body
	if n := len(body.Stmts); n == 0 || !isReturn(body.Stmts[n-1]) {
		stmts := append(append([]ast.Stmt(nil), body.Stmts...), &ast.Return{At: body.At})
		body = &ast.Block{At: body.At, Stmts: stmts}
	}
	c.callable(s.Name, s.Params, s, func() { c.block(body) })
}

func isReturn(s ast.Stmt) bool {
	_, ok := s.(*ast.Return)
	return ok
}

func (c *compiler) lambda(l *ast.Lambda) {
	var body func()
	switch b := l.Body.(type) {
	case *ast.Block:
		if n := len(b.Stmts); n == 0 || !isReturn(b.Stmts[n-1]) {
			b = &ast.Block{At: b.At, Stmts: append(append([]ast.Stmt(nil), b.Stmts...), &ast.Return{At: b.At})}
		}
		body = func() { c.block(b) }
	case ast.Expr:
		body = func() { c.stmt(&ast.Return{At: ast.At{P: b.Position()}, Expr: b}) }
	default:
		c.failf(l, "unsupported lambda body %T", l.Body)
	}
	c.callable("lambda", l.Params, l, body)
}

// callable compiles a function body in a new frame and emits CALLABLE and
// CLOSURE.
func (c *compiler) callable(name string, params []string, n ast.Node, body func()) {
	outer := c.fn
	c.fn = &function{enclosing: outer}
	for _, p := range params {
		c.declare(n, p)
	}
	code := c.capture(body)
	inner := c.fn
	c.fn = outer
	c.op(bytecode.Callable, name, int64(len(params)), int64(len(inner.upvalues)), int64(len(code)))
	c.emit(code)
	c.op(bytecode.Closure, int64(len(inner.upvalues)))
	for _, u := range inner.upvalues {
		c.code = append(c.code, u.isLocal, int64(u.index))
	}
}

func (c *compiler) tryCatch(s *ast.TryCatch) {
	if s.Finally != nil {
		c.failf(s.Finally, "finally blocks are not yet supported")
	}
	if len(s.Catches) == 0 {
		c.failf(s, "a try statement needs at least one catch block")
	}
	try := c.capture(func() { c.block(s.Try) })
	c.op(bytecode.Try, int64(len(try)+4))
	c.emit(try)
	c.op(bytecode.PopTry)

	var ends []int
	var endScope []any
	catches := c.capture(func() {
		c.startScope()
		errLocal := c.declare(s, "e")
		c.op(bytecode.GetLocal, int64(errLocal))
		c.op(bytecode.String, "type")
		c.op(bytecode.GetProperty)
		typeLocal := c.declare(s, "type")
		for _, cb := range s.Catches {
			cb := cb
			name, typ := cb.Var, cb.Type
			if name == "" {
				name = "e"
			}
			if typ == "" {
				typ = "Error"
			}
			c.startScope()
			clause := func() []any {
				return c.capture(func() {
					if name != "e" {
						c.declare(&cb, name)
						c.op(bytecode.GetLocal, int64(c.fn.resolveLocal("e")))
					}
					c.block(cb.Body)
				})
			}
			if typ == "Error" {
				c.emit(clause())
				c.emit(c.endScope())
			} else {
				c.op(bytecode.String, typ)
				c.op(bytecode.GetLocal, int64(typeLocal))
				c.op(bytecode.Eq)
				body := clause()
				pops := c.endScope()
				c.op(bytecode.JumpIfFalse, int64(len(body)+len(pops)+2))
				c.emit(body)
				c.emit(pops)
			}
			c.op(bytecode.Jump, nil)
			ends = append(ends, len(c.code)-1)
		}
		c.op(bytecode.Pop)
		c.op(bytecode.Throw)
		endScope = c.endScope()
		c.emit(endScope)
	})
	for _, pos := range ends {
		catches[pos] = int64(len(catches) - pos - len(endScope) - 1)
	}
	c.op(bytecode.Jump, int64(len(catches)))
	c.emit(catches)
}

func (c *compiler) assign(s *ast.Assign) {
	switch l := s.Left.(type) {
	case *ast.TupleAccess:
		c.expr(l.Tuple)
		c.op(bytecode.Integer, l.Index)
		c.withTemps(2, func() { c.expr(s.Right) })
		c.op(bytecode.SetProperty)
	case *ast.ArrayAccess:
		c.expr(l.Array)
		c.withTemps(1, func() { c.expr(l.Property) })
		c.withTemps(2, func() { c.expr(s.Right) })
		c.op(bytecode.SetProperty)
	case *ast.Field:
		name := l.Chain[0]
		if i := c.fn.resolveLocal(name); i >= 0 {
			if len(l.Chain) == 1 {
				c.expr(s.Right)
				c.op(bytecode.SetLocal, int64(i))
				return
			}
			c.op(bytecode.GetLocal, int64(i))
		} else if up := c.fn.resolveUpvalue(name); up >= 0 {
			if len(l.Chain) == 1 {
				c.expr(s.Right)
				c.op(bytecode.SetUpvalue, int64(up))
				return
			}
			c.op(bytecode.GetUpvalue, int64(up))
		} else {
			c.failf(l, "variable '%s' is not declared in this scope; globals can not be assigned to", name)
		}
		for _, k := range l.Chain[1 : len(l.Chain)-1] {
			c.op(bytecode.String, k)
			c.op(bytecode.GetProperty)
		}
		c.op(bytecode.String, l.Chain[len(l.Chain)-1])
		c.withTemps(2, func() { c.expr(s.Right) })
		c.op(bytecode.SetProperty)
	default:
		c.failf(s, "can not assign to this kind of expression")
	}
}

// ---- expressions ----

func compareOp(op ast.CompareOp) bytecode.Op {
	switch op {
	case ast.Eq:
		return bytecode.Eq
	case ast.NotEq:
		return bytecode.NotEq
	case ast.Gt:
		return bytecode.Gt
	case ast.GtEq:
		return bytecode.GtEq
	case ast.Lt:
		return bytecode.Lt
	case ast.LtEq:
		return bytecode.LtEq
	case ast.Like:
		return bytecode.Like
	case ast.ILike:
		return bytecode.ILike
	case ast.NotLike:
		return bytecode.NotLike
	case ast.NotILike:
		return bytecode.NotILike
	case ast.In:
		return bytecode.In
	case ast.NotIn:
		return bytecode.NotIn
	case ast.Regex:
		return bytecode.Regex
	case ast.NotRegex:
		return bytecode.NotRegex
	case ast.IRegex:
		return bytecode.IRegex
	case ast.NotIRegex:
		return bytecode.NotIRegex
	}
	return 0
}

func arithOp(op ast.ArithOp) bytecode.Op {
	switch op {
	case ast.Add:
		return bytecode.Plus
	case ast.Sub:
		return bytecode.Minus
	case ast.Mul:
		return bytecode.Multiply
	case ast.Div:
		return bytecode.Divide
	}
	return bytecode.Mod
}

func (c *compiler) expr(e ast.Expr) {
	switch e := e.(type) {
	case *ast.Constant:
		c.constant(e)
	case *ast.Field:
		c.field(e)
	case *ast.ArrayAccess:
		if k, ok := e.Property.(*ast.Constant); ok {
			if v, isInt := k.Value.(int64); isInt && v == 0 {
				c.failf(k, "array access starts from 1")
			}
		}
		c.expr(e.Array)
		c.withTemps(1, func() { c.expr(e.Property) })
		c.op(getProperty(e.Nullish))
	case *ast.TupleAccess:
		if e.Index == 0 {
			c.failf(e, "tuple access starts from 1")
		}
		c.expr(e.Tuple)
		c.op(bytecode.Integer, e.Index)
		c.op(getProperty(e.Nullish))
	case *ast.Compare:
		if e.Op == ast.InCohort || e.Op == ast.NotInCohort {
			c.failf(e, "can't use cohorts in real-time filters; please inline the relevant expressions")
		}
		c.expr(e.Right)
		c.withTemps(1, func() { c.expr(e.Left) })
		c.op(compareOp(e.Op))
	case *ast.Arith:
		c.expr(e.Right)
		c.withTemps(1, func() { c.expr(e.Left) })
		c.op(arithOp(e.Op))
	case *ast.And:
		c.exprs(e.Exprs)
		c.op(bytecode.And, int64(len(e.Exprs)))
	case *ast.Or:
		c.exprs(e.Exprs)
		c.op(bytecode.Or, int64(len(e.Exprs)))
	case *ast.Not:
		c.expr(e.Expr)
		c.op(bytecode.Not)
	case *ast.Between:
		c.between(e)
	case *ast.Call:
		c.call(e)
	case *ast.ExprCall:
		c.exprs(e.Args)
		c.withTemps(len(e.Args), func() { c.expr(e.Callee) })
		c.op(bytecode.CallLocal, int64(len(e.Args)))
	case *ast.Lambda:
		c.lambda(e)
	case *ast.Dict:
		for i, kv := range e.Items {
			c.withTemps(2*i, func() { c.expr(kv.Key) })
			c.withTemps(2*i+1, func() { c.expr(kv.Value) })
		}
		c.op(bytecode.Dict, int64(len(e.Items)))
	case *ast.Array:
		c.exprs(e.Exprs)
		c.op(bytecode.Array, int64(len(e.Exprs)))
	case *ast.Tuple:
		c.exprs(e.Exprs)
		c.op(bytecode.Tuple, int64(len(e.Exprs)))
	case *ast.Placeholder:
		c.failf(e, "placeholders such as {x} are not supported here; remove the braces")
	default:
		c.failf(e, "unsupported expression %T", e)
	}
}

// exprs compiles operands that stay on the stack one after another.
func (c *compiler) exprs(list []ast.Expr) {
	for i, x := range list {
		c.withTemps(i, func() { c.expr(x) })
	}
}

func getProperty(nullish bool) bytecode.Op {
	if nullish {
		return bytecode.GetPropertyNullish
	}
	return bytecode.GetProperty
}

func (c *compiler) constant(k *ast.Constant) {
	switch v := k.Value.(type) {
	case nil:
		c.op(bytecode.Null)
	case bool:
		if v {
			c.op(bytecode.True)
		} else {
			c.op(bytecode.False)
		}
	case int64:
		c.op(bytecode.Integer, v)
	case float64:
		switch {
		case math.IsNaN(v):
			// JSON has no NaN or Infinity; compute them instead.
			c.op(bytecode.Float, 0.0)
			c.op(bytecode.Float, 0.0)
			c.op(bytecode.Divide)
		case math.IsInf(v, 0):
			c.op(bytecode.Float, 0.0)
			c.op(bytecode.Float, math.Copysign(1, v))
			c.op(bytecode.Divide)
		default:
			c.op(bytecode.Float, v)
		}
	case string:
		c.op(bytecode.String, v)
	default:
		c.failf(k, "unsupported constant %T", v)
	}
}

func (c *compiler) field(f *ast.Field) {
	name := f.Chain[0]
	if i := c.fn.resolveLocal(name); i >= 0 {
		c.op(bytecode.GetLocal, int64(i))
	} else if up := c.fn.resolveUpvalue(name); up >= 0 {
		c.op(bytecode.GetUpvalue, int64(up))
	} else {
		if c.globals != nil && !slices.Contains(c.globals, name) {
			c.warnf(f, "unknown global variable '%s'", name)
		}
		for i := len(f.Chain) - 1; i >= 0; i-- {
			c.op(bytecode.String, f.Chain[i])
		}
		c.op(bytecode.GetGlobal, int64(len(f.Chain)))
		return
	}
	for _, k := range f.Chain[1:] {
		c.op(bytecode.String, k)
		c.op(bytecode.GetProperty)
	}
}

// between lowers x [not] between lo and hi as PostHog's compiler does: the
// result is null when any operand is null. The operands live in hidden
// locals, so any values an enclosing expression has already pushed are
// given placeholder slots first.
func (c *compiler) between(b *ast.Between) {
	f := c.fn
	// A negative count means the newest locals are declared but their
	// values are still being computed (let x := … between …): set them
	// aside so that local indexes match stack slots again.
	var aside []local
	if f.temps < 0 {
		n := len(f.locals) + f.temps
		aside = append(aside, f.locals[n:]...)
		f.locals = f.locals[:n]
	}
	savedTemps, savedLen := f.temps, len(f.locals)
	for i := 0; i < f.temps; i++ {
		c.declareHidden()
	}
	f.temps = 0
	result := c.declareHidden()
	c.op(bytecode.Null)
	c.expr(b.Expr)
	x := c.declareHidden()
	c.expr(b.Low)
	lo := c.declareHidden()
	c.expr(b.High)
	hi := c.declareHidden()
	for _, v := range []int{lo, hi, x} {
		c.op(bytecode.GetLocal, int64(v))
		c.op(bytecode.Null)
		c.op(bytecode.NotEq)
	}
	c.op(bytecode.And, int64(3))
	c.op(bytecode.JumpIfFalse, int64(14))
	if b.Negated {
		c.op(bytecode.GetLocal, int64(lo))
		c.op(bytecode.GetLocal, int64(x))
		c.op(bytecode.Lt)
		c.op(bytecode.GetLocal, int64(hi))
		c.op(bytecode.GetLocal, int64(x))
		c.op(bytecode.Gt)
		c.op(bytecode.Or, int64(2))
	} else {
		c.op(bytecode.GetLocal, int64(lo))
		c.op(bytecode.GetLocal, int64(x))
		c.op(bytecode.GtEq)
		c.op(bytecode.GetLocal, int64(hi))
		c.op(bytecode.GetLocal, int64(x))
		c.op(bytecode.LtEq)
		c.op(bytecode.And, int64(2))
	}
	c.op(bytecode.Jump, int64(1))
	c.op(bytecode.Null)
	c.op(bytecode.SetLocal, int64(result))
	for _, v := range []int{hi, lo, x} {
		if f.locals[v].captured {
			c.op(bytecode.CloseUpvalue)
		} else {
			c.op(bytecode.Pop)
		}
	}
	f.locals = append(f.locals[:savedLen], aside...)
	f.temps = savedTemps
}

func (c *compiler) call(e *ast.Call) {
	args := e.Args
	switch e.Name {
	case "not":
		if len(args) == 1 {
			c.expr(args[0])
			c.op(bytecode.Not)
			return
		}
	case "and", "or":
		if len(args) > 1 {
			c.exprs(args)
			if e.Name == "and" {
				c.op(bytecode.And, int64(len(args)))
			} else {
				c.op(bytecode.Or, int64(len(args)))
			}
			return
		}
	case "if":
		if len(args) > 3 {
			c.failf(e, "if() takes 2 or 3 arguments, got %d", len(args))
		}
		if len(args) >= 2 {
			cond := c.capture(func() { c.expr(args[0]) })
			then := c.capture(func() { c.expr(args[1]) })
			// PostHog emits no else branch for if(c, x), which leaves
			// nothing on the stack when c is false; null keeps the stack
			// balanced.
			els := []any{int64(bytecode.Null)}
			if len(args) == 3 {
				els = c.capture(func() { c.expr(args[2]) })
			}
			c.ifElse(cond, then, els, true)
			return
		}
	case "multiIf":
		if len(args) >= 2 {
			c.multiIf(e)
			return
		}
	case "ifNull":
		if len(args) == 2 {
			c.expr(args[0])
			alt := c.capture(func() { c.expr(args[1]) })
			c.op(bytecode.JumpIfStackNotNull, int64(len(alt)+1))
			c.op(bytecode.Pop)
			c.emit(alt)
			return
		}
	}
	c.exprs(args)
	if i := c.fn.resolveLocal(e.Name); i >= 0 {
		c.op(bytecode.GetLocal, int64(i))
		c.op(bytecode.CallLocal, int64(len(args)))
		return
	}
	if up := c.fn.resolveUpvalue(e.Name); up >= 0 {
		c.op(bytecode.GetUpvalue, int64(up))
		c.op(bytecode.CallLocal, int64(len(args)))
		return
	}
	if !c.allow && !isSTL(e.Name) && !slices.Contains(c.host, e.Name) {
		c.failf(e, "unknown function '%s'", e.Name)
	}
	c.op(bytecode.CallGlobal, e.Name, int64(len(args)))
}

func (c *compiler) multiIf(e *ast.Call) {
	args := e.Args
	if len(args) <= 3 {
		c.call(&ast.Call{At: e.At, Name: "if", Args: args})
		return
	}
	// Without a default, the result is null (PostHog pushes nothing).
	prev := []any{int64(bytecode.Null)}
	hasPrev := true
	if len(args)%2 == 1 {
		prev = c.capture(func() { c.expr(args[len(args)-1]) })
	}
	for i := len(args) - 2 - len(args)%2; i >= 0; i -= 2 {
		cond := c.capture(func() { c.expr(args[i]) })
		then := c.capture(func() { c.expr(args[i+1]) })
		cur := c.capture(func() { c.ifElse(cond, then, prev, hasPrev) })
		prev, hasPrev = cur, true
	}
	c.emit(prev)
}
