// Package ast defines the syntax tree of Hog programs, as produced by
// package parser and consumed by package compiler.
//
// The node shapes mirror PostHog's HogQL AST where that decides the emitted
// bytecode: a dotted name such as event.properties.x is one Field with a
// chain, `a ?? b` is a call to ifNull, `c ? a : b` a call to if, `x || y` a
// call to concat, and -x is 0 - x.
package ast

// Pos is a 1-based source position.
type Pos struct {
	Line, Column int
}

// Node is any syntax tree node.
type Node interface {
	Position() Pos
}

// Expr is an expression node.
type Expr interface {
	Node
	expr()
}

// Stmt is a statement node.
type Stmt interface {
	Node
	stmt()
}

// At is embedded in every node to record where it starts.
type At struct{ P Pos }

// Position returns where the node starts.
func (a At) Position() Pos { return a.P }

// Constant is a literal: nil, bool, int64, float64 or string.
type Constant struct {
	At
	Value any
}

// Field is a name, possibly followed by dotted names: a.b.c.
type Field struct {
	At
	Chain []string
}

// ArrayAccess is Array[Property] (also a.b on a non-name, and a?.[i]).
type ArrayAccess struct {
	At
	Array, Property Expr
	Nullish         bool
}

// TupleAccess is Tuple.N or Tuple?.N.
type TupleAccess struct {
	At
	Tuple   Expr
	Index   int64
	Nullish bool
}

// Call is a call of a name: f(args).
type Call struct {
	At
	Name string
	Args []Expr
}

// ExprCall calls the value of an expression: (x -> x)(1), a[1](2).
type ExprCall struct {
	At
	Callee Expr
	Args   []Expr
}

// And is a flattened conjunction; every operand is evaluated.
type And struct {
	At
	Exprs []Expr
}

// Or is a flattened disjunction; every operand is evaluated.
type Or struct {
	At
	Exprs []Expr
}

// Not is logical negation.
type Not struct {
	At
	Expr Expr
}

// CompareOp is a comparison operator.
type CompareOp int

// Comparison operators.
const (
	Eq CompareOp = iota
	NotEq
	Gt
	GtEq
	Lt
	LtEq
	Like
	ILike
	NotLike
	NotILike
	In
	NotIn
	Regex
	NotRegex
	IRegex
	NotIRegex
	InCohort
	NotInCohort
)

// Compare is a binary comparison.
type Compare struct {
	At
	Op          CompareOp
	Left, Right Expr
}

// ArithOp is an arithmetic operator.
type ArithOp int

// Arithmetic operators.
const (
	Add ArithOp = iota
	Sub
	Mul
	Div
	Mod
)

// Arith is a binary arithmetic operation.
type Arith struct {
	At
	Op          ArithOp
	Left, Right Expr
}

// Between is Expr [not] between Low and High.
type Between struct {
	At
	Expr, Low, High Expr
	Negated         bool
}

// Lambda is an anonymous function. Body is an Expr or a *Block.
type Lambda struct {
	At
	Params []string
	Body   Node
}

// KV is one dict entry.
type KV struct{ Key, Value Expr }

// Dict is {k: v, …}.
type Dict struct {
	At
	Items []KV
}

// Array is [a, b, …].
type Array struct {
	At
	Exprs []Expr
}

// Tuple is (a, b, …).
type Tuple struct {
	At
	Exprs []Expr
}

// Placeholder is {expr} in expression position, a HogQL construct that Hog
// code cannot use except as a one-expression lambda body.
type Placeholder struct {
	At
	Expr Expr
}

func (*Constant) expr()    {}
func (*Field) expr()       {}
func (*ArrayAccess) expr() {}
func (*TupleAccess) expr() {}
func (*Call) expr()        {}
func (*ExprCall) expr()    {}
func (*And) expr()         {}
func (*Or) expr()          {}
func (*Not) expr()         {}
func (*Compare) expr()     {}
func (*Arith) expr()       {}
func (*Between) expr()     {}
func (*Lambda) expr()      {}
func (*Dict) expr()        {}
func (*Array) expr()       {}
func (*Tuple) expr()       {}
func (*Placeholder) expr() {}

// Program is a whole Hog program.
type Program struct {
	At
	Stmts []Stmt
}

// Block is { statements } and opens a scope.
type Block struct {
	At
	Stmts []Stmt
}

// ExprStmt evaluates an expression and discards its value.
type ExprStmt struct {
	At
	Expr Expr
}

// VarDecl is let Name [:= Expr].
type VarDecl struct {
	At
	Name string
	Expr Expr // nil for a bare `let x`
}

// Assign is Left := Right. The compiler accepts a *Field, *ArrayAccess or
// *TupleAccess as Left.
type Assign struct {
	At
	Left, Right Expr
}

// Return is return [Expr].
type Return struct {
	At
	Expr Expr // may be nil
}

// Throw is throw Expr.
type Throw struct {
	At
	Expr Expr
}

// If is if (Cond) Then [else Else].
type If struct {
	At
	Cond Expr
	Then Stmt
	Else Stmt // may be nil
}

// While is while (Cond) Body.
type While struct {
	At
	Cond Expr
	Body Stmt
}

// For is for (Init; Cond; Incr) Body. Init and Incr are a *VarDecl, an
// *Assign or an *ExprStmt, or nil; Cond may be nil.
type For struct {
	At
	Init Stmt
	Cond Expr
	Incr Stmt
	Body Stmt
}

// ForIn is for (let [KeyVar,] ValueVar in Expr) Body.
type ForIn struct {
	At
	KeyVar   string // "" when absent
	ValueVar string
	Expr     Expr
	Body     Stmt
}

// Function is fun Name(Params) Body.
type Function struct {
	At
	Name   string
	Params []string
	Body   *Block
}

// Catch is one catch clause. Var and Type are "" when omitted.
type Catch struct {
	At
	Var, Type string
	Body      *Block
}

// TryCatch is try {…} catch … [finally {…}].
type TryCatch struct {
	At
	Try     *Block
	Catches []Catch
	Finally *Block // the compiler rejects it, as PostHog's does
}

func (*Program) stmt()  {}
func (*Block) stmt()    {}
func (*ExprStmt) stmt() {}
func (*VarDecl) stmt()  {}
func (*Assign) stmt()   {}
func (*Return) stmt()   {}
func (*Throw) stmt()    {}
func (*If) stmt()       {}
func (*While) stmt()    {}
func (*For) stmt()      {}
func (*ForIn) stmt()    {}
func (*Function) stmt() {}
func (*TryCatch) stmt() {}
