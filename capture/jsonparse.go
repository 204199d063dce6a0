package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hogwire/hogwire/eventlimits"
	"github.com/hogwire/hogwire/jsonscan"
)

// maxDepth bounds nesting as encoding/json does.
const maxDepth = 10000

// payloadDepth is the deepest an event's containers can be in a valid
// payload: {"batch": [{"properties": …}]} puts properties at depth 4, and
// their contents may nest eventlimits.MaxDepth deeper.
const payloadDepth = 4 + eventlimits.MaxDepth

// parseJSON decodes JSON text straight into a structpb.Value. Events end up
// as Structs anyway; going through map[string]any first would build every
// payload twice. It accepts exactly what encoding/json accepts and decodes
// to the same values: invalid UTF-8 and lone surrogates become U+FFFD,
// later duplicate keys win, and numbers beyond float64 are errors.
//
// Containers nested deeper than cut are checked but not built: each is
// replaced by cutValue and truncated is set, so hostile nesting costs
// neither stack nor memory, and the event holding it can still be named.
// The memory the values take is reserved from mem as they are built (nil
// mem reserves nothing); a refused reservation ends the parse with its
// error.
func parseJSON(data []byte, cut int, mem *lease) (v *structpb.Value, truncated bool, err error) {
	p := parser{data: data, cut: cut, mem: mem}
	defer p.settle()
	p.skipSpace()
	if v, err = p.value(); err != nil {
		return nil, false, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, false, p.errorf("unexpected %q after the top-level value", p.data[p.pos])
	}
	return v, p.truncated, nil
}

// cutValue stands for a container nested too deeply to be built. It is an
// empty array, so that anything walking the value sees a container where
// the original had one.
var cutValue = structpb.NewListValue(&structpb.ListValue{})

// The estimated cost in bytes of what the parser builds, measured on
// this implementation: a scalar's Value and kind carved from the slabs,
// a container's Value, message and map or slice headers, and per entry
// the map slot or slice element with its share of growth.
const (
	costScalar      = 64
	costContainer   = 160
	costListEntry   = 24
	costObjectEntry = 48
	costMapGroup    = 192
	// reserveChunk is how much is reserved at a time.
	reserveChunk = 64 << 10
)

type parser struct {
	data  []byte
	pos   int
	depth int
	// cut is the depth beyond which containers are skipped (see parseJSON).
	cut       int
	truncated bool
	// mem is reserved from as values are built: cost is what they are
	// estimated to take and reserved what has been reserved.
	mem            *lease
	cost, reserved int64
	// interned holds short strings seen so far: the events of a batch
	// repeat the same keys and many of the same values, and sharing them
	// saves over a third of the parse's allocations. It is a cache of
	// pairs of slots (a string's hash picks a pair, and a newcomer evicts
	// the older of the two) rather than a map: no growth, no rehashing, no
	// insertion cost, and a bounded size, for a few strings made twice.
	interned []string
	slabs    slabs
	// fields collects the entries of the objects being read, so that each
	// object's map is made at its final size instead of growing; elems
	// does the same for arrays' slices.
	fields []field
	elems  []*structpb.Value
}

type field struct {
	key string
	val *structpb.Value
}

// Strings and numbers are most of a payload's values, and each would be
// two allocations (the Value and its kind). They are carved from chunks
// instead, which live as long as the request's events, as the values
// would.
//
// Containers and literals are carved too, as a typical event holds a few
// objects and lists: each would be two or three allocations besides its
// map or slice.
//
// Each kind's chunks grow with that kind's own use: a payload of a
// hundred objects and one list makes one small chunk of lists, not one
// as large as the objects' last.
type slabs struct {
	values      chunk[structpb.Value]
	strs        chunk[structpb.Value_StringValue]
	nums        chunk[structpb.Value_NumberValue]
	structs     chunk[structpb.Struct]
	structKinds chunk[structpb.Value_StructValue]
	lists       chunk[structpb.ListValue]
	listKinds   chunk[structpb.Value_ListValue]
	bools       chunk[structpb.Value_BoolValue]
	nulls       chunk[structpb.Value_NullValue]
}

// chunk is the unused part of the last chunk of a kind, and that chunk's
// size.
type chunk[T any] struct {
	free []T
	size int
}

// carve takes the next element of c, making a new chunk when it is used
// up: small for small payloads, doubling up to 256 elements.
func carve[T any](c *chunk[T]) *T {
	if len(c.free) == 0 {
		c.size = min(max(2*c.size, 16), 256)
		c.free = make([]T, c.size)
	}
	e := &c.free[0]
	c.free = c.free[1:]
	return e
}

// charge adds n bytes to the parse's cost, reserving more from mem when
// the cost passes what is reserved.
func (p *parser) charge(n int64) error {
	p.cost += n
	if p.mem == nil || p.cost <= p.reserved {
		return nil
	}
	more := max(p.cost-p.reserved, reserveChunk)
	if err := p.mem.take(more); err != nil {
		return err
	}
	p.reserved += more
	return nil
}

// settle gives back what was reserved beyond the final cost.
func (p *parser) settle() {
	if p.mem != nil && p.reserved > p.cost {
		p.mem.give(p.reserved - p.cost)
	}
}

func (p *parser) stringValue(str string) *structpb.Value {
	k := carve(&p.slabs.strs)
	k.StringValue = str
	v := carve(&p.slabs.values)
	v.Kind = k
	return v
}

func (p *parser) structValue(fields map[string]*structpb.Value) *structpb.Value {
	st := carve(&p.slabs.structs)
	st.Fields = fields
	k := carve(&p.slabs.structKinds)
	k.StructValue = st
	v := carve(&p.slabs.values)
	v.Kind = k
	return v
}

func (p *parser) listValue(values []*structpb.Value) *structpb.Value {
	l := carve(&p.slabs.lists)
	l.Values = values
	k := carve(&p.slabs.listKinds)
	k.ListValue = l
	v := carve(&p.slabs.values)
	v.Kind = k
	return v
}

func (p *parser) boolValue(b bool) *structpb.Value {
	k := carve(&p.slabs.bools)
	k.BoolValue = b
	v := carve(&p.slabs.values)
	v.Kind = k
	return v
}

func (p *parser) nullValue() *structpb.Value {
	k := carve(&p.slabs.nulls)
	v := carve(&p.slabs.values)
	v.Kind = k
	return v
}

func (p *parser) numberValue(f float64) *structpb.Value {
	k := carve(&p.slabs.nums)
	k.NumberValue = f
	v := carve(&p.slabs.values)
	v.Kind = k
	return v
}

// Strings up to internMax bytes are interned, in a table of a slot per
// internBytes of payload, a power of two from internMinSlots to
// internMaxSlots.
const (
	internMax      = 64
	internBytes    = 64
	internMinSlots = 64
	internMaxSlots = 4096
)

func (p *parser) intern(b []byte) string {
	if len(b) > internMax || len(b) == 0 {
		return string(b)
	}
	if p.interned == nil {
		n := internMinSlots
		for n < internMaxSlots && n*internBytes < len(p.data) {
			n *= 2
		}
		p.interned = make([]string, n)
	}
	// A string may sit in either slot of its pair: two strings that hash
	// alike can both stay.
	i := internHash(b) & uint64(len(p.interned)-1)
	pair := p.interned[i&^1 : i&^1+2 : i&^1+2]
	first, second := &pair[i&1], &pair[1-i&1]
	if *first == string(b) {
		return *first
	}
	if *second == string(b) {
		return *second
	}
	s := string(b)
	// The newcomer takes its first slot; what was there moves to the
	// second, evicting the older of the two.
	*second, *first = *first, s
	return s
}

// internHash hashes a string of at most internMax bytes: its length and
// at most its first and last 16 bytes, which set apart the keys and
// values of a batch (ids differ at their ends) at a cost that does not
// grow with the string. It is fixed rather than seeded, so that a payload
// always costs the same allocations; strings made to collide only lose
// their sharing, which costs what strings longer than internMax always
// do.
func internHash(b []byte) uint64 {
	const m = 0xbf58476d1ce4e5b9
	n := len(b)
	var lo, hi uint64
	switch {
	case n >= 16:
		lo = binary.LittleEndian.Uint64(b) ^ binary.LittleEndian.Uint64(b[n-16:])*m
		hi = binary.LittleEndian.Uint64(b[8:]) ^ binary.LittleEndian.Uint64(b[n-8:])*m
	case n >= 8:
		lo = binary.LittleEndian.Uint64(b)
		hi = binary.LittleEndian.Uint64(b[n-8:])
	default:
		for i, c := range b {
			lo |= uint64(c) << (8 * i)
		}
	}
	// The two halves of a full product spread every input bit over the
	// low bits a table index takes.
	x, y := bits.Mul64(lo^uint64(n)^0x9e3779b97f4a7c15, hi^0x94d049bb133111eb)
	return x ^ y
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

var errEnd = errors.New("invalid JSON: unexpected end of input")

func (p *parser) skipSpace() { p.pos = jsonscan.Space(p.data, p.pos) }

func (p *parser) value() (*structpb.Value, error) {
	if p.pos >= len(p.data) {
		return nil, errEnd
	}
	c := p.data[p.pos]
	if c == '{' || c == '[' {
		if p.depth == p.cut {
			p.truncated = true
			return cutValue, p.skip()
		}
		if err := p.charge(costContainer); err != nil {
			return nil, err
		}
	} else if err := p.charge(costScalar); err != nil {
		return nil, err
	}
	switch {
	case c == '{':
		fields, err := p.object()
		if err != nil {
			return nil, err
		}
		return p.structValue(fields), nil
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		if err := p.charge(int64(len(s))); err != nil {
			return nil, err
		}
		return p.stringValue(s), nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		if err := p.literal("true"); err != nil {
			return nil, err
		}
		return p.boolValue(true), nil
	case c == 'f':
		if err := p.literal("false"); err != nil {
			return nil, err
		}
		return p.boolValue(false), nil
	case c == 'n':
		if err := p.literal("null"); err != nil {
			return nil, err
		}
		return p.nullValue(), nil
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *parser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.errorf("invalid literal")
	}
	p.pos += len(word)
	return nil
}

func (p *parser) enter() error {
	if p.depth == maxDepth {
		return p.errorf("nested deeper than %d", maxDepth)
	}
	p.depth++
	return nil
}

// object reads an object and returns its fields.
//
// Like array, it restores the parser's depth and scratch on success only,
// without defers: an error ends the parse, and the parser with it.
func (p *parser) object() (map[string]*structpb.Value, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return map[string]*structpb.Value{}, nil
	}
	first := len(p.fields)
	for {
		if p.pos >= len(p.data) {
			return nil, errEnd
		}
		if p.data[p.pos] != '"' {
			return nil, p.errorf("expected a string key")
		}
		key, err := p.string()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, errEnd
		}
		if p.data[p.pos] != ':' {
			return nil, p.errorf("expected ':'")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if err := p.charge(costObjectEntry + int64(len(key))); err != nil {
			return nil, err
		}
		p.fields = append(p.fields, field{key, v})
		closed, err := p.afterElement('}')
		if err != nil {
			return nil, err
		}
		if closed {
			break
		}
	}
	entries := p.fields[first:]
	// A map's first slots come as a group, whatever it holds.
	if err := p.charge(costMapGroup); err != nil {
		return nil, err
	}
	m := make(map[string]*structpb.Value, len(entries))
	for _, f := range entries {
		m[f.key] = f.val // a repeated key keeps its last value
	}
	p.fields = p.fields[:first]
	p.depth--
	return m, nil
}

// afterElement consumes the ',' or the closing byte that follows an element
// of an object or array, and reports whether it was the closing byte.
func (p *parser) afterElement(closing byte) (bool, error) {
	next, closed, err := jsonscan.AfterElement(p.data, p.pos, closing)
	p.pos = next
	switch {
	case errors.Is(err, jsonscan.ErrEnd):
		return false, errEnd
	case err != nil:
		return false, p.errorf("expected ',' or '%c'", closing)
	}
	return closed, nil
}

func (p *parser) array() (*structpb.Value, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // [
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return p.listValue(nil), nil
	}
	first := len(p.elems)
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if err := p.charge(costListEntry); err != nil {
			return nil, err
		}
		p.elems = append(p.elems, v)
		closed, err := p.afterElement(']')
		if err != nil {
			return nil, err
		}
		if closed {
			break
		}
	}
	values := make([]*structpb.Value, len(p.elems)-first)
	copy(values, p.elems[first:])
	p.elems = p.elems[:first]
	p.depth--
	return p.listValue(values), nil
}

// number reads a JSON number, which float64 must be able to hold.
func (p *parser) number() (*structpb.Value, error) {
	start := p.pos
	end, err := jsonscan.Number(p.data, start)
	p.pos = end
	if err != nil {
		return nil, p.errorf("invalid number")
	}
	f, err := strconv.ParseFloat(string(p.data[start:end]), 64)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON at offset %d: number %s does not fit a float64", start, p.data[start:end])
	}
	return p.numberValue(f), nil
}

// string reads a quoted string, starting at its opening quote.
func (p *parser) string() (string, error) {
	b, next, err := jsonscan.String(p.data, p.pos+1, nil)
	p.pos = next
	switch {
	case errors.Is(err, jsonscan.ErrEnd):
		return "", errEnd
	case err != nil:
		return "", p.errorf("%s", err.Error())
	}
	return p.intern(b), nil
}

// skip checks the container at p.pos without building it, as value would
// (so the payload is accepted or refused exactly the same), keeping its
// nesting on a heap stack rather than the goroutine's.
func (p *parser) skip() error {
	var closers []byte
	for {
		// A value starts at p.pos.
		if p.pos >= len(p.data) {
			return errEnd
		}
		switch c := p.data[p.pos]; {
		case c == '{' || c == '[':
			if p.depth+len(closers) >= maxDepth {
				return p.errorf("nested deeper than %d", maxDepth)
			}
			closing := byte('}')
			if c == '[' {
				closing = ']'
			}
			closers = append(closers, closing)
			p.pos++
			p.skipSpace()
			if p.pos < len(p.data) && p.data[p.pos] == closing {
				p.pos++
				closers = closers[:len(closers)-1]
				break
			}
			if closing == '}' {
				if err := p.skipKey(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if err := p.skipString(); err != nil {
				return err
			}
		case c == '-' || (c >= '0' && c <= '9'):
			end, err := jsonscan.Number(p.data, p.pos)
			p.pos = end
			if err != nil {
				return p.errorf("invalid number")
			}
		case c == 't':
			if err := p.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := p.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := p.literal("null"); err != nil {
				return err
			}
		default:
			return p.errorf("unexpected %q", c)
		}
		// After a value: close containers, or move to the next element.
		for len(closers) > 0 {
			closing := closers[len(closers)-1]
			closed, err := p.afterElement(closing)
			if err != nil {
				return err
			}
			if closed {
				closers = closers[:len(closers)-1]
				continue
			}
			if closing == '}' {
				if err := p.skipKey(); err != nil {
					return err
				}
			}
			break
		}
		if len(closers) == 0 {
			return nil
		}
	}
}

// skipString checks the string literal at p.pos.
func (p *parser) skipString() error {
	_, next, err := jsonscan.String(p.data, p.pos+1, nil)
	p.pos = next
	switch {
	case errors.Is(err, jsonscan.ErrEnd):
		return errEnd
	case err != nil:
		return p.errorf("%s", err.Error())
	}
	return nil
}

// skipKey checks an object member's key and colon, leaving p.pos at its
// value.
func (p *parser) skipKey() error {
	if p.pos >= len(p.data) {
		return errEnd
	}
	if p.data[p.pos] != '"' {
		return p.errorf("expected a string key")
	}
	if err := p.skipString(); err != nil {
		return err
	}
	p.skipSpace()
	if p.pos >= len(p.data) {
		return errEnd
	}
	if p.data[p.pos] != ':' {
		return p.errorf("expected ':'")
	}
	p.pos++
	p.skipSpace()
	return nil
}
