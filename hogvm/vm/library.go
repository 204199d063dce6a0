package vm

import (
	"fmt"
	"regexp"
	"time"

	"github.com/hogwire/hogwire/hogvm/bytecode"
)

// Native is a standard-library function implemented in Go. args is a view
// of the value stack, valid only during the call; Fn must not keep it.
type Native struct {
	Name     string
	Min, Max int // argument counts; Max < 0: unbounded
	Fn       func(e Env, args []Value) (Value, error)
	// Shares says that the result's elements are the arguments' own
	// (arrayPushBack, keys, …): only the result's own storage counts as
	// allocated, not what its elements hold.
	Shares bool
}

// BytecodeFunc is a standard-library function written in Hog, as PostHog
// ships arrayMap and friends: header-less version 1 bytecode whose
// arguments are its first Args locals.
type BytecodeFunc struct {
	Name string
	Args int
	Code []any
}

// Library is a standard library: the functions a program may call by name
// besides its own and the embedder's host functions. Programs are linked
// against one (see Link). A Library is immutable and safe for concurrent
// use; package stl builds Hog's.
type Library struct {
	natives  map[string]*Native
	bytecode map[string]*bcFunc
}

// bcFunc is a linked BytecodeFunc.
type bcFunc struct {
	argCount int
	chunk    *chunk
	closure  *Closure
}

// NewLibrary links a standard library. A name defined twice keeps its
// last definition.
func NewLibrary(natives []Native, bytecodeFuncs []BytecodeFunc) *Library {
	l := &Library{natives: make(map[string]*Native, len(natives)), bytecode: make(map[string]*bcFunc, len(bytecodeFuncs))}
	for i := range natives {
		n := natives[i]
		l.natives[n.Name] = &n
	}
	for _, f := range bytecodeFuncs {
		c := l.linkChunk("stl/"+f.Name, 1, f.Code, false)
		cl := &Closure{Callable: &Callable{Name: f.Name, ArgCount: f.Args, kind: callSTL, chunk: c}}
		l.bytecode[f.Name] = &bcFunc{argCount: f.Args, chunk: c, closure: cl}
	}
	return l
}

// Has reports whether the library defines name.
func (l *Library) Has(name string) bool {
	if l == nil {
		return false
	}
	return l.natives[name] != nil || l.bytecode[name] != nil
}

func (l *Library) native(name string) *Native {
	if l == nil {
		return nil
	}
	return l.natives[name]
}

func (l *Library) bytecodeFunc(name string) *bcFunc {
	if l == nil {
		return nil
	}
	return l.bytecode[name]
}

// Env is what a native function may use of the run that calls it: the
// run's limits, its machine's regular-expression cache, clock and print.
type Env struct{ r *run }

// NewString returns s as a value, or a size-limit error when s is longer
// than the run allows.
func (e Env) NewString(s string) (Value, error) { return e.r.newString(s) }

// CheckLength returns a size-limit error when an array of n elements is
// longer than the run allows.
func (e Env) CheckLength(n int) error {
	if max := e.r.m.opts.MaxArrayLength; max > 0 && n > max {
		return e.r.limitErr(ErrSizeLimit, "Array length %d exceeds the limit of %d", n, max)
	}
	return nil
}

// Reserve counts n bytes the function is about to allocate, so that a
// memory limit stops a large allocation before it happens; its result is
// then counted less what it reserved.
func (e Env) Reserve(n int64) error { return e.r.reserve(n) }

// RenderLimit is the most text one value may render to in this run.
func (e Env) RenderLimit() int { return e.r.renderLimit() }

// Regexp compiles pattern (RE2 syntax), cached by the machine.
func (e Env) Regexp(pattern string) (*regexp.Regexp, error) { return e.r.m.regexes.get(pattern) }

// Like is SQL's LIKE (ILIKE when ci).
func (e Env) Like(s, pattern Value, ci bool) (bool, error) { return e.r.like(s, pattern, ci) }

// Match is Hog's match(value, pattern): false when either is falsy.
func (e Env) Match(pattern, value Value) (bool, error) { return e.r.match(pattern, value) }

// Now is the machine's clock.
func (e Env) Now() time.Time { return e.r.m.opts.Now() }

// Print is print(args…): it renders the arguments as one line, joined
// by spaces, strings raw and other values as Format renders them, and
// hands it to the machine's Print.
func (e Env) Print(args []Value) error {
	r := e.r
	if r.m.opts.Print == nil {
		return nil
	}
	b := r.line[:0]
	limit := r.renderLimit()
	for i, a := range args {
		if i > 0 {
			b = append(b, ' ')
		}
		b = AppendOutput(b, a, limit)
	}
	if len(b) > limit {
		return r.limitErr(ErrSizeLimit, "print: output exceeds the limit of %d bytes", limit)
	}
	if cap(b) <= 64<<10 {
		r.line = b
	}
	r.m.opts.Print(string(b))
	return nil
}

// Link validates and pre-decodes a program once, against lib (nil: no
// standard library). Malformed instructions do not fail the link: like
// PostHog's VM, the run fails only if it reaches them. Link returns an
// error only for an unsupported version.
func Link(p *bytecode.Program, lib *Library) (*Program, error) {
	if p == nil {
		return nil, fmt.Errorf("vm: link: nil program")
	}
	if p.Version < 0 || p.Version > bytecode.Version {
		return nil, fmt.Errorf("vm: link: unsupported bytecode version %d", p.Version)
	}
	prog := &Program{src: p, lib: lib}
	prog.rootChunk = *lib.linkChunk("root", p.Version, p.Code, true)
	prog.root = &prog.rootChunk
	if p.Version >= 1 {
		prog.global = globalPath(p.Code)
		prog.constant, prog.hasConstant = constantString(p.Code)
	}
	return prog, nil
}
