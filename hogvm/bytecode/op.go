// Package bytecode defines Hog bytecode as PostHog's compiler writes it and
// PostHog's VMs run it: a JSON array whose first elements are the header
// "_H" and the version 1, followed by a flat stream of opcodes and their
// inline operands.
//
// The opcode numbers are a wire format shared with PostHog and must never be
// renumbered.
package bytecode

import "strconv"

// Op is one instruction code. Its inline operands follow it in the stream.
type Op int

// The opcodes of bytecode version 1, numbered as in PostHog's HogVM.
const (
	GetGlobal          Op = 1  // n: pop n path strings (root first) → global value
	CallGlobal         Op = 2  // name, argc
	And                Op = 3  // n
	Or                 Op = 4  // n
	Not                Op = 5  //
	Plus               Op = 6  //
	Minus              Op = 7  //
	Multiply           Op = 8  //
	Divide             Op = 9  //
	Mod                Op = 10 //
	Eq                 Op = 11 //
	NotEq              Op = 12 //
	Gt                 Op = 13 //
	GtEq               Op = 14 //
	Lt                 Op = 15 //
	LtEq               Op = 16 //
	Like               Op = 17 //
	ILike              Op = 18 //
	NotLike            Op = 19 //
	NotILike           Op = 20 //
	In                 Op = 21 //
	NotIn              Op = 22 //
	Regex              Op = 23 //
	NotRegex           Op = 24 //
	IRegex             Op = 25 //
	NotIRegex          Op = 26 //
	InCohort           Op = 27 // reserved, never emitted
	NotInCohort        Op = 28 // reserved, never emitted
	True               Op = 29 //
	False              Op = 30 //
	Null               Op = 31 //
	String             Op = 32 // s
	Integer            Op = 33 // n
	Float              Op = 34 // f
	Pop                Op = 35 //
	GetLocal           Op = 36 // i
	SetLocal           Op = 37 // i
	Return             Op = 38 //
	Jump               Op = 39 // off
	JumpIfFalse        Op = 40 // off
	DeclareFn          Op = 41 // name, argc, bodyLen (deprecated)
	Dict               Op = 42 // n
	Array              Op = 43 // n
	Tuple              Op = 44 // n
	GetProperty        Op = 45 //
	SetProperty        Op = 46 //
	JumpIfStackNotNull Op = 47 // off
	GetPropertyNullish Op = 48 //
	Throw              Op = 49 //
	Try                Op = 50 // off
	PopTry             Op = 51 //
	Callable           Op = 52 // name, argc, upvalueCount, bodyLen
	Closure            Op = 53 // n, then n pairs (isLocal, index)
	CallLocal          Op = 54 // argc
	GetUpvalue         Op = 55 // i
	SetUpvalue         Op = 56 // i
	CloseUpvalue       Op = 57 //

	// MaxOp is the highest opcode number defined.
	MaxOp = CloseUpvalue
)

var opNames = [...]string{
	GetGlobal: "GET_GLOBAL", CallGlobal: "CALL_GLOBAL", And: "AND", Or: "OR", Not: "NOT",
	Plus: "PLUS", Minus: "MINUS", Multiply: "MULTIPLY", Divide: "DIVIDE", Mod: "MOD",
	Eq: "EQ", NotEq: "NOT_EQ", Gt: "GT", GtEq: "GT_EQ", Lt: "LT", LtEq: "LT_EQ",
	Like: "LIKE", ILike: "ILIKE", NotLike: "NOT_LIKE", NotILike: "NOT_ILIKE",
	In: "IN", NotIn: "NOT_IN", Regex: "REGEX", NotRegex: "NOT_REGEX", IRegex: "IREGEX",
	NotIRegex: "NOT_IREGEX", InCohort: "IN_COHORT", NotInCohort: "NOT_IN_COHORT",
	True: "TRUE", False: "FALSE", Null: "NULL", String: "STRING", Integer: "INTEGER",
	Float: "FLOAT", Pop: "POP", GetLocal: "GET_LOCAL", SetLocal: "SET_LOCAL",
	Return: "RETURN", Jump: "JUMP", JumpIfFalse: "JUMP_IF_FALSE", DeclareFn: "DECLARE_FN",
	Dict: "DICT", Array: "ARRAY", Tuple: "TUPLE", GetProperty: "GET_PROPERTY",
	SetProperty: "SET_PROPERTY", JumpIfStackNotNull: "JUMP_IF_STACK_NOT_NULL",
	GetPropertyNullish: "GET_PROPERTY_NULLISH", Throw: "THROW", Try: "TRY", PopTry: "POP_TRY",
	Callable: "CALLABLE", Closure: "CLOSURE", CallLocal: "CALL_LOCAL",
	GetUpvalue: "GET_UPVALUE", SetUpvalue: "SET_UPVALUE", CloseUpvalue: "CLOSE_UPVALUE",
}

// String returns PostHog's name for the opcode, or "OP(n)" for an unknown one.
func (o Op) String() string {
	if o > 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "OP(" + strconv.Itoa(int(o)) + ")"
}
