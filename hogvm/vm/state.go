package vm

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/hogwire/hogwire/hogvm/bytecode"
)

// State is a paused run. It serialises to JSON (MarshalJSON) in the shape
// of PostHog's VMState, so a run can be resumed in another process with
// UnmarshalState and Machine.Resume. The JSON embeds the program.
type State struct {
	prog *Program
	// globals are the run's globals: a resumed run reads them as the
	// paused one did (PostHog keeps them in bytecodes.root.globals).
	globals      Value
	stack        []Value
	frames       []frame
	tries        []tryFrame
	upvals       []*upvalue
	declared     map[string]declaredFn
	ops          int64
	async        int
	syncDuration time.Duration
	alloc        int64
}

// AsyncSteps is the number of async calls made so far.
func (s *State) AsyncSteps() int { return s.async }

// Elapsed is the wall time the run has spent executing so far.
func (s *State) Elapsed() time.Duration { return s.syncDuration }

// Program returns the program being run.
func (s *State) Program() *Program { return s.prog }

// snapshotInto fills s with the run's state; stack is a copy of the run's
// stack, and the frames are appended to frames.
func (r *run) snapshotInto(s *State, stack []Value, frames []frame) {
	*s = State{
		prog:         r.prog,
		globals:      r.globals,
		stack:        stack,
		frames:       append(frames, r.frames...),
		tries:        slices.Clone(r.tries),
		upvals:       r.liveUpvalues(),
		ops:          r.ops,
		async:        r.async,
		syncDuration: r.elapsed(),
		alloc:        r.alloc,
	}
	if r.declared != nil {
		s.declared = make(map[string]declaredFn, len(r.declared))
		for k, v := range r.declared {
			s.declared[k] = v
		}
	}
}

// liveUpvalues returns the upvalues a snapshot must hold, by id: the open
// ones and the closed ones that a closure reachable from the stack or the
// call frames still refers to. Closed upvalues are not kept anywhere else,
// so a loop making closures leaves nothing behind once they are dropped.
func (r *run) liveUpvalues() []*upvalue {
	if r.upvalID == 0 {
		// No upvalue was made or restored: nothing can refer to one, and
		// the stack (a destination's fetch options, say) need not be
		// walked.
		return nil
	}
	seen := map[*upvalue]bool{}
	objs := map[unsafe.Pointer]int{}
	var out []*upvalue
	var walk func(v Value, depth int)
	addClosure := func(cl *Closure, depth int) {
		for _, u := range cl.upvalues {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
				if u.closed {
					walk(u.value, depth+1)
				}
			}
		}
	}
	walk = func(v Value, depth int) {
		if depth > maxCopyDepth || !v.isObject() {
			return
		}
		switch v.k {
		case KindClosure, KindArray, KindTuple, KindDict, KindError:
		default:
			return
		}
		// Shared objects are walked once, unless reached again closer to
		// the top, where the depth bound leaves more of them to walk.
		if d, ok := objs[v.p]; ok && d <= depth {
			return
		}
		objs[v.p] = depth
		switch v.k {
		case KindClosure:
			addClosure(v.closure(), depth)
		case KindArray, KindTuple:
			for _, x := range v.arr().Elems {
				walk(x, depth+1)
			}
		case KindDict:
			if d := v.dict(); !d.frozen && !d.lazy {
				// Frozen dicts, and the values lazy copies share with
				// them, hold no functions.
				for _, x := range d.vals {
					walk(x, depth+1)
				}
			}
		case KindError:
			walk(v.AsError().Payload, depth+1)
		}
	}
	for _, u := range r.open {
		seen[u] = true
		out = append(out, u)
	}
	for _, v := range r.stack {
		walk(v, 0)
	}
	for _, f := range r.frames {
		if f.closure != nil {
			addClosure(f.closure, 0)
		}
	}
	slices.SortFunc(out, func(a, b *upvalue) int { return a.id - b.id })
	return out
}

func (r *run) elapsed() time.Duration {
	if r.start.IsZero() {
		return r.prior
	}
	return r.prior + time.Since(r.start)
}

func (r *run) load(s *State) error {
	r.prog = s.prog
	r.globals = s.globals
	for _, v := range s.stack {
		r.push(v)
	}
	r.frames = append(r.frames[:0], s.frames...)
	r.tries = append(r.tries[:0], s.tries...)
	r.open = r.open[:0]
	r.upvalID = 0
	for _, u := range s.upvals {
		if !u.closed {
			r.open = append(r.open, u)
		}
		r.upvalID = max(r.upvalID, u.id)
	}
	slices.SortStableFunc(r.open, func(a, b *upvalue) int { return a.location - b.location })
	if s.declared != nil {
		r.declared = make(map[string]declaredFn, len(s.declared))
		for k, v := range s.declared {
			r.declared[k] = v
		}
	}
	r.ops, r.async, r.alloc = s.ops, s.async, s.alloc
	if len(r.frames) == 0 {
		return rtErr("vm: resume: state has no call frames")
	}
	return nil
}

// stateEncoder turns run state into plain values for JSON.
type stateEncoder struct{ prog *Program }

func ipPos(c *chunk, ip int32) int64 {
	if ip >= 0 && int(ip) < len(c.idxPos) {
		return int64(c.idxPos[ip])
	}
	return -1
}

func (e stateEncoder) callable(c *Callable) Value {
	d := NewDict(7)
	d.SetString("__hogCallable__", String(callableKindNames[c.kind]))
	d.SetString("name", String(c.Name))
	d.SetString("argCount", Int(int64(c.ArgCount)))
	d.SetString("upvalueCount", Int(int64(c.upvalueCount)))
	chunkName := "stl"
	ip := int64(c.ip)
	switch {
	case c.kind == callAsync:
		chunkName = "async"
	case c.chunk != nil:
		chunkName = c.chunk.name
		ip = ipPos(c.chunk, c.ip)
	}
	d.SetString("ip", Int(ip))
	d.SetString("chunk", String(chunkName))
	return DictValue(d)
}

func (e stateEncoder) closure(cl *Closure) Value {
	if cl == nil {
		return Null
	}
	ids := make([]Value, len(cl.upvalues))
	for i, u := range cl.upvalues {
		ids[i] = Int(int64(u.id))
	}
	d := NewDict(3)
	d.SetString("__hogClosure__", Bool(true))
	d.SetString("callable", e.callable(cl.Callable))
	d.SetString("upvalues", newArray(ids))
	return DictValue(d)
}

// value converts closures and callables inside v into marker dicts.
func (e stateEncoder) value(v Value, depth int) Value {
	if depth > maxCopyDepth {
		return Null
	}
	switch v.k {
	case KindClosure:
		return e.closure(v.closure())
	case KindCallable:
		return e.callable(v.callable())
	case KindArray, KindTuple:
		elems := v.arr().Elems
		out := make([]Value, len(elems))
		for i, x := range elems {
			if x.isObject() && x.p == v.p {
				continue
			}
			out[i] = e.value(x, depth+1)
		}
		return newArray(out)
	case KindDict:
		d := v.dict()
		out := NewDict(d.Len())
		for i, k := range d.keys {
			x := d.vals[i]
			if x.isObject() && x.p == v.p {
				x = Null
			}
			out.Set(String(JSString(k)), e.value(x, depth+1))
		}
		return DictValue(out)
	case KindError:
		er := v.AsError()
		return Value{k: KindError, p: ptr(&ErrorValue{Type: er.Type, Message: er.Message, Payload: e.value(er.Payload, depth+1)})}
	}
	return v
}

// MarshalJSON encodes the state like PostHog's VMState.
func (s *State) MarshalJSON() ([]byte, error) {
	e := stateEncoder{prog: s.prog}
	raw := make([]Value, 0, len(s.prog.src.Code)+2)
	if s.prog.src.Version == 0 {
		raw = append(raw, String("_h"))
	} else {
		raw = append(raw, String("_H"), Int(int64(s.prog.src.Version)))
	}
	for _, el := range s.prog.src.Code {
		raw = append(raw, constValue(el))
	}
	root := NewDict(2)
	root.SetString("bytecode", newArray(raw))
	if s.globals.k != KindNull {
		root.SetString("globals", s.globals)
	}
	bcs := NewDict(1)
	bcs.SetString("root", DictValue(root))

	stack := make([]Value, len(s.stack))
	for i, v := range s.stack {
		stack[i] = e.value(v, 0)
	}
	ups := make([]Value, len(s.upvals))
	for i, u := range s.upvals {
		d := NewDict(5)
		d.SetString("__hogUpValue__", Bool(true))
		d.SetString("id", Int(int64(u.id)))
		d.SetString("location", Int(int64(u.location)))
		d.SetString("closed", Bool(u.closed))
		d.SetString("value", e.value(u.value, 0))
		ups[i] = DictValue(d)
	}
	frames := make([]Value, len(s.frames))
	for i, f := range s.frames {
		d := NewDict(5)
		d.SetString("ip", Int(ipPos(f.chunk, f.ip)))
		d.SetString("chunk", String(f.chunk.name))
		d.SetString("stackStart", Int(int64(f.stackStart)))
		d.SetString("argCount", Int(int64(f.argCount)))
		d.SetString("closure", e.closure(f.closure))
		frames[i] = DictValue(d)
	}
	tries := make([]Value, len(s.tries))
	for i, t := range s.tries {
		d := NewDict(3)
		d.SetString("callStackLen", Int(int64(t.callStackLen)))
		d.SetString("stackLen", Int(int64(t.stackLen)))
		// Throw frames always catch in the frame that opened them.
		c := s.frames[max(0, min(int(t.callStackLen), len(s.frames))-1)].chunk
		d.SetString("catchIp", Int(ipPos(c, t.catchIP)))
		tries[i] = DictValue(d)
	}
	declared := NewDict(len(s.declared))
	for name, fn := range s.declared {
		declared.SetString(name, newArray([]Value{Int(ipPos(s.prog.root, fn.ip)), Int(int64(fn.argCount))}))
	}
	st := NewDict(10)
	st.SetString("bytecodes", DictValue(bcs))
	st.SetString("stack", newArray(stack))
	st.SetString("upvalues", newArray(ups))
	st.SetString("callStack", newArray(frames))
	st.SetString("throwStack", newArray(tries))
	st.SetString("declaredFunctions", DictValue(declared))
	st.SetString("ops", Int(s.ops))
	st.SetString("asyncSteps", Int(int64(s.async)))
	st.SetString("syncDuration", Int(s.syncDuration.Milliseconds()))
	// PostHog's VM keeps its peak memory estimate here; ours is what the
	// run allocated, which a limit also applies to across resumes.
	st.SetString("maxMemUsed", Int(s.alloc))
	return DictValue(st).MarshalJSON()
}

// UnmarshalState decodes a state written by State.MarshalJSON, linking
// the bytecode it carries against lib.
func UnmarshalState(data []byte, lib *Library) (*State, error) {
	v, err := ParseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("vm: state: %w", err)
	}
	d := v.AsDict()
	if d == nil {
		return nil, errors.New("vm: state: not a JSON object")
	}
	get := func(d *Dict, k string) Value { x, _ := d.GetString(k); return x }
	var rootCode, globals Value
	if bcs := get(d, "bytecodes").AsDict(); bcs != nil {
		if root := get(bcs, "root").AsDict(); root != nil {
			rootCode = get(root, "bytecode")
			globals = get(root, "globals")
		}
	}
	if rootCode.k == KindNull {
		rootCode = get(d, "bytecode")
	}
	elems, ok := elemsOf(rootCode)
	if !ok {
		return nil, errors.New("vm: state: missing bytecode")
	}
	raw, err := Value.MarshalJSON(newArray(elems))
	if err != nil {
		return nil, err
	}
	src, err := bytecode.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("vm: state: %w", err)
	}
	prog, err := Link(src, lib)
	if err != nil {
		return nil, fmt.Errorf("vm: state: %w", err)
	}
	dec := &stateDecoder{prog: prog, upvals: map[int]*upvalue{}}
	s := &State{prog: prog, globals: globals}
	intOf := func(v Value) (int, error) {
		f := ToNumber(v)
		if f != math.Trunc(f) || f < -1 || f > maxOperand*4 {
			return 0, fmt.Errorf("vm: state: invalid number %s", Format(v))
		}
		return int(f), nil
	}
	upList, _ := elemsOf(get(d, "upvalues"))
	for _, u := range upList {
		ud := u.AsDict()
		if ud == nil {
			return nil, errors.New("vm: state: invalid upvalue")
		}
		id, err1 := intOf(get(ud, "id"))
		loc, err2 := intOf(get(ud, "location"))
		if err := errors.Join(err1, err2); err != nil || loc < 0 {
			return nil, fmt.Errorf("vm: state: invalid upvalue: %v", err)
		}
		up := &upvalue{id: id, location: loc, closed: get(ud, "closed").Truthy()}
		dec.upvals[id] = up
		s.upvals = append(s.upvals, up)
	}
	for i, u := range upList {
		v, err := dec.value(get(u.AsDict(), "value"), 0)
		if err != nil {
			return nil, err
		}
		s.upvals[i].value = v
	}
	stack, _ := elemsOf(get(d, "stack"))
	for _, x := range stack {
		v, err := dec.value(x, 0)
		if err != nil {
			return nil, err
		}
		s.stack = append(s.stack, v)
	}
	frames, _ := elemsOf(get(d, "callStack"))
	for _, f := range frames {
		fd := f.AsDict()
		if fd == nil {
			return nil, errors.New("vm: state: invalid frame")
		}
		c, err := dec.chunk(JSString(get(fd, "chunk")))
		if err != nil {
			return nil, err
		}
		pos, err1 := intOf(get(fd, "ip"))
		start, err2 := intOf(get(fd, "stackStart"))
		argc, err3 := intOf(get(fd, "argCount"))
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, err
		}
		ip, err := dec.ip(c, pos)
		if err != nil {
			return nil, err
		}
		if start < 0 || start > len(s.stack) {
			return nil, errors.New("vm: state: frame outside the stack")
		}
		fr := frame{ip: ip, chunk: c, stackStart: int32(start), argCount: int32(argc)}
		if cv := get(fd, "closure"); cv.k != KindNull {
			cl, err := dec.value(cv, 0)
			if err != nil {
				return nil, err
			}
			if cl.k == KindClosure {
				fr.closure = cl.closure()
			}
		}
		s.frames = append(s.frames, fr)
	}
	if len(s.frames) == 0 {
		return nil, errors.New("vm: state: no call frames")
	}
	tries, _ := elemsOf(get(d, "throwStack"))
	for _, t := range tries {
		td := t.AsDict()
		if td == nil {
			return nil, errors.New("vm: state: invalid throw frame")
		}
		csl, err1 := intOf(get(td, "callStackLen"))
		sl, err2 := intOf(get(td, "stackLen"))
		pos, err3 := intOf(get(td, "catchIp"))
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, err
		}
		if csl < 1 || csl > len(s.frames) || sl < 0 || sl > len(s.stack) {
			return nil, errors.New("vm: state: invalid throw frame")
		}
		ip, err := dec.ip(s.frames[csl-1].chunk, pos)
		if err != nil {
			return nil, err
		}
		s.tries = append(s.tries, tryFrame{callStackLen: int32(csl), stackLen: int32(sl), catchIP: ip})
	}
	if decl := get(d, "declaredFunctions").AsDict(); decl != nil && decl.Len() > 0 {
		s.declared = map[string]declaredFn{}
		for i, k := range decl.keys {
			pair, _ := elemsOf(decl.vals[i])
			if len(pair) != 2 {
				return nil, errors.New("vm: state: invalid declared function")
			}
			pos, err1 := intOf(pair[0])
			argc, err2 := intOf(pair[1])
			if err := errors.Join(err1, err2); err != nil {
				return nil, err
			}
			ip, err := dec.ip(prog.root, pos)
			if err != nil {
				return nil, err
			}
			s.declared[JSString(k)] = declaredFn{ip: ip, argCount: int32(argc)}
		}
	}
	s.ops = int64(ToNumber(get(d, "ops")))
	s.async = int(ToNumber(get(d, "asyncSteps")))
	s.syncDuration = time.Duration(ToNumber(get(d, "syncDuration"))) * time.Millisecond
	s.alloc = int64(ToNumber(get(d, "maxMemUsed")))
	return s, nil
}

type stateDecoder struct {
	prog   *Program
	upvals map[int]*upvalue
}

func (d *stateDecoder) chunk(name string) (*chunk, error) {
	if name == "root" || name == "" {
		return d.prog.root, nil
	}
	if len(name) > 4 && name[:4] == "stl/" {
		if b := d.prog.lib.bytecodeFunc(name[4:]); b != nil {
			return b.chunk, nil
		}
	}
	return nil, fmt.Errorf("vm: state: unknown chunk %q", name)
}

func (d *stateDecoder) ip(c *chunk, pos int) (int32, error) {
	if pos < 0 || pos >= len(c.posIdx) || c.posIdx[pos] < 0 {
		return 0, fmt.Errorf("vm: state: invalid instruction position %d in chunk %q", pos, c.name)
	}
	return c.posIdx[pos], nil
}

func (d *stateDecoder) callable(cd *Dict) (*Callable, error) {
	get := func(k string) Value { x, _ := cd.GetString(k); return x }
	c := &Callable{Name: JSString(get("name")), ArgCount: int(ToNumber(get("argCount"))), upvalueCount: int(ToNumber(get("upvalueCount")))}
	if c.ArgCount < 0 || c.ArgCount > maxOperand || c.upvalueCount < 0 || c.upvalueCount > maxOperand {
		return nil, errors.New("vm: state: invalid callable")
	}
	switch JSString(get("__hogCallable__")) {
	case "local":
		c.kind = callLocal
	case "stl":
		c.kind = callSTL
	case "async":
		c.kind = callAsync
		c.ip = -1
		return c, nil
	default:
		return nil, errors.New("vm: state: invalid callable kind")
	}
	chunkName := JSString(get("chunk"))
	if c.kind == callSTL && chunkName == "stl" {
		c.ip = -1
		return c, nil
	}
	ch, err := d.chunk(chunkName)
	if err != nil {
		return nil, err
	}
	c.chunk = ch
	c.ip, err = d.ip(ch, int(ToNumber(get("ip"))))
	return c, err
}

func (d *stateDecoder) value(v Value, depth int) (Value, error) {
	if depth > maxJSONDepth {
		return Null, errors.New("vm: state: nested too deeply")
	}
	switch v.k {
	case KindArray, KindTuple:
		for i, x := range v.arr().Elems {
			y, err := d.value(x, depth+1)
			if err != nil {
				return Null, err
			}
			v.arr().Elems[i] = y
		}
	case KindDict:
		dd := v.dict()
		if m, _ := dd.GetString("__hogClosure__"); m.Truthy() {
			cv, _ := dd.GetString("callable")
			cd := cv.AsDict()
			if cd == nil {
				return Null, errors.New("vm: state: invalid closure")
			}
			c, err := d.callable(cd)
			if err != nil {
				return Null, err
			}
			ids, _ := dd.GetString("upvalues")
			idList, _ := elemsOf(ids)
			cl := &Closure{Callable: c}
			for _, id := range idList {
				u := d.upvals[int(ToNumber(id))]
				if u == nil {
					return Null, errors.New("vm: state: closure refers to an unknown upvalue")
				}
				cl.upvalues = append(cl.upvalues, u)
			}
			return Value{k: KindClosure, p: ptr(cl)}, nil
		}
		if m, _ := dd.GetString("__hogCallable__"); m.Truthy() {
			c, err := d.callable(dd)
			if err != nil {
				return Null, err
			}
			return Value{k: KindCallable, p: ptr(c)}, nil
		}
		for i, x := range dd.vals {
			y, err := d.value(x, depth+1)
			if err != nil {
				return Null, err
			}
			dd.vals[i] = y
		}
	}
	return v, nil
}
