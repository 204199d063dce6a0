package vm

import (
	"fmt"
	"math"
	"slices"
	"unique"

	"github.com/hogwire/hogwire/hogvm/bytecode"
)

// Internal opcodes, numbered after PostHog's so they never collide.
const (
	opNop           = 0   // a JSON null in opcode position
	opTrap          = 100 // malformed bytecode: fails with ext.err when executed
	opEnd           = 101 // sentinel after the last instruction of a chunk
	opGetGlobalPath = 102 // STRING×n + GET_GLOBAL n fused: path in ext.path
	// A constant, a fused global path and a comparison of the two (see
	// fuseCompares): constant in val, comparison op in b, path in ext.
	opGlobalCompare = 103
	// A fused global path passed to a native function of the library
	// (see fuseCalls): path, name and function in ext, the index of the
	// CALL_GLOBAL in a.
	opGlobalCall = 104
	// A constant, then opGlobalCall's path and call, then a comparison
	// of the two (`lower(properties.plan) = 'pro'`): constant in val,
	// comparison op in b, the CALL_GLOBAL's index in a, path and function
	// in ext.
	opGlobalCallCompare = 105
)

// maxOperand bounds counts and indexes in bytecode so that a hostile
// program cannot make the VM allocate absurd amounts up front.
const maxOperand = 1 << 24

// instr is one pre-decoded instruction. Jump targets are resolved to
// instruction indexes; constants are converted to Values.
type instr struct {
	op  uint8
	a   int32 // count, local index, argc or resolved jump target
	b   int32 // second operand (argc of CALL_GLOBAL, CALLABLE argCount)
	val Value // constant of STRING/INTEGER/FLOAT
	ext *instrExt
}

type instrExt struct {
	path     []string // fused GET_GLOBAL path, root first, interned
	name     string
	upvalues int32   // CALLABLE upvalue count
	pairs    []int32 // CLOSURE (isLocal, index) pairs
	stl      *Native // CALL_GLOBAL resolved to a native function
	bstl     *bcFunc // CALL_GLOBAL resolved to a bytecode STL function
	err      string  // opTrap message
	chunkPos int32   // DECLARE_FN: element position of the body
}

// pathExt is the instrExt of a fused global path, with room for the
// path of most reads (`properties.plan`, `event.properties.plan`): a
// filter then finds what it reads of the instruction in a line or two of
// memory, where separate allocations would cost a cache miss each when
// many filters run in turn.
type pathExt struct {
	keys [3]string
	ext  instrExt
	// handles keep the interned keys interned (see newPathExt).
	handles []unique.Handle[string]
}

// newPathExt returns the instrExt of a fused global path. Its keys are
// interned: programs reading the same global then share the key's bytes,
// which stay in the cache when many of them run in turn, and the key's
// address, by which runs remember where they found it (see run.findKey).
func newPathExt(path []string) *instrExt {
	e := &pathExt{handles: make([]unique.Handle[string], len(path))}
	keys := path
	if len(path) <= len(e.keys) {
		keys = e.keys[:len(path):len(path)]
	}
	for i, k := range path {
		e.handles[i] = unique.Make(k)
		keys[i] = e.handles[i].Value()
	}
	e.ext.path = keys
	return &e.ext
}

// chunk is linked bytecode: the root program or a bytecode STL function.
type chunk struct {
	code    []instr // first: the field every run reads
	name    string
	version int
	raw     []any   // the elements, kept for serialising state
	posIdx  []int32 // element position → instruction index, -1 inside operands
	idxPos  []int32 // instruction index → element position
}

// Program is linked bytecode, ready to run. It is immutable and safe for
// concurrent use by any number of runs.
type Program struct {
	root *chunk // &rootChunk
	// rootChunk is the root, in the program's allocation: a run of a
	// short program reads it along with root, and one cache miss fewer
	// counts when many filters run in turn.
	rootChunk chunk
	src       *bytecode.Program
	lib       *Library
	// global is the path of the global the program only reads and
	// returns, or nil (see GlobalPath).
	global []string
	// constant is the string the program only returns (see Constant).
	constant    Value
	hasConstant bool
}

// GlobalPath returns the path of the global the program does nothing but
// read and return ("{event.properties.plan}" as a template), or nil.
// Embedders that only read the value can look it up with LookupGlobal
// instead of running the program.
func (p *Program) GlobalPath() []string { return p.global }

// globalPath recognises STRING for each part of the path, last part
// first, then GET_GLOBAL and RETURN.
func globalPath(code []any) []string {
	n := len(code)
	if n < 5 || code[n-1] != int64(bytecode.Return) || code[n-3] != int64(bytecode.GetGlobal) {
		return nil
	}
	parts, ok := code[n-2].(int64)
	if !ok || parts < 1 || int64(n-3) != 2*parts {
		return nil
	}
	path := make([]string, parts)
	for i := range int(parts) {
		s, ok := code[2*i+1].(string)
		if code[2*i] != int64(bytecode.String) || !ok {
			return nil
		}
		path[int(parts)-1-i] = s
	}
	return path
}

// Constant returns the string the program does nothing but return
// ("POST" as a template), when it does: every run returns it. Embedders
// can take it once instead of running the program each time.
func (p *Program) Constant() (Value, bool) { return p.constant, p.hasConstant }

// constantString recognises STRING s then RETURN.
func constantString(code []any) (Value, bool) {
	if len(code) != 3 || code[0] != int64(bytecode.String) || code[2] != int64(bytecode.Return) {
		return Null, false
	}
	s, ok := code[1].(string)
	if !ok {
		return Null, false
	}
	return String(s), true
}

// Source returns the bytecode the program was linked from.
func (p *Program) Source() *bytecode.Program { return p.src }

func intOperand(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

func constValue(v any) Value {
	switch x := v.(type) {
	case int64:
		return Int(x)
	case int:
		return Int(int64(x))
	case float64:
		return Number(x)
	case string:
		return String(x)
	case bool:
		return Bool(x)
	}
	return Null
}

type jumpFix struct {
	idx    int
	target int64 // element position
}

// linkChunk pre-decodes raw, resolving calls to the library's functions.
// resolveSTL resolves calls to its bytecode functions up front; it is
// false while linking those functions themselves.
func (l *Library) linkChunk(name string, version int, raw []any, resolveSTL bool) *chunk {
	c := &chunk{name: name, version: version, raw: raw, posIdx: make([]int32, len(raw)+1)}
	for i := range c.posIdx {
		c.posIdx[i] = -1
	}
	var fixes []jumpFix
	pos := 0
	trap := func(msg string) {
		c.code = append(c.code, instr{op: opTrap, ext: &instrExt{err: msg}})
	}
	for pos < len(raw) {
		start := pos
		c.posIdx[pos] = int32(len(c.code))
		c.idxPos = append(c.idxPos, int32(pos))
		el := raw[pos]
		pos++
		if el == nil {
			c.code = append(c.code, instr{op: opNop})
			continue
		}
		opn, ok := intOperand(el)
		if !ok || opn < 1 || opn > int64(bytecode.MaxOp) || opn == int64(bytecode.InCohort) || opn == int64(bytecode.NotInCohort) {
			trap(fmt.Sprintf("Unexpected node while running bytecode in chunk %q: %v", name, el))
			continue
		}
		op := bytecode.Op(opn)
		nOps := operandCount(op)
		if pos+nOps > len(raw) {
			trap("Unexpected end of bytecode")
			break
		}
		ops := raw[pos : pos+nOps]
		pos += nOps
		in := instr{op: uint8(op)}
		bad := ""
		count := func(v any) int32 {
			n, ok := intOperand(v)
			if !ok || n < 0 || n > maxOperand {
				bad = fmt.Sprintf("Invalid operand for %s: %v", op, v)
				return 0
			}
			return int32(n)
		}
		switch op {
		case bytecode.String, bytecode.Integer, bytecode.Float:
			in.val = constValue(ops[0])
		case bytecode.GetGlobal, bytecode.And, bytecode.Or, bytecode.Dict, bytecode.Array, bytecode.Tuple,
			bytecode.GetLocal, bytecode.SetLocal, bytecode.CallLocal, bytecode.GetUpvalue, bytecode.SetUpvalue:
			in.a = count(ops[0])
		case bytecode.Jump, bytecode.JumpIfFalse, bytecode.JumpIfStackNotNull, bytecode.Try:
			off, ok := intOperand(ops[0])
			if !ok {
				bad = fmt.Sprintf("Invalid jump offset: %v", ops[0])
				break
			}
			// Jumps land after their operand plus off; PostHog's VMs compute
			// TRY's catch address from the opcode's own position instead.
			target := int64(start) + 2 + off
			if op == bytecode.Try {
				target--
			}
			fixes = append(fixes, jumpFix{idx: len(c.code), target: target})
		case bytecode.CallGlobal:
			nm, ok := ops[0].(string)
			if !ok {
				bad = fmt.Sprintf("Invalid function name: %v", ops[0])
				break
			}
			in.b = count(ops[1])
			in.ext = &instrExt{name: nm}
			in.ext.stl = l.native(nm)
			if resolveSTL {
				in.ext.bstl = l.bytecodeFunc(nm)
			}
		case bytecode.DeclareFn:
			nm, _ := ops[0].(string)
			in.b = count(ops[1])
			body := count(ops[2])
			in.ext = &instrExt{name: nm, chunkPos: int32(pos)}
			fixes = append(fixes, jumpFix{idx: len(c.code), target: int64(pos) + int64(body)})
		case bytecode.Callable:
			nm, _ := ops[0].(string)
			in.b = count(ops[1])
			ups := count(ops[2])
			body := count(ops[3])
			in.ext = &instrExt{name: nm, upvalues: ups}
			fixes = append(fixes, jumpFix{idx: len(c.code), target: int64(pos) + int64(body)})
		case bytecode.Closure:
			n := count(ops[0])
			if bad != "" {
				break
			}
			if pos+2*int(n) > len(raw) {
				bad = "Unexpected end of bytecode"
				pos = len(raw)
				break
			}
			pairs := make([]int32, 2*n)
			for i := range pairs {
				v := raw[pos+i]
				if i%2 == 0 {
					if b, ok := v.(bool); ok {
						if b {
							pairs[i] = 1
						}
						continue
					}
				}
				pairs[i] = count(v)
			}
			pos += 2 * int(n)
			in.a = n
			in.ext = &instrExt{pairs: pairs}
		}
		if bad != "" {
			trap(bad)
			continue
		}
		c.code = append(c.code, in)
	}
	// Sentinel: running past the end acts like `return null`.
	c.posIdx[len(raw)] = int32(len(c.code))
	c.idxPos = append(c.idxPos, int32(len(raw)))
	c.code = append(c.code, instr{op: opEnd})
	end := int32(len(c.code) - 1)
	for _, f := range fixes {
		in := &c.code[f.idx]
		switch {
		case f.target >= int64(len(raw)):
			in.a = end
		case f.target >= 0 && c.posIdx[f.target] >= 0:
			in.a = c.posIdx[f.target]
		default:
			*in = instr{op: opTrap, ext: &instrExt{err: "Invalid jump target in bytecode"}}
		}
	}
	targets := jumpTargets(c)
	fuseGlobals(c, targets)
	fuseCalls(c, targets)
	fuseCompares(c, targets)
	return c
}

func operandCount(op bytecode.Op) int {
	switch op {
	case bytecode.GetGlobal, bytecode.And, bytecode.Or, bytecode.String, bytecode.Integer, bytecode.Float,
		bytecode.GetLocal, bytecode.SetLocal, bytecode.Jump, bytecode.JumpIfFalse, bytecode.Dict,
		bytecode.Array, bytecode.Tuple, bytecode.JumpIfStackNotNull, bytecode.Try, bytecode.Closure,
		bytecode.CallLocal, bytecode.GetUpvalue, bytecode.SetUpvalue:
		return 1
	case bytecode.CallGlobal:
		return 2
	case bytecode.DeclareFn:
		return 3
	case bytecode.Callable:
		return 4
	}
	return 0
}

// jumpTargets returns the instructions that execution can reach other
// than from the one before: jump targets and the instructions after calls
// and function bodies, where a resumed state may continue.
func jumpTargets(c *chunk) map[int32]bool {
	targets := make(map[int32]bool)
	for _, in := range c.code {
		switch bytecode.Op(in.op) {
		case bytecode.Jump, bytecode.JumpIfFalse, bytecode.JumpIfStackNotNull, bytecode.Try:
			targets[in.a] = true
		}
	}
	for i, in := range c.code {
		switch bytecode.Op(in.op) {
		case bytecode.Callable, bytecode.DeclareFn:
			targets[in.a] = true
			targets[int32(i+1)] = true
		case bytecode.CallGlobal, bytecode.CallLocal:
			targets[int32(i+1)] = true
		}
	}
	return targets
}

// fuseGlobals turns `STRING s_n … STRING s_1 GET_GLOBAL n` into one
// instruction when nothing jumps into the middle of the sequence, so a
// filter reads `properties.$browser` without touching the value stack.
func fuseGlobals(c *chunk, targets map[int32]bool) {
	for i := range c.code {
		in := &c.code[i]
		if bytecode.Op(in.op) != bytecode.GetGlobal || in.a < 1 || int(in.a) > i || targets[int32(i)] {
			continue
		}
		n := int(in.a)
		first := i - n
		ok := true
		for j := first; j < i; j++ {
			if bytecode.Op(c.code[j].op) != bytecode.String || c.code[j].val.k != KindString || (j > first && targets[int32(j)]) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		path := make([]string, n)
		for j := 0; j < n; j++ {
			path[j] = c.code[i-1-j].val.str()
		}
		// The fused instruction replaces the first STRING and jumps past
		// the GET_GLOBAL; the originals stay for state resumed mid-sequence.
		c.code[first] = instr{op: opGetGlobalPath, a: int32(i + 1), val: c.code[first].val, ext: newPathExt(path)}
	}
}

// fuseCalls turns a fused global path passed alone to a native function
// of the library (`lower(properties.plan)`) into one instruction, when
// nothing jumps onto the call. Whether the call reaches the native is
// known only when it runs (a host or async function, or one the program
// declares, may take its name), so the instruction checks, and when it
// does not, it reads the path and goes on at the original call. As with
// fuseGlobals, the originals stay.
func fuseCalls(c *chunk, targets map[int32]bool) {
	for i := range c.code {
		g := &c.code[i]
		if g.op != opGetGlobalPath || int(g.a) >= len(c.code) || targets[g.a] {
			continue
		}
		call := &c.code[g.a]
		if bytecode.Op(call.op) != bytecode.CallGlobal || call.b != 1 || call.ext.stl == nil {
			continue
		}
		if f := call.ext.stl; f.Min > 1 || (f.Max >= 0 && f.Max < 1) {
			continue
		}
		*g = instr{op: opGlobalCall, a: g.a, val: g.val, ext: newCallExt(g.ext.path, call.ext.name, call.ext.stl)}
	}
}

// newCallExt is newPathExt with the function a fused call passes the
// path's value to. Its name is interned with the keys: every run checks
// it (see run.callsNative), and thousands of filters calling lower() then
// read one copy of "lower", which stays in the cache.
func newCallExt(path []string, name string, f *Native) *instrExt {
	e := newPathExt(append(slices.Clone(path), name))
	keys := e.path
	e.path = keys[:len(path):len(path)]
	e.name, e.stl = keys[len(path)], f
	return e
}

// fuseCompares turns a constant, then a fused global path (or a fused
// call on one), then a comparison of the two (`properties.plan = 'pro'`,
// the shape of most filters) into one instruction, when nothing jumps
// past the constant into the sequence. As with fuseGlobals, the originals
// stay.
func fuseCompares(c *chunk, targets map[int32]bool) {
	for i := 0; i+1 < len(c.code); i++ {
		in, g := &c.code[i], &c.code[i+1]
		switch bytecode.Op(in.op) {
		case bytecode.String, bytecode.Integer, bytecode.Float:
		default:
			continue
		}
		if targets[int32(i+1)] {
			continue
		}
		switch g.op {
		case opGetGlobalPath:
			if targets[g.a] || int(g.a) >= len(c.code) || !fusableCompare(c.code[g.a].op) {
				continue
			}
			*in = instr{op: opGlobalCompare, a: g.a + 1, b: int32(c.code[g.a].op), val: in.val, ext: g.ext}
		case opGlobalCall:
			// The comparison after the call is where a run resumed after
			// an async call there goes on: a target, but only of the
			// originals, which stay.
			cmp := g.a + 1
			if int(cmp) >= len(c.code) || !fusableCompare(c.code[cmp].op) {
				continue
			}
			*in = instr{op: opGlobalCallCompare, a: g.a, b: int32(c.code[cmp].op), val: in.val, ext: g.ext}
		}
	}
}

// fusableCompare reports whether op compares the two values on top of the
// stack and pushes a boolean: what run.compare does for the fused
// instruction.
func fusableCompare(op uint8) bool {
	switch bytecode.Op(op) {
	case bytecode.Eq, bytecode.NotEq, bytecode.Gt, bytecode.GtEq, bytecode.Lt, bytecode.LtEq,
		bytecode.Like, bytecode.ILike, bytecode.NotLike, bytecode.NotILike,
		bytecode.Regex, bytecode.NotRegex, bytecode.IRegex, bytecode.NotIRegex:
		return true
	}
	return false
}
