package vm

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/hogwire/hogwire/hogvm/bytecode"
)

func ptr[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }

// call executes CALL_GLOBAL or CALL_LOCAL. The caller's frame already holds
// the return address. paused reports an async call (see pause).
func (r *run) call(in *instr, fr *frame) (bool, error) {
	opts := &r.m.opts
	if bytecode.Op(in.op) == bytecode.CallLocal {
		return r.callLocal(int(in.a), fr)
	}
	name := in.ext.name
	argc := int(in.b)
	if r.declared != nil && name != "toString" {
		if d, ok := r.declared[name]; ok {
			if max := opts.MaxArgs; max > 0 && int(d.argCount) > max {
				return false, r.limitErr(ErrTooManyArgs, "Too many arguments")
			}
			for i := argc; i < int(d.argCount); i++ {
				r.push(Null)
			}
			start := len(r.stack) - int(d.argCount)
			if start < 0 {
				return false, rtErr("Not enough arguments on the stack")
			}
			return false, r.pushFrame(frame{ip: d.ip, chunk: fr.chunk, stackStart: int32(start), argCount: d.argCount})
		}
	}
	if argc > len(r.stack) {
		return false, rtErr("Not enough arguments on the stack")
	}
	if opts.MaxArgs > 0 && argc > opts.MaxArgs {
		return false, r.limitErr(ErrTooManyArgs, "Too many arguments")
	}
	if fr.chunk.version == 0 {
		slices.Reverse(r.args(argc))
	}
	if r.host != nil && r.m.hostFns[name] {
		r.startClock()
		r.reserved = 0
		args := r.args(argc)
		v, err := r.host.Call(name, args)
		if err != nil {
			return false, &RuntimeError{Msg: fmt.Sprintf("%s: %v", name, err), Err: err}
		}
		r.countResult(v, args, false)
		r.replaceArgs(argc, v)
		return false, nil
	}
	if name != "toString" && r.m.isAsync(name) {
		return r.pause(name, argc)
	}
	if f := in.ext.stl; f != nil {
		return false, r.callNative(f, argc, false)
	}
	b := in.ext.bstl
	if b == nil {
		b = r.prog.lib.bytecodeFunc(name)
	}
	if b != nil {
		if argc != b.argCount {
			return false, rtErr(fmt.Sprintf("Function %s requires exactly %d arguments", name, b.argCount))
		}
		return false, r.pushFrame(frame{chunk: b.chunk, stackStart: int32(len(r.stack) - argc), argCount: int32(argc), closure: b.closure})
	}
	if name == "import" {
		return false, rtErr("Importing bytecode modules is not supported")
	}
	return false, rtErr("Unsupported function call: " + name)
}

func (r *run) pushFrame(f frame) error {
	r.frames = append(r.frames, f)
	if max := r.m.opts.MaxCallDepth; max > 0 && len(r.frames) > max {
		return r.limitErr(ErrCallDepth, "Call stack exceeded maximum length of %d", max)
	}
	return nil
}

func (r *run) callNative(f *Native, argc int, pad bool) error {
	if argc < f.Min {
		return rtErr(fmt.Sprintf("Function %s requires at least %d arguments", f.Name, f.Min))
	}
	if f.Max >= 0 && argc > f.Max {
		return rtErr(fmt.Sprintf("Function %s requires at most %d arguments", f.Name, f.Max))
	}
	if pad {
		// Functions called through a value get their optional arguments
		// as explicit nulls, as in PostHog's VM.
		for i := argc; i < f.Max; i++ {
			r.push(Null)
			argc++
		}
	}
	r.closeUpvalues(len(r.stack) - argc)
	v, err := r.applyNative(f, r.args(argc))
	if err != nil {
		return err
	}
	r.replaceArgs(argc, v)
	return nil
}

// applyNative calls f on args and counts what its result holds and took,
// for callNative and a fused call alike.
func (r *run) applyNative(f *Native, args []Value) (Value, error) {
	r.reserved = 0
	v, err := f.Fn(Env{r}, args)
	if err != nil {
		return v, err
	}
	r.countResult(v, args, f.Shares)
	// Big results took real work: count it so the clock is read sooner.
	switch v.k {
	case KindString:
		r.ops += int64(v.n >> 10)
	case KindArray, KindTuple:
		r.ops += int64(len(v.arr().Elems) >> 7)
	}
	return v, nil
}

// callsNative reports whether a CALL_GLOBAL of name with one argument
// would call the library's native function of that name (see call):
// the program declares no functions, no host or async function takes the
// name, and no open upvalue would be closed over the argument's slot
// (callNative closes those; an upvalue left above the stack's top by a
// pop would see the argument).
func (r *run) callsNative(name string) bool {
	if r.declared != nil || len(r.open) > 0 {
		return false
	}
	if r.host != nil && r.m.hostFns[name] {
		return false
	}
	return name == "toString" || !r.m.isAsync(name)
}

// callNative1 is callNative of f on the one argument arg, for a fused
// call (see fuseCalls): arg is not on the stack, and the result is
// returned rather than pushed. The caller has checked callsNative and f's
// argument counts.
func (r *run) callNative1(f *Native, arg Value) (Value, error) {
	r.arg[0] = arg
	v, err := r.applyNative(f, r.arg[:])
	r.arg[0] = Null
	return v, err
}

func (r *run) callLocal(argc int, fr *frame) (bool, error) {
	v, err := r.pop()
	if err != nil {
		return false, err
	}
	if v.k != KindClosure {
		return false, rtErr("Invalid closure: " + Format(v))
	}
	if argc > len(r.stack) {
		return false, rtErr("Not enough arguments on the stack")
	}
	if max := r.m.opts.MaxArgs; max > 0 && argc > max {
		return false, r.limitErr(ErrTooManyArgs, "Too many arguments")
	}
	cl := v.closure()
	c := cl.Callable
	switch c.kind {
	case callLocal:
		if argc > c.ArgCount {
			return false, rtErr(fmt.Sprintf("Too many arguments. Passed %d, expected %d", argc, c.ArgCount))
		}
		if max := r.m.opts.MaxArgs; max > 0 && c.ArgCount > max {
			return false, r.limitErr(ErrTooManyArgs, "Too many arguments")
		}
		for i := argc; i < c.ArgCount; i++ {
			r.push(Null)
		}
		return false, r.pushFrame(frame{ip: c.ip, chunk: c.chunk, stackStart: int32(len(r.stack) - c.ArgCount), argCount: int32(c.ArgCount), closure: cl})
	case callSTL:
		if fr.chunk.version == 0 {
			slices.Reverse(r.args(argc))
		}
		if f := r.prog.lib.native(c.Name); f != nil {
			return false, r.callNative(f, argc, true)
		}
		if b := r.prog.lib.bytecodeFunc(c.Name); b != nil {
			if argc != b.argCount {
				return false, rtErr(fmt.Sprintf("Function %s requires exactly %d arguments", c.Name, b.argCount))
			}
			return false, r.pushFrame(frame{chunk: b.chunk, stackStart: int32(len(r.stack) - argc), argCount: int32(argc), closure: b.closure})
		}
	case callAsync:
		if fr.chunk.version == 0 {
			slices.Reverse(r.args(argc))
		}
		return r.pause(c.Name, argc)
	}
	return false, rtErr("Unsupported function call: " + c.Name)
}

// pause ends the run at a call to an async function: r.paused then holds
// the call and the state to resume.
func (r *run) pause(name string, argc int) (bool, error) {
	if max := r.m.opts.MaxAsyncSteps; max > 0 && r.async >= max {
		return false, r.limitErr(ErrAsyncStepLimit, "Exceeded maximum number of async steps: %d", r.m.opts.MaxAsyncSteps)
	}
	if r.valueOnly {
		// Nobody will resume the run (see Machine.Eval): it only has to
		// end here, unfinished.
		return true, nil
	}
	// One copy of the stack holds the arguments and the state's stack,
	// and one allocation the call and its state.
	n := len(r.stack) - argc
	p := &paused{}
	var stack []Value
	if len(r.stack) <= len(p.stackBuf) {
		stack = append(p.stackBuf[:0], r.stack...)
	} else {
		stack = slices.Clone(r.stack)
	}
	r.truncate(n)
	r.async++
	r.snapshotInto(&p.state, stack[:n:n], p.frameBuf[:0])
	p.call = AsyncCall{Name: name, Args: stack[n:], State: &p.state}
	r.paused = &p.call
	return true, nil
}

// paused is an async call with the state to resume it.
type paused struct {
	call  AsyncCall
	state State
	// Room for the stack and frames of most programs that pause, such as
	// a destination's at its fetch: the pause then allocates once. A
	// state's slices are only read once made.
	stackBuf [8]Value
	frameBuf [2]frame
}

// countResult counts what a native or host function allocated to return
// v from args: nothing when v is one of its arguments, else v's own
// storage when shares (its elements are the arguments') and all of v
// otherwise, less what the function reserved.
func (r *run) countResult(v Value, args []Value, shares bool) {
	reserved := r.reserved
	r.reserved = 0
	var n int64
	switch v.k {
	case KindNull, KindBool, KindNumber:
		return
	case KindString:
		for _, a := range args {
			if a.k == KindString && a.p == v.p && a.n == v.n {
				return
			}
		}
		n = costOf(v)
	default:
		for _, a := range args {
			if a.isObject() && a.p == v.p {
				return
			}
		}
		if shares {
			n = shallowCost(v)
		} else {
			n = costOf(v)
		}
	}
	r.alloc += max(0, n-reserved)
}
