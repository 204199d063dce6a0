package vm

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/hogwire/hogwire/hogvm/bytecode"
)

type callableKind uint8

const (
	callLocal callableKind = iota
	callSTL
	callAsync
)

var callableKindNames = [...]string{"local", "stl", "async"}

// Callable is a function value before its upvalues are captured, or the
// function inside a Closure.
type Callable struct {
	Name         string
	ArgCount     int
	kind         callableKind
	upvalueCount int
	ip           int32 // instruction index of the entry point
	chunk        *chunk
}

// Closure is a callable with its captured upvalues.
type Closure struct {
	Callable *Callable
	upvalues []*upvalue
}

type upvalue struct {
	id       int
	location int
	closed   bool
	value    Value
}

type frame struct {
	ip         int32
	stackStart int32
	argCount   int32
	chunk      *chunk
	closure    *Closure // nil for the root frame and legacy declared functions
}

type tryFrame struct {
	callStackLen int32
	stackLen     int32
	catchIP      int32
}

type declaredFn struct {
	ip       int32
	argCount int32
}

// run is the mutable state of one execution, pooled by Machine.
type run struct {
	m       *Machine
	prog    *Program
	globals Value
	stack   []Value
	frames  []frame
	tries   []tryFrame
	// open holds the upvalues still pointing into the stack, by location;
	// closed ones live only in the closures that captured them.
	open     []*upvalue
	upvalID  int // id of the last upvalue created
	declared map[string]declaredFn
	ops      int64
	// nextCheck is the op count of the next checkpoint; natives that
	// produce large values advance ops to bring it closer.
	nextCheck int64
	// alloc is Usage.Allocated; allocCheck the count at which the next
	// checkpoint comes.
	alloc, allocCheck int64
	// reserved counts what natives reserved during the current call, so
	// that their result is not counted twice.
	reserved int64
	host     Host
	async    int
	// paused is the call the run paused at (see pause), for Result.Async.
	paused *AsyncCall
	// valueOnly marks a run whose caller wants only its value (see
	// Machine.Eval): a pause need not keep the state to resume.
	valueOnly bool
	deadline  time.Time
	ctx       context.Context
	start     time.Time
	prior     time.Duration
	line      []byte // print buffer
	// arg holds the argument of a fused call (see callNative1).
	arg [1]Value
	// hints remember where the keys of fused global paths were last
	// found (see findKey). They outlive the run: the next one, likely of
	// another filter reading the same kind of globals, finds its keys
	// where this one did.
	hints [keyHints]keyHint
	// memoize is set for the run of an Evaluator, which keeps memos:
	// the values of fused global paths read from frozen globals (see
	// pathMemo). They outlive the run: a filter run next on the same
	// event's globals, reading the same path, takes its value.
	memoize bool
	// memos is a set-associative table of pathMemoWays ways, made on
	// first use: a worker runs each filter on the events of a batch in
	// turn, and finds the path each read for each event.
	memos    []pathMemo
	memoTick uint8 // picks the way a new memo replaces
}

// The memo table: 256 entries (14 KiB), room for a path or two of each
// event of a batch of a hundred.
const (
	pathMemoBits = 8
	pathMemoWays = 4
)

// pathMemo is the value of a fused global path read from frozen
// globals through dicts (and scalars, whose properties are null).
// Frozen dicts never change (see Freeze), and the memo holds the globals,
// so that their address is not reused while it does: the same path in
// the same globals has the same value. Only scalars are kept: reading a
// container copies it, and counts the copy.
type pathMemo struct {
	globals unsafe.Pointer // the root dict
	path    []string       // interned keys (see newPathExt)
	v       Value
}

// lookupMemo returns the memo of path in globals, or nil and the index of
// the first way where it would be.
func (r *run) lookupMemo(globals unsafe.Pointer, path []string) (*pathMemo, int) {
	if r.memos == nil {
		r.memos = make([]pathMemo, 1<<pathMemoBits)
	}
	k := uint64(uintptr(unsafe.Pointer(unsafe.StringData(path[len(path)-1]))))
	h := (uint64(uintptr(globals))*0x9E3779B97F4A7C15 ^ k) * 0xBF58476D1CE4E5B9
	set := int(h>>(64-pathMemoBits)) &^ (pathMemoWays - 1)
	for i := set; i < set+pathMemoWays; i++ {
		if m := &r.memos[i]; m.holds(globals, path) {
			return m, set
		}
	}
	return nil, set
}

// storeMemo remembers v as the value of path in globals, in one of the
// ways from set.
func (r *run) storeMemo(set int, globals unsafe.Pointer, path []string, v Value) {
	m := &r.memos[set+int(r.memoTick%pathMemoWays)]
	r.memoTick++
	m.globals, m.path, m.v = globals, path, v
}

// holds reports whether m is the value of path in globals. Keys of fused
// paths are interned: the same keys have the same bytes.
func (m *pathMemo) holds(globals unsafe.Pointer, path []string) bool {
	if m.globals != globals || len(m.path) != len(path) {
		return false
	}
	for i, k := range path {
		if mk := m.path[i]; len(mk) != len(k) || unsafe.StringData(mk) != unsafe.StringData(k) {
			return false
		}
	}
	return true
}

// keyHints is how many keys a run remembers the position of.
const keyHints = 16

// keyHint is where a key was last found: its position in the dict.
type keyHint struct {
	key *byte // the interned key's bytes
	pos int
}

// findKey is d.findString(key) for an interned key, trying first where
// the key was last found. Globals of one kind (every event's filter
// globals, say) hold their keys in the same order, so the position saves
// hashing the key; it is only a guess, checked against the key there, so
// a hint from another dict, or from this one before it changed, is
// harmless.
func (r *run) findKey(d *Dict, key string) int {
	p := unsafe.StringData(key)
	h := &r.hints[(uint64(uintptr(unsafe.Pointer(p)))*0x9E3779B97F4A7C15)>>(64-4)]
	if h.key == p && d.hasStringKey(h.pos, key) {
		return h.pos
	}
	i := d.findString(key)
	if i >= 0 {
		h.key, h.pos = p, i
	}
	return i
}

// costUnit is the estimated size of one value slot: a Value is 24 bytes,
// but many slots share what they point to.
const costUnit = 16

// shallowCost estimates the memory of v's own storage, without what its
// elements point to: what creating v from existing values allocates.
func shallowCost(v Value) int64 {
	switch v.k {
	case KindArray, KindTuple:
		return costUnit * int64(1+len(v.arr().Elems))
	case KindDict:
		return costUnit * int64(1+2*v.dict().Len())
	}
	return costOf(v)
}

// costOf estimates the memory held by v as PostHog's VM does: a unit per
// value, plus string length, plus the contents of containers (cached in
// them).
func costOf(v Value) int64 {
	switch v.k {
	case KindString:
		return costUnit + int64(v.n)
	case KindArray, KindTuple:
		return v.arr().cost
	case KindDict:
		return v.dict().cost
	case KindError:
		e := (*ErrorValue)(v.p)
		return 4*costUnit + int64(len(e.Type)+len(e.Message)) + costOf(e.Payload)
	case KindDateTime, KindDate, KindClosure, KindCallable:
		return 4 * costUnit
	}
	return costUnit
}

func (r *run) reset(p *Program, globals Value) {
	r.prog = p
	r.globals = globals
	if cap(r.frames) == 0 {
		r.frames = make([]frame, 1, 8)
	}
	// Field by field: a frame built on the stack and copied in whole is
	// read back before its stores have landed, which stalled every run.
	r.frames = r.frames[:1]
	fr := &r.frames[0]
	fr.ip, fr.stackStart, fr.argCount = 0, 0, 0
	fr.chunk, fr.closure = p.root, nil
}

func (r *run) clear() {
	clear(r.stack)
	r.stack = r.stack[:0]
	clear(r.frames)
	r.frames = r.frames[:0]
	r.tries = r.tries[:0]
	clear(r.open)
	r.open = r.open[:0]
	r.upvalID = 0
	r.declared = nil
	r.alloc, r.reserved, r.ops, r.async = 0, 0, 0, 0
	r.prog, r.globals, r.ctx, r.host = nil, Null, nil, nil
	r.paused, r.valueOnly = nil, false
	r.prior = 0
}

func (r *run) push(v Value) { r.stack = append(r.stack, v) }

var errStackEmpty = rtErr("Invalid HogQL bytecode, stack is empty, can not pop")

func (r *run) pop() (Value, error) {
	n := len(r.stack) - 1
	if n < 0 {
		return Null, errStackEmpty
	}
	v := r.stack[n]
	r.stack[n] = Null
	r.stack = r.stack[:n]
	return v, nil
}

// truncate closes upvalues pointing at or above n and drops the stack
// down to n elements.
func (r *run) truncate(n int) {
	r.closeUpvalues(n)
	clear(r.stack[n:])
	r.stack = r.stack[:n]
}

// closeUpvalues closes the open upvalues at or above stack location n: each
// keeps the slot's last value and stops following the stack.
func (r *run) closeUpvalues(n int) {
	i := len(r.open)
	for i > 0 && r.open[i-1].location >= n {
		i--
		u := r.open[i]
		u.closed = true
		if u.location < len(r.stack) {
			u.value = r.stack[u.location]
		}
		r.open[i] = nil
	}
	r.open = r.open[:i]
}

// captureUpvalue returns the open upvalue for stack location loc, creating
// it if there is none. A closed upvalue is never reused: it belongs to a
// variable whose scope has ended, and the slot now holds another one (the
// next iteration's, or a later declaration's). PostHog's VMs do reuse it,
// so closures made in a loop all see the first iteration's variable; see
// docs/hog.md.
func (r *run) captureUpvalue(loc int) *upvalue {
	i := len(r.open)
	for i > 0 && r.open[i-1].location >= loc {
		if r.open[i-1].location == loc {
			return r.open[i-1]
		}
		i--
	}
	r.upvalID++
	u := &upvalue{id: r.upvalID, location: loc}
	r.open = slices.Insert(r.open, i, u)
	return u
}

func (r *run) limitErr(limit error, format string, args ...any) error {
	return &LimitError{Limit: limit, Msg: fmt.Sprintf(format, args...)}
}

// MemoryLimitError reports an allocation over a memory limit of limit
// bytes, in PostHog's words; embedders that keep their own budgets use it
// too.
func MemoryLimitError(limit, allocated int64) error {
	return &LimitError{Limit: ErrMemoryLimit, Msg: fmt.Sprintf("Memory limit of %d bytes exceeded. Tried to allocate %d bytes.", limit, allocated)}
}

// checkEvery is how many instructions run between checkpoints. Reading
// the clock costs more than a short filter takes to run, so a run starts
// its clock lazily at the first checkpoint (or host call) and the
// instructions before that go unmeasured.
const checkEvery = 1024

// allocEvery is how many bytes a run allocates between checkpoints.
const allocEvery = 64 << 10

// checkpoint applies the limits and lets the host apply its own.
func (r *run) checkpoint() error {
	r.nextCheck = r.ops + checkEvery
	r.allocCheck = r.alloc + allocEvery
	opts := &r.m.opts
	if opts.MemoryLimit > 0 && r.alloc > opts.MemoryLimit {
		return MemoryLimitError(opts.MemoryLimit, r.alloc)
	}
	if opts.MaxSteps > 0 && r.ops > opts.MaxSteps {
		return r.limitErr(ErrStepLimit, "Exceeded maximum number of steps: %d", opts.MaxSteps)
	}
	if err := r.checkTime(); err != nil {
		return err
	}
	if r.host != nil {
		return r.host.Yield(Usage{Steps: r.ops, Allocated: r.alloc})
	}
	return nil
}

// reserve counts n bytes a native is about to allocate, with a checkpoint
// first when they take the run past its next one, so that a limit stops
// a huge allocation before it happens.
func (r *run) reserve(n int64) error {
	r.alloc += n
	r.reserved += n
	if r.alloc >= r.allocCheck {
		return r.checkpoint()
	}
	return nil
}
func (r *run) startClock() {
	if r.start.IsZero() {
		r.start = time.Now()
		r.deadline = r.start.Add(r.m.opts.Timeout - r.prior)
	}
}

func (r *run) checkTime() error {
	r.startClock()
	if r.m.opts.Timeout > 0 && time.Now().After(r.deadline) {
		return r.limitErr(ErrTimeout, "Execution timed out after %s seconds. Performed %d ops.", formatNumber(r.m.opts.Timeout.Seconds()), r.ops)
	}
	if err := r.ctx.Err(); err != nil {
		return &RuntimeError{Msg: "Execution cancelled: " + err.Error(), Err: err}
	}
	return nil
}

// execute runs the loop from the run's current state; prior is the wall
// time spent in earlier resumes. finished is false when the run paused
// (r.paused).
func (r *run) execute(ctx context.Context, prior time.Duration) (v Value, finished bool, err error) {
	r.ctx = ctx
	r.start = time.Time{}
	r.prior = prior
	r.nextCheck = r.ops + checkEvery
	r.allocCheck = r.alloc + allocEvery
	return r.loop()
}

// setResult fills res with what execute returned, field by field: a
// Result built whole and copied in is read back before its stores have
// landed, which stalled every run.
func (r *run) setResult(res *Result, v Value, finished bool) {
	res.Finished, res.Value, res.Async = finished, v, r.paused
	res.Ops, res.Allocated = r.ops, r.alloc
}

func (r *run) args(argc int) []Value {
	return r.stack[len(r.stack)-argc:]
}

// replaceArgs drops argc arguments and pushes result.
func (r *run) replaceArgs(argc int, result Value) {
	r.truncate(len(r.stack) - argc)
	r.push(result)
}

func (r *run) loop() (Value, bool, error) {
	fr := &r.frames[len(r.frames)-1]
	code := fr.chunk.code
	ip := fr.ip
	for {
		in := &code[ip]
		ip++
		r.ops++
		if r.ops >= r.nextCheck || r.alloc >= r.allocCheck {
			if err := r.checkpoint(); err != nil {
				return Null, false, err
			}
		}
		switch in.op {
		case opNop:
		case uint8(bytecode.String), uint8(bytecode.Integer), uint8(bytecode.Float):
			r.push(in.val)
		case uint8(bytecode.True):
			r.push(Bool(true))
		case uint8(bytecode.False):
			r.push(Bool(false))
		case uint8(bytecode.Null):
			r.push(Null)
		case uint8(bytecode.Not):
			v, err := r.pop()
			if err != nil {
				return Null, false, err
			}
			r.push(Bool(!v.Truthy()))
		case uint8(bytecode.And), uint8(bytecode.Or):
			n := int(in.a)
			if n > len(r.stack) {
				return Null, false, errStackEmpty
			}
			isAnd := in.op == uint8(bytecode.And)
			res := isAnd
			for _, v := range r.stack[len(r.stack)-n:] {
				if isAnd {
					res = res && v.Truthy()
				} else {
					res = res || v.Truthy()
				}
			}
			r.drop(n)
			r.push(Bool(res))
		case uint8(bytecode.Plus), uint8(bytecode.Minus), uint8(bytecode.Multiply), uint8(bytecode.Divide), uint8(bytecode.Mod):
			n := len(r.stack)
			if n < 2 {
				return Null, false, errStackEmpty
			}
			l, rt := r.stack[n-1], r.stack[n-2]
			var a, b float64
			if l.k == KindNumber && rt.k == KindNumber {
				a, b = l.num(), rt.num()
			} else {
				a, b = ToNumber(l), ToNumber(rt)
			}
			var x float64
			switch bytecode.Op(in.op) {
			case bytecode.Plus:
				x = a + b
			case bytecode.Minus:
				x = a - b
			case bytecode.Multiply:
				x = a * b
			case bytecode.Divide:
				x = a / b
			default:
				x = math.Mod(a, b)
			}
			r.pop2()
			r.push(Number(x))
		case uint8(bytecode.Eq), uint8(bytecode.NotEq), uint8(bytecode.Gt), uint8(bytecode.GtEq), uint8(bytecode.Lt), uint8(bytecode.LtEq),
			uint8(bytecode.Like), uint8(bytecode.ILike), uint8(bytecode.NotLike), uint8(bytecode.NotILike),
			uint8(bytecode.Regex), uint8(bytecode.NotRegex), uint8(bytecode.IRegex), uint8(bytecode.NotIRegex):
			n := len(r.stack)
			if n < 2 {
				return Null, false, errStackEmpty
			}
			res, err := r.compare(in.op, r.stack[n-1], r.stack[n-2])
			if err != nil {
				return Null, false, err
			}
			r.pop2()
			r.push(Bool(res))
		case uint8(bytecode.In), uint8(bytecode.NotIn):
			n := len(r.stack)
			if n < 2 {
				return Null, false, errStackEmpty
			}
			res, err := includes(r.stack[n-2], r.stack[n-1])
			if err != nil {
				return Null, false, err
			}
			if in.op == uint8(bytecode.NotIn) {
				res = !res
			}
			r.pop2()
			r.push(Bool(res))
		case opGetGlobalPath:
			v, err := r.getGlobal(in.ext.path, true)
			if err != nil {
				return Null, false, err
			}
			r.push(v)
			ip = in.a
		case opGlobalCompare:
			// The loop counted the constant; count the path and the
			// comparison as they were before fusing.
			r.ops++
			v, err := r.getGlobal(in.ext.path, true)
			if err != nil {
				return Null, false, err
			}
			r.ops++
			res, err := r.compare(uint8(in.b), v, in.val)
			if err != nil {
				return Null, false, err
			}
			r.push(Bool(res))
			ip = in.a
		case opGlobalCall:
			v, err := r.getGlobal(in.ext.path, true)
			if err != nil {
				return Null, false, err
			}
			if !r.callsNative(in.ext.name) {
				// Go on at the original call.
				r.push(v)
				ip = in.a
				break
			}
			// The loop counted the path; count the call.
			r.ops++
			if v, err = r.callNative1(in.ext.stl, v); err != nil {
				return Null, false, err
			}
			r.push(v)
			ip = in.a + 1
		case opGlobalCallCompare:
			// The loop counted the constant; count the path.
			r.ops++
			v, err := r.getGlobal(in.ext.path, true)
			if err != nil {
				return Null, false, err
			}
			if !r.callsNative(in.ext.name) {
				// Go on at the original call, with the constant and
				// the path's value on the stack as it expects.
				r.push(in.val)
				r.push(v)
				ip = in.a
				break
			}
			// Count the call and the comparison.
			r.ops += 2
			if v, err = r.callNative1(in.ext.stl, v); err != nil {
				return Null, false, err
			}
			res, err := r.compare(uint8(in.b), v, in.val)
			if err != nil {
				return Null, false, err
			}
			r.push(Bool(res))
			ip = in.a + 2
		case uint8(bytecode.GetGlobal):
			n := int(in.a)
			if n > len(r.stack) {
				return Null, false, errStackEmpty
			}
			path := make([]string, n)
			for i := range path {
				v := r.stack[len(r.stack)-1-i]
				path[i] = JSString(v)
			}
			r.drop(n)
			v, err := r.getGlobal(path, false)
			if err != nil {
				return Null, false, err
			}
			r.push(v)
		case uint8(bytecode.Pop):
			if _, err := r.pop(); err != nil {
				return Null, false, err
			}
		case uint8(bytecode.CloseUpvalue):
			if len(r.stack) == 0 {
				return Null, false, errStackEmpty
			}
			r.truncate(len(r.stack) - 1)
		case uint8(bytecode.Return), opEnd:
			var result Value
			if in.op == uint8(bytecode.Return) {
				v, err := r.pop()
				if err != nil {
					return Null, false, err
				}
				result = v
			} else if len(r.frames) == 1 && len(r.stack) > 0 {
				result, _ = r.pop()
			}
			last := r.frames[len(r.frames)-1]
			r.frames = r.frames[:len(r.frames)-1]
			if len(r.frames) == 0 {
				return result, true, nil
			}
			if int(last.stackStart) > len(r.stack) {
				return Null, false, rtErr("Stack underflow")
			}
			r.truncate(int(last.stackStart))
			r.push(result)
			// A try block of the finished frame can no longer catch.
			for len(r.tries) > 0 && int(r.tries[len(r.tries)-1].callStackLen) > len(r.frames) {
				r.tries = r.tries[:len(r.tries)-1]
			}
			fr = &r.frames[len(r.frames)-1]
			code, ip = fr.chunk.code, fr.ip
		case uint8(bytecode.GetLocal):
			i := int(fr.stackStart) + int(in.a)
			if i < len(r.stack) {
				r.push(r.stack[i])
			} else {
				r.push(Null)
			}
		case uint8(bytecode.SetLocal):
			v, err := r.pop()
			if err != nil {
				return Null, false, err
			}
			i := int(fr.stackStart) + int(in.a)
			if i >= len(r.stack) {
				return Null, false, rtErr(fmt.Sprintf("Invalid local index: %d", in.a))
			}
			r.stack[i] = v
		case uint8(bytecode.GetProperty), uint8(bytecode.GetPropertyNullish):
			n := len(r.stack)
			if n < 2 {
				return Null, false, errStackEmpty
			}
			v, err := GetProperty(r.stack[n-2], r.stack[n-1])
			if err != nil {
				return Null, false, err
			}
			r.pop2()
			r.push(v)
		case uint8(bytecode.SetProperty):
			n := len(r.stack)
			if n < 3 {
				return Null, false, errStackEmpty
			}
			if err := r.setProperty(r.stack[n-3], r.stack[n-2], r.stack[n-1]); err != nil {
				return Null, false, err
			}
			r.drop(3)
		case uint8(bytecode.Dict):
			n := int(in.a) * 2
			if n > len(r.stack) {
				return Null, false, errStackEmpty
			}
			els := r.stack[len(r.stack)-n:]
			d := NewDict(n / 2)
			for i := 0; i < n; i += 2 {
				d.Set(els[i], els[i+1])
			}
			r.alloc += shallowCost(DictValue(d))
			r.drop(n)
			r.push(DictValue(d))
		case uint8(bytecode.Array), uint8(bytecode.Tuple):
			n := int(in.a)
			if n > len(r.stack) {
				return Null, false, errStackEmpty
			}
			start := len(r.stack) - n
			elems := make([]Value, n)
			copy(elems, r.stack[start:])
			v := newArray(elems)
			if in.op == uint8(bytecode.Tuple) {
				v.k = KindTuple
			}
			r.alloc += shallowCost(v)
			r.drop(n)
			r.push(v)
		case uint8(bytecode.Jump):
			ip = in.a
		case uint8(bytecode.JumpIfFalse):
			v, err := r.pop()
			if err != nil {
				return Null, false, err
			}
			if !v.Truthy() {
				ip = in.a
			}
		case uint8(bytecode.JumpIfStackNotNull):
			if n := len(r.stack); n > 0 && r.stack[n-1].k != KindNull {
				ip = in.a
			}
		case uint8(bytecode.DeclareFn):
			if r.declared == nil {
				r.declared = make(map[string]declaredFn)
			}
			r.declared[in.ext.name] = declaredFn{ip: ip, argCount: in.b}
			ip = in.a
		case uint8(bytecode.Callable):
			c := &Callable{Name: in.ext.name, ArgCount: int(in.b), kind: callLocal, upvalueCount: int(in.ext.upvalues), ip: ip, chunk: fr.chunk}
			r.alloc += 4 * costUnit
			r.push(Value{k: KindCallable, p: ptr(c)})
			ip = in.a
		case uint8(bytecode.Closure):
			v, err := r.pop()
			if err != nil {
				return Null, false, err
			}
			if v.k != KindCallable {
				return Null, false, rtErr("Invalid callable: " + Format(v))
			}
			c := v.callable()
			if int(in.a) != c.upvalueCount {
				return Null, false, rtErr(fmt.Sprintf("Invalid upvalue count. Expected %d, got %d", c.upvalueCount, in.a))
			}
			ups := make([]*upvalue, in.a)
			pairs := in.ext.pairs
			for i := range ups {
				idx := int(pairs[2*i+1])
				if pairs[2*i] != 0 {
					ups[i] = r.captureUpvalue(int(fr.stackStart) + idx)
				} else {
					if fr.closure == nil || idx >= len(fr.closure.upvalues) {
						return Null, false, rtErr(fmt.Sprintf("Invalid upvalue index: %d", idx))
					}
					ups[i] = fr.closure.upvalues[idx]
				}
			}
			r.alloc += int64(4+len(ups)) * costUnit
			r.push(Value{k: KindClosure, p: ptr(&Closure{Callable: c, upvalues: ups})})
		case uint8(bytecode.GetUpvalue), uint8(bytecode.SetUpvalue):
			idx := int(in.a)
			if fr.closure == nil || idx >= len(fr.closure.upvalues) {
				return Null, false, rtErr(fmt.Sprintf("Invalid upvalue index: %d", idx))
			}
			u := fr.closure.upvalues[idx]
			if in.op == uint8(bytecode.GetUpvalue) {
				switch {
				case u.closed:
					r.push(u.value)
				case u.location < len(r.stack):
					r.push(r.stack[u.location])
				default:
					r.push(Null)
				}
				break
			}
			v, err := r.pop()
			if err != nil {
				return Null, false, err
			}
			switch {
			case u.closed:
				u.value = v
			case u.location < len(r.stack):
				r.stack[u.location] = v
			}
		case uint8(bytecode.CallGlobal), uint8(bytecode.CallLocal):
			fr.ip = ip
			paused, err := r.call(in, fr)
			if err != nil {
				return Null, false, err
			}
			if paused {
				return Null, false, nil
			}
			fr = &r.frames[len(r.frames)-1]
			code, ip = fr.chunk.code, fr.ip
		case uint8(bytecode.Try):
			r.tries = append(r.tries, tryFrame{callStackLen: int32(len(r.frames)), stackLen: int32(len(r.stack)), catchIP: in.a})
		case uint8(bytecode.PopTry):
			if len(r.tries) == 0 {
				return Null, false, rtErr("Invalid operation POP_TRY: no try block to pop")
			}
			r.tries = r.tries[:len(r.tries)-1]
		case uint8(bytecode.Throw):
			v, err := r.pop()
			if err != nil {
				return Null, false, err
			}
			if v.k != KindError {
				return Null, false, rtErr("Can not throw: value is not of type Error")
			}
			if len(r.tries) == 0 {
				e := v.AsError()
				return Null, false, &ThrownError{Type: e.Type, Message: e.Message, Payload: e.Payload}
			}
			t := r.tries[len(r.tries)-1]
			r.tries = r.tries[:len(r.tries)-1]
			if int(t.stackLen) > len(r.stack) || int(t.callStackLen) > len(r.frames) || t.callStackLen < 1 {
				return Null, false, rtErr("Stack underflow")
			}
			r.truncate(int(t.stackLen))
			clear(r.frames[t.callStackLen:])
			r.frames = r.frames[:t.callStackLen]
			r.push(v)
			fr = &r.frames[len(r.frames)-1]
			code, ip = fr.chunk.code, t.catchIP
		case opTrap:
			return Null, false, &RuntimeError{Msg: in.ext.err, Err: ErrInvalidBytecode}
		default:
			return Null, false, &RuntimeError{Msg: fmt.Sprintf("Unexpected node while running bytecode in chunk %q: %d", fr.chunk.name, in.op), Err: ErrInvalidBytecode}
		}
	}
}

// compare runs a comparison op (see fusableCompare) on top, the value on
// top of the stack, and below, the one under it: for the op itself and
// for a fused one.
func (r *run) compare(op uint8, top, below Value) (bool, error) {
	switch bytecode.Op(op) {
	case bytecode.Eq, bytecode.NotEq, bytecode.Gt, bytecode.GtEq, bytecode.Lt, bytecode.LtEq:
		return compareValues(top, below, bytecode.Op(op)), nil
	case bytecode.Like, bytecode.ILike, bytecode.NotLike, bytecode.NotILike:
		o := bytecode.Op(op)
		res, err := r.like(top, below, o == bytecode.ILike || o == bytecode.NotILike)
		return res != (o == bytecode.NotLike || o == bytecode.NotILike), err
	case bytecode.Regex, bytecode.NotRegex, bytecode.IRegex, bytecode.NotIRegex:
		o := bytecode.Op(op)
		res, err := r.regexOp(below, top, o == bytecode.IRegex || o == bytecode.NotIRegex)
		return res != (o == bytecode.NotRegex || o == bytecode.NotIRegex), err
	}
	return false, rtErr(fmt.Sprintf("vm: not a comparison: %d", op))
}

// drop pops n values without closing upvalues, as PostHog's plain pops do.
func (r *run) drop(n int) {
	k := len(r.stack) - n
	clear(r.stack[k:])
	r.stack = r.stack[:k]
}

func (r *run) pop2() {
	n := len(r.stack)
	r.stack[n-1], r.stack[n-2] = Null, Null
	r.stack = r.stack[:n-2]
}

// renderLimit bounds the text rendered for one value in this run.
func (r *run) renderLimit() int {
	if max := r.m.opts.MaxStringBytes; max > 0 && max < maxRender {
		return max
	}
	return maxRender
}

func (r *run) newString(s string) (Value, error) {
	if max := r.m.opts.MaxStringBytes; (max > 0 && len(s) > max) || len(s) > maxRender {
		return Null, r.limitErr(ErrSizeLimit, "String length %d exceeds the limit of %d bytes", len(s), max)
	}
	return String(s), nil
}
