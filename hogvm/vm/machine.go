package vm

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Host is the embedder's side of a run (see Machine.RunHost): the host
// functions a program calls by name, and the checkpoints where the
// embedder applies its budgets of time, steps and memory and shares the
// CPU with other runs.
type Host interface {
	// Call performs the host function name (one of Options.HostFunctions).
	// args is valid only during the call: copy it to keep it. A returned
	// error ends the run; Hog code cannot catch it.
	Call(name string, args []Value) (Value, error)
	// Yield is called every few thousand instructions, and as soon as the
	// run has allocated another few dozen kilobytes, with what the run has
	// used so far (cumulative across resumes). It may block, to let other
	// work use the CPU. A returned error ends the run with that error.
	Yield(u Usage) error
}

// Usage is what a run has used so far, cumulative across resumes.
type Usage struct {
	// Steps counts executed instructions (natives that build large values
	// count extra).
	Steps int64
	// Allocated estimates the bytes the run has allocated: every string,
	// array, tuple, dict and closure it created, whether or not it still
	// holds them.
	Allocated int64
}

// Default limits, as in PostHog's VM.
const (
	DefaultTimeout        = 5 * time.Second
	DefaultMemoryLimit    = 64 << 20
	DefaultMaxAsyncSteps  = 100
	DefaultMaxCallDepth   = 1000
	DefaultMaxArgs        = 300
	DefaultMaxStringBytes = 64 << 20
	DefaultMaxArrayLength = 8 << 20
)

// Options configure a Machine. Zero values select the defaults; a negative
// limit disables it.
type Options struct {
	// HostFunctions name the functions a program calls on its Host (see
	// RunHost), looked up by CALL_GLOBAL before the standard library.
	HostFunctions []string
	// AsyncFunctions names the host functions (such as "fetch") whose calls
	// pause the run: Run returns Result.Async and the embedder resumes the
	// state with the function's result. "sleep" is always async.
	AsyncFunctions []string
	// Print receives each line printed by print(), without the newline.
	// Nil discards output. Concurrent runs call it concurrently.
	Print func(line string)
	// Now returns the current time for now(), today(); nil means time.Now.
	Now func() time.Time

	// Limits. Time, steps and memory are checked every few thousand
	// instructions, after each large native operation, and whenever the
	// run has allocated another few dozen kilobytes.
	Timeout        time.Duration // wall time, cumulative across resumes (5 s)
	MemoryLimit    int64         // estimated bytes allocated, cumulative (64 MiB)
	MaxSteps       int64         // executed instructions, cumulative (unlimited)
	MaxAsyncSteps  int           // async calls per run (100)
	MaxCallDepth   int           // frames (1000)
	MaxArgs        int           // arguments per call (300)
	MaxStringBytes int           // length of a string built by the STL (64 MiB)
	MaxArrayLength int           // length of an array built by the STL (8 Mi elements)
}

// Machine runs linked programs with one set of options. It is safe for
// concurrent use; per-run state is pooled.
type Machine struct {
	opts Options
	// async names the async functions: a handful, which every call to a
	// function of the standard library checks, and which compare faster
	// one by one than a map hashes the name.
	async []string
	// asyncFirst has a bit for the first byte of each async name: one
	// test rules out most names without comparing them.
	asyncFirst [4]uint64
	hostFns    map[string]bool
	pool       sync.Pool
	regexes    regexCache
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	if v < 0 {
		return 0
	}
	return v
}

// New returns a Machine.
func New(opts Options) *Machine {
	opts.Timeout = orDefault(opts.Timeout, DefaultTimeout)
	opts.MemoryLimit = orDefault(opts.MemoryLimit, DefaultMemoryLimit)
	opts.MaxAsyncSteps = orDefault(opts.MaxAsyncSteps, DefaultMaxAsyncSteps)
	opts.MaxCallDepth = orDefault(opts.MaxCallDepth, DefaultMaxCallDepth)
	opts.MaxArgs = orDefault(opts.MaxArgs, DefaultMaxArgs)
	opts.MaxStringBytes = orDefault(opts.MaxStringBytes, DefaultMaxStringBytes)
	opts.MaxArrayLength = orDefault(opts.MaxArrayLength, DefaultMaxArrayLength)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Machine{opts: opts, async: []string{"sleep"}, hostFns: map[string]bool{}}
	for _, name := range opts.AsyncFunctions {
		if !slices.Contains(m.async, name) {
			m.async = append(m.async, name)
		}
	}
	for _, name := range m.async {
		if name != "" {
			m.asyncFirst[name[0]>>6] |= 1 << (name[0] & 63)
		}
	}
	for _, name := range opts.HostFunctions {
		m.hostFns[name] = true
	}
	m.pool.New = func() any { return &run{m: m} }
	return m
}

// isAsync reports whether name is an async function.
func (m *Machine) isAsync(name string) bool {
	if name != "" && m.asyncFirst[name[0]>>6]&(1<<(name[0]&63)) == 0 {
		return false
	}
	return slices.Contains(m.async, name)
}

// Result is the outcome of Run or Resume.
type Result struct {
	// Finished is true when the program ran to its end; Value is then its
	// return value.
	Finished bool
	Value    Value
	// Async is set when the program called an async function and paused.
	Async *AsyncCall
	// Ops is the number of instructions executed so far (across resumes).
	Ops int64
	// Allocated is the estimated bytes allocated so far (across resumes):
	// see Usage.
	Allocated int64
}

// AsyncCall describes a paused run: the function to perform, its
// arguments, and the state to resume with its result.
type AsyncCall struct {
	Name  string
	Args  []Value
	State *State
}

// Run executes p with the given globals (a dict, or null for none).
// Globals are read-only for the program: reads return copies of containers.
func (m *Machine) Run(ctx context.Context, p *Program, globals Value) (Result, error) {
	return m.RunHost(ctx, nil, p, globals)
}

// RunHost is Run with a host: the program calls h for the host functions,
// and h.Yield at every checkpoint. A nil h is Run.
func (m *Machine) RunHost(ctx context.Context, h Host, p *Program, globals Value) (res Result, err error) {
	if p == nil {
		return Result{}, rtErr("vm: run: nil program")
	}
	r := m.pool.Get().(*run)
	defer m.recoverRun(r, &err)
	r.reset(p, globals)
	r.host = h
	v, finished, err := r.execute(ctx, 0)
	r.setResult(&res, v, finished)
	m.release(r)
	return res, err
}

// Eval is Run for a caller that needs only the program's value, such as a
// filter: finished is false when the program called an async function,
// where Run would return Result.Async, and no state is kept to resume the
// run. The limits are Run's; Eval saves making a Result, and a paused
// run's state.
func (m *Machine) Eval(ctx context.Context, p *Program, globals Value) (v Value, finished bool, err error) {
	if p == nil {
		return Null, false, rtErr("vm: run: nil program")
	}
	r := m.pool.Get().(*run)
	defer m.recoverRun(r, &err)
	v, finished, err = r.eval(ctx, p, globals)
	m.release(r)
	return v, finished, err
}

// eval runs p on globals for its value alone (see Machine.Eval).
func (r *run) eval(ctx context.Context, p *Program, globals Value) (Value, bool, error) {
	r.reset(p, globals)
	r.valueOnly = true
	return r.execute(ctx, 0)
}

// Evaluator evaluates programs as Machine.Eval does, one at a time, on a
// run state it keeps between them: a caller that evaluates many programs
// in turn on one goroutine, as a worker matching an event against
// thousands of filters does, saves taking a state from the machine's pool
// and putting it back for each. It also remembers the values programs
// read of frozen globals (see Freeze) by fused paths, for the programs
// run next on the same globals; it keeps a few globals alive for that,
// until it is dropped. The limits, step counts and results are Eval's.
// An Evaluator is for one goroutine at a time.
type Evaluator struct {
	m *Machine
	r *run // nil after a run panicked, until the next run makes one
}

// Evaluator returns an Evaluator running programs on m.
func (m *Machine) Evaluator() *Evaluator { return &Evaluator{m: m} }

// Machine returns the machine e runs programs on.
func (e *Evaluator) Machine() *Machine { return e.m }

// Eval is Machine.Eval on e's run state.
func (e *Evaluator) Eval(ctx context.Context, p *Program, globals Value) (v Value, finished bool, err error) {
	if p == nil {
		return Null, false, rtErr("vm: run: nil program")
	}
	r := e.r
	if r == nil {
		r = &run{m: e.m, memoize: true}
	}
	// Dropped while it runs, so that a panic (see recoverRun) leaves no
	// half-run state to the next program.
	e.r = nil
	defer e.m.recoverRun(r, &err)
	v, finished, err = r.eval(ctx, p, globals)
	r.clear()
	e.r = r
	return v, finished, err
}

// recoverRun turns a panic (a VM bug, or a panicking host function) into
// an error, so that one bad program cannot take the process down. The run
// state is dropped rather than pooled.
func (m *Machine) recoverRun(r *run, err *error) {
	if p := recover(); p != nil {
		*err = &RuntimeError{Msg: fmt.Sprintf("vm: internal error: %v", p), Err: ErrInternal}
	}
}

// Resume continues a paused run, with result as the value returned by the
// async function. A State can be resumed once; to resume again, decode it
// again from its JSON.
func (m *Machine) Resume(ctx context.Context, s *State, result Value) (Result, error) {
	return m.ResumeHost(ctx, nil, s, result)
}

// ResumeHost is Resume with a host, as RunHost.
func (m *Machine) ResumeHost(ctx context.Context, h Host, s *State, result Value) (res Result, err error) {
	if s == nil || s.prog == nil {
		return Result{}, rtErr("vm: resume: empty state")
	}
	r := m.pool.Get().(*run)
	defer m.recoverRun(r, &err)
	if err := r.load(s); err != nil {
		m.release(r)
		return Result{}, err
	}
	if t := m.opts.Timeout; t > 0 && s.syncDuration >= t {
		err := r.limitErr(ErrTimeout, "Execution timed out after %s seconds. Performed %d ops.", formatNumber(t.Seconds()), r.ops)
		m.release(r)
		return Result{}, err
	}
	r.host = h
	// The result is new to the run, as a native's would be.
	r.alloc += costOf(result)
	r.push(result)
	v, finished, err := r.execute(ctx, s.syncDuration)
	r.setResult(&res, v, finished)
	m.release(r)
	return res, err
}

// RunAsync runs p to completion, performing each async call with perform
// and resuming, like PostHog's execAsync. The built-in sleep(seconds) is
// performed here (honouring ctx) unless "sleep" is in
// Options.AsyncFunctions, in which case perform receives it too.
func (m *Machine) RunAsync(ctx context.Context, p *Program, globals Value, perform func(ctx context.Context, name string, args []Value) (Value, error)) (Result, error) {
	res, err := m.Run(ctx, p, globals)
	for err == nil && res.Async != nil {
		var v Value
		if res.Async.Name == "sleep" && !slices.Contains(m.opts.AsyncFunctions, "sleep") {
			err = sleep(ctx, res.Async.Args)
		} else {
			v, err = perform(ctx, res.Async.Name, res.Async.Args)
		}
		if err != nil {
			return res, err
		}
		res, err = m.Resume(ctx, res.Async.State, v)
	}
	return res, err
}

func sleep(ctx context.Context, args []Value) error {
	var d time.Duration
	if len(args) > 0 {
		d = time.Duration(ToNumber(args[0]) * float64(time.Second))
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Machine) release(r *run) {
	r.clear()
	m.pool.Put(r)
}
