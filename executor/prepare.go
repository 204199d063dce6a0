package executor

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
	"github.com/hogwire/hogwire/inputs"
	"github.com/hogwire/hogwire/liquid"
)

// Defaults for limits the destination leaves at zero.
const (
	DefaultTimeout = 5 * time.Second // VM time of the program
	// DefaultTransformTimeout is a transformation's: it runs on every
	// event of its project, before any destination.
	DefaultTransformTimeout = 100 * time.Millisecond
	// DefaultWebhookTimeout is a source webhook's: its sender waits for
	// the answer.
	DefaultWebhookTimeout = time.Second
	DefaultFetchTimeout   = 10 * time.Second // per request
	// DefaultMaxFetches is PostHog's MAX_ASYNC_STEPS.
	DefaultMaxFetches = 5
	// DefaultMaxLogs is PostHog's MAX_HOG_LOGS: the print() call that reaches
	// it is replaced by a warning and later ones are dropped.
	DefaultMaxLogs = 25
	// DefaultMaxMemory is limits.max_memory_bytes' default: what one
	// invocation may allocate.
	DefaultMaxMemory = 64 << 20
	// maskingTimeout bounds the masking hash, as in PostHog.
	maskingTimeout = 50 * time.Millisecond
	// Filters run on the goroutine that reads events, before any
	// invocation is queued: they must be quick. These bound a filter
	// written to be slow; PostHog's filters take a few dozen steps.
	filterMaxSteps  = 100_000
	filterMaxMemory = 16 << 20
	filterTimeout   = 100 * time.Millisecond
)

// Destination is a destination ready to run: every bytecode decoded and
// linked once. It is immutable and safe for concurrent use.
type Destination struct {
	// allocs holds released invocations' allocations (see
	// Result.Release).
	allocs      sync.Pool
	name        string
	displayName string
	program     *vm.Program
	filter      *vm.Program // nil: every event matches
	eventNames  []string    // nil with allEvents
	allEvents   bool
	inputs      []input
	// mappings are the enabled mappings; when there are any, every
	// invocation runs one of them (Options.Mapping).
	mappings []*mapping
	// hasMappings is set when the destination has mappings, even if none
	// is enabled: it then runs for no event.
	hasMappings bool
	masking     *vm.Program
	secrets     []string // configured values of sensitive inputs
	// headers are the headers of the literal dict inputs, built once
	// (see newFetchRequest).
	headers []literalHeader

	timeout      time.Duration // VM time of an invocation
	fetchTimeout time.Duration
	maxFetches   int
	maxSteps     int64 // 0: unlimited
	maxMemory    int64
	// The invocation applies the limits above as the VM's host; the
	// filters and the masking hash, which run without one, have their own.
	machine       *vm.Machine // the program
	exprMachine   *vm.Machine // input templates
	filterMachine *vm.Machine // filters and masking hash

	// source caches the source global, which depends only on the
	// project's link base.
	source atomic.Pointer[sourceGlobal]
	// redact caches the last redactor built (see Destination.redactor).
	redact atomic.Pointer[cachedRedactor]
}

type sourceGlobal struct {
	projectURL string
	value      vm.Value
}

// input is one input, in evaluation order.
type input struct {
	key string
	// secret inputs, and inputs named like credentials, have every string
	// in their value redacted.
	secret bool
	value  *template
	// rendersSensitive is set when a rendered value may hold strings to
	// redact that the destination's secrets do not already list.
	rendersSensitive bool
}

// mayRenderSensitive reports whether appendSensitive can find strings in
// a rendered value of in beyond those of its literals, which Prepare adds
// to the destination's secrets: a literal renders as itself, and a dict
// template without $$_extend_object renders its own keys only, so unless
// one of them names a credential only a secret input's strings count.
func (in *input) mayRenderSensitive() bool {
	t := in.value
	switch t.kind {
	case tmplLiteral:
		return false
	case tmplList:
		return in.secret
	case tmplDict:
		if in.secret || t.extend != nil {
			return true
		}
		return slices.ContainsFunc(t.keys, isCredentialKey)
	}
	return true
}

// isCredentialKey reports whether an input key or header name is one whose
// value PostHog treats as a credential even when the input is not secret:
// it contains authorization, cookie, token, secret, password, passcode,
// credential, or api/private/signing key (with or without a separator).
// It runs for every key of every rendered dict input, so no regexp.
func isCredentialKey(k string) bool {
	var buf [64]byte
	b := buf[:0]
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c == '-' || c == '_' || c == ' ':
		default:
			b = append(b, c)
		}
	}
	s := string(b)
	for _, w := range [...]string{"authorization", "cookie", "token", "secret", "password", "passcode",
		"credential", "apikey", "privatekey", "signingkey"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// appendSensitive appends the strings of v that redaction must hide: every
// string of a secret input, and in other inputs the values under
// credential-named keys (such as an Authorization header), also without a
// "Bearer ", "Basic " or "Token " prefix.
func (in *input) appendSensitive(dst []string, v vm.Value) []string {
	if in.secret {
		return appendStrings(dst, v)
	}
	d := v.AsDict()
	if d == nil {
		return dst
	}
	vals := d.Values()
	for i, k := range d.Keys() {
		if k.Kind() != vm.KindString || !isCredentialKey(k.AsString()) {
			continue
		}
		dst = appendStrings(dst, vals[i])
		if s := vals[i].AsString(); vals[i].Kind() == vm.KindString {
			for _, p := range []string{"Bearer ", "Basic ", "Token "} {
				if rest, ok := strings.CutPrefix(s, p); ok && rest != "" {
					dst = appendStrings(dst, vm.String(rest))
				}
			}
		}
	}
	return dst
}

// template is an input's value with its templates compiled: a literal, a
// compiled template, or a container of templates.
type template struct {
	prog   *vm.Program
	lit    vm.Value
	keys   []string // dict
	vals   []*template
	extend *template // $$_extend_object
	elems  []*template
	liq    *liquid.Template
	kind   templateKind
}

type templateKind uint8

const (
	tmplLiteral templateKind = iota
	tmplProgram
	tmplDict
	tmplList
	tmplLiquid
)

// extendKey is PostHog's key for an object spread into an input's value.
const extendKey = "$$_extend_object"

// FilterVM runs destinations' filters and masking hashes. Destinations
// prepared with the same FilterVM (see WithFilterVM) share its run state:
// a node routing each event through thousands of filters then runs them
// all on one run state its CPU caches hold, rather than on thousands of
// them for the caches and the garbage collector to go through. It is safe
// for concurrent use.
type FilterVM struct{ m *vm.Machine }

// NewFilterVM returns a FilterVM with the limits of filters.
func NewFilterVM() *FilterVM {
	return &FilterVM{m: vm.New(vm.Options{Timeout: filterTimeout, MaxSteps: filterMaxSteps, MemoryLimit: filterMaxMemory})}
}

// PrepareOption configures Prepare.
type PrepareOption func(*Destination)

// WithFilterVM makes the destination run its filters and masking hash on
// f instead of a FilterVM of its own.
func WithFilterVM(f *FilterVM) PrepareOption {
	return func(d *Destination) { d.filterMachine = f.m }
}

// Prepare decodes and links everything d runs: the program, the filters, each
// input's compiled templates and the masking hash.
func Prepare(d *hogwirev1.Destination, opts ...PrepareOption) (*Destination, error) {
	if d == nil {
		return nil, errors.New("executor: nil destination")
	}
	out := &Destination{name: d.GetName(), displayName: d.GetDisplayName()}
	var err error
	if len(d.GetBytecode()) == 0 {
		return nil, fmt.Errorf("destination %s: no bytecode: the program was not compiled", d.GetName())
	}
	if out.program, err = link(d.GetBytecode()); err != nil {
		return nil, fmt.Errorf("destination %s: program bytecode: %w", d.GetName(), err)
	}
	if f := d.GetFilters(); len(f.GetBytecode()) > 0 {
		if out.filter, err = link(f.GetBytecode()); err != nil {
			return nil, fmt.Errorf("destination %s: filters bytecode: %w", d.GetName(), err)
		}
		if filters.NamesDecide(f) {
			// match compares the name without running the filters' VM or
			// building the filter globals.
			out.filter = nil
		}
	} else if len(f.GetEvents()) > 0 || len(f.GetProperties()) > 0 || f.GetExpression() != "" {
		return nil, fmt.Errorf("destination %s: filters were not compiled (no bytecode)", d.GetName())
	}
	out.eventNames, out.allEvents = filters.EventNames(d.GetFilters())
	if m := d.GetMasking(); m != nil && len(m.GetBytecode()) > 0 {
		if out.masking, err = link(m.GetBytecode()); err != nil {
			return nil, fmt.Errorf("destination %s: masking hash bytecode: %w", d.GetName(), err)
		}
	}

	if out.inputs, out.secrets, err = prepareInputs(d.GetInputsSchema(), d.GetInputs()); err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.GetName(), err)
	}
	if err := prepareMappings(out, d); err != nil {
		return nil, err
	}
	out.prepareHeaders()

	l := d.GetLimits()
	out.timeout = orDefault(l.GetTimeout().AsDuration(), DefaultTimeout)
	switch {
	case IsTransformation(d):
		out.timeout = orDefault(l.GetTimeout().AsDuration(), DefaultTransformTimeout)
	case IsSourceWebhook(d):
		out.timeout = orDefault(l.GetTimeout().AsDuration(), DefaultWebhookTimeout)
	}
	out.fetchTimeout = orDefault(l.GetFetchTimeout().AsDuration(), DefaultFetchTimeout)
	out.maxFetches = int(orDefault(l.GetMaxFetches(), DefaultMaxFetches))
	out.maxSteps = max(l.GetMaxSteps(), 0)
	out.maxMemory = orDefault(l.GetMaxMemoryBytes(), DefaultMaxMemory)
	// The invocation keeps the time (VM time only, not waits), steps and
	// memory of all its runs together: the machines' own limits are off.
	mo := vm.Options{
		HostFunctions:  []string{"print", "postHogCapture"},
		AsyncFunctions: []string{"fetch"},
		Timeout:        -1,
		MemoryLimit:    -1,
	}
	switch {
	case IsTransformation(d):
		mo.HostFunctions, mo.AsyncFunctions = []string{"print", geoipLookup}, nil
	case IsSourceWebhook(d):
		// The sender waits for the answer: no fetch.
		mo.HostFunctions, mo.AsyncFunctions = []string{"print", "postHogCapture", verifyWebhookSignature}, nil
	}
	out.machine = vm.New(mo)
	out.exprMachine = vm.New(vm.Options{Timeout: -1, MemoryLimit: -1})
	out.filterMachine = nil
	for _, o := range opts {
		o(out)
	}
	if out.filterMachine == nil {
		out.filterMachine = NewFilterVM().m
	}
	return out, nil
}

// prepareInputs prepares input values in schema order, then any the
// schema does not declare, and returns the strings redaction must hide.
func prepareInputs(schemas []*hogwirev1.InputSchema, values map[string]*hogwirev1.InputValue) ([]input, []string, error) {
	schema := map[string]*hogwirev1.InputSchema{}
	var keys []string
	for _, s := range schemas {
		schema[s.GetKey()] = s
		if _, ok := values[s.GetKey()]; ok && !slices.Contains(keys, s.GetKey()) {
			keys = append(keys, s.GetKey())
		}
	}
	for _, k := range jsKeyOrder(values) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var ins []input
	var secrets []string
	for _, k := range keys {
		sc := schema[k]
		if sc == nil {
			sc = &hogwirev1.InputSchema{Key: k}
		}
		t, lit, err := prepareInput(sc, values[k])
		if err != nil {
			return nil, nil, fmt.Errorf("input %q: %w", k, err)
		}
		t.freeze()
		in := input{key: k, secret: sc.GetSecret() || isCredentialKey(k), value: t}
		secrets = in.appendSensitive(secrets, lit)
		if t.kind == tmplLiteral {
			// What every invocation renders: its strings are hidden from
			// the start, and rendering adds none.
			secrets = in.appendSensitive(secrets, t.lit)
		}
		in.rendersSensitive = in.mayRenderSensitive()
		ins = append(ins, in)
	}
	return ins, secrets, nil
}

func orDefault[T int32 | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Name returns the destination's resource name.
func (d *Destination) Name() string { return d.name }

func link(b []byte) (*vm.Program, error) {
	src, err := bytecode.Decode(b)
	if err != nil {
		return nil, err
	}
	return vm.Link(src, stl.Library())
}

// prepareInput returns an input's template and its value as written. The
// value is read in key order from the input's JSON forms when it has them
// (and from the older protobuf Struct otherwise); Hog templates run their
// compiled bytecode, Liquid strings are parsed here, once.
func prepareInput(sc *hogwirev1.InputSchema, iv *hogwirev1.InputValue) (*template, vm.Value, error) {
	val, _, err := inputs.Of(iv)
	if err != nil {
		return nil, vm.Null, err
	}
	lit := literalValue(val)
	switch inputs.Language(sc, iv) {
	case hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_LIQUID:
		t, err := liquidTemplate(val)
		return t, lit, err
	case hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_NONE:
		return &template{kind: tmplLiteral, lit: lit}, lit, nil
	}
	c, ok, err := inputs.CompiledOf(iv)
	if err != nil {
		return nil, vm.Null, err
	}
	if !ok {
		return &template{kind: tmplLiteral, lit: lit}, lit, nil
	}
	t, err := compileTemplate(c)
	return t, lit, err
}

// literalValue converts an input's value to a Hog value, keeping key order.
func literalValue(v inputs.Value) vm.Value {
	switch v.Kind {
	case inputs.Bool:
		return vm.Bool(v.Bool)
	case inputs.Number:
		return vm.Number(v.Number)
	case inputs.String:
		return vm.String(v.String)
	case inputs.Array:
		elems := make([]vm.Value, len(v.Elems))
		for i, e := range v.Elems {
			elems[i] = literalValue(e)
		}
		return vm.NewArray(elems)
	case inputs.Object:
		d := vm.NewDict(len(v.Keys))
		for i, k := range v.Keys {
			d.SetString(k, literalValue(v.Elems[i]))
		}
		return vm.DictValue(d)
	}
	return vm.Null
}

// liquidTemplate parses every string in v as Liquid.
func liquidTemplate(v inputs.Value) (*template, error) {
	switch v.Kind {
	case inputs.String:
		t, err := liquid.Parse(v.String)
		if err != nil {
			return nil, err
		}
		return &template{kind: tmplLiquid, liq: t}, nil
	case inputs.Array:
		t := &template{kind: tmplList}
		for i, e := range v.Elems {
			c, err := liquidTemplate(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			t.elems = append(t.elems, c)
		}
		return t, nil
	case inputs.Object:
		t := &template{kind: tmplDict}
		for i, k := range v.Keys {
			c, err := liquidTemplate(v.Elems[i])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			t.set(k, c)
		}
		return t, nil
	}
	return &template{kind: tmplLiteral, lit: literalValue(v)}, nil
}

// compileTemplate links an input's compiled value: the value's shape with
// each templated string replaced by its bytecode array, keys in order.
func compileTemplate(v inputs.Value) (*template, error) {
	switch v.Kind {
	case inputs.Array:
		if inputs.IsProgram(v) {
			p, err := link([]byte(v.JSON()))
			if err != nil {
				return nil, err
			}
			if c, ok := p.Constant(); ok {
				// A string without placeholders, as most are (a URL, a
				// method, a header): the same for every event.
				return &template{kind: tmplLiteral, lit: c}, nil
			}
			return &template{kind: tmplProgram, prog: p}, nil
		}
		t := &template{kind: tmplList}
		literal := true
		for i, e := range v.Elems {
			c, err := compileTemplate(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			literal = literal && c.kind == tmplLiteral
			t.elems = append(t.elems, c)
		}
		if literal {
			elems := make([]vm.Value, len(t.elems))
			for i, c := range t.elems {
				elems[i] = c.lit
			}
			return &template{kind: tmplLiteral, lit: vm.NewArray(elems)}, nil
		}
		return t, nil
	case inputs.Object:
		t := &template{kind: tmplDict}
		literal := true
		for i, key := range v.Keys {
			c, err := compileTemplate(v.Elems[i])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			if key == extendKey {
				t.extend = c
				literal = false
				continue
			}
			literal = literal && c.kind == tmplLiteral
			t.set(key, c)
		}
		if literal {
			d := vm.NewDict(len(t.keys))
			for i, k := range t.keys {
				d.SetString(k, t.vals[i].lit)
			}
			return &template{kind: tmplLiteral, lit: vm.DictValue(d)}, nil
		}
		return t, nil
	}
	return &template{kind: tmplLiteral, lit: literalValue(v)}, nil
}

// set sets a dict template's key to c, keeping the position of a key it
// has, as rendering into a dict would: its keys are then distinct, which
// lets render append them without searching the dict.
func (t *template) set(key string, c *template) {
	if i := slices.Index(t.keys, key); i >= 0 {
		t.vals[i] = c
		return
	}
	t.keys = append(t.keys, key)
	t.vals = append(t.vals, c)
}

// freeze freezes t's literals, which every invocation shares: programs
// then read them without copying them.
func (t *template) freeze() {
	vm.Freeze(t.lit)
	for _, c := range t.vals {
		c.freeze()
	}
	for _, c := range t.elems {
		c.freeze()
	}
	if t.extend != nil {
		t.extend.freeze()
	}
}

// render evaluates t with the globals, in inv's turn.
func (d *Destination) render(inv *invocation, t *template, globals vm.Value) (vm.Value, error) {
	switch t.kind {
	case tmplProgram:
		if path := t.prog.GlobalPath(); path != nil {
			if v, ok := lookupPath(globals, path); ok {
				return v, nil
			}
		}
		return inv.runExpr(t.prog, globals)
	case tmplLiquid:
		return renderLiquid(inv.ctx, t.liq, globals)
	case tmplList:
		elems := make([]vm.Value, len(t.elems))
		for i, e := range t.elems {
			v, err := d.render(inv, e, globals)
			if err != nil {
				return vm.Null, err
			}
			elems[i] = v
		}
		return vm.NewArray(elems), nil
	case tmplDict:
		out := inv.renderDict(len(t.keys))
		if t.extend != nil {
			v, err := d.render(inv, t.extend, globals)
			if err != nil {
				return vm.Null, err
			}
			if ext := v.AsDict(); ext != nil {
				vals := ext.Values()
				for i, k := range ext.Keys() {
					out.Set(k, vals[i])
				}
			}
		}
		for i, k := range t.keys {
			v, err := d.render(inv, t.vals[i], globals)
			if err != nil {
				return vm.Null, err
			}
			if t.extend != nil {
				// The spread object may hold the key already.
				out.SetString(k, v)
			} else {
				out.AppendString(k, v)
			}
		}
		return vm.DictValue(out), nil
	}
	return t.lit, nil
}

// lookupPath reads a template that only reads a global, as most do
// ({event.properties.plan}), without starting the VM. The value is not
// copied, as the VM would copy it: rendered inputs are only ever read, and
// programs reach them through GET_GLOBAL, which copies.
func lookupPath(globals vm.Value, path []string) (vm.Value, bool) {
	v, ok := vm.LookupGlobal(globals, path)
	if ok && path[0] == "inputs" {
		switch v.Kind() {
		case vm.KindDict, vm.KindArray, vm.KindTuple:
			// The inputs are still being rendered: an input holding
			// them would hold itself. The VM's copy is a snapshot.
			return vm.Null, false
		}
	}
	return v, ok
}

// appendStrings appends every non-empty string in v (its leaves, for
// containers).
func appendStrings(dst []string, v vm.Value) []string {
	switch v.Kind() {
	case vm.KindString:
		if s := v.AsString(); s != "" && !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	case vm.KindArray, vm.KindTuple:
		for _, e := range v.AsArray().Elems {
			dst = appendStrings(dst, e)
		}
	case vm.KindDict:
		for _, e := range v.AsDict().Values() {
			dst = appendStrings(dst, e)
		}
	}
	return dst
}

// MaskingHash evaluates the destination's masking hash against the event, as
// PostHog's masker does: ok is false when there is no masking or the hash's
// value is falsy (the event is then not masked); otherwise hash is the MD5 hex
// digest of the value's string form.
func (d *Destination) MaskingHash(ctx context.Context, g *Globals) (hash string, ok bool, err error) {
	if d.masking == nil {
		return "", false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, maskingTimeout)
	defer cancel()
	globals := d.globals(g, 2)
	v, finished, err := d.filterMachine.Eval(ctx, d.masking, vm.DictValue(globals))
	if err != nil {
		return "", false, fmt.Errorf("masking hash: %w", err)
	}
	if !finished || !v.Truthy() {
		return "", false, nil
	}
	sum := md5.Sum([]byte(vm.FormatOutput(v)))
	return hex.EncodeToString(sum[:]), true, nil
}

// globals returns a new dict holding the event's globals and the
// destination's source, with room for extra entries.
func (d *Destination) globals(g *Globals, extra int) *vm.Dict {
	return d.globalsIn(nil, g, extra)
}

// globalsIn is globals, in buf when it is not nil.
func (d *Destination) globalsIn(buf *vm.DictBuf6, g *Globals, extra int) *vm.Dict {
	newDict := vm.NewDict
	if buf != nil {
		newDict = buf.Dict
	}
	if g.req != nil {
		out := newDict(3 + extra)
		out.AppendString("request", g.request)
		out.AppendString("project", g.project)
		out.AppendString("source", d.sourceGlobal(g.projectURL))
		return out
	}
	out := newDict(5 + extra)
	out.AppendString("event", g.event)
	out.AppendString("person", g.person)
	out.AppendString("groups", g.groups)
	out.AppendString("project", g.project)
	out.AppendString("source", d.sourceGlobal(g.projectURL))
	return out
}

// sourceGlobal returns the source global for a project link base. The VM
// never changes globals, so invocations share it.
func (d *Destination) sourceGlobal(projectURL string) vm.Value {
	if c := d.source.Load(); c != nil && c.projectURL == projectURL {
		return c.value
	}
	src := vm.NewDict(2)
	name := d.displayName
	if name == "" {
		name = "Hog function: " + lastSegment(d.name)
	}
	src.AppendString("name", vm.String(name))
	srcURL := ""
	if projectURL != "" && d.name != "" {
		srcURL = projectURL + "/destinations/" + lastSegment(d.name)
	}
	src.AppendString("url", vm.String(srcURL))
	vm.Freeze(vm.DictValue(src))
	c := &sourceGlobal{projectURL: projectURL, value: vm.DictValue(src)}
	d.source.Store(c)
	return c.value
}
