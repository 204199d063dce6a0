package capture

import (
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hogwire/hogwire/jsonscan"
)

// maxDepth bounds nesting as encoding/json does, so hostile input cannot
// exhaust the stack.
const maxDepth = 10000

// parseJSON decodes JSON text straight into a structpb.Value. Events end up
// as Structs anyway; going through map[string]any first would build every
// payload twice. It accepts exactly what encoding/json accepts and decodes
// to the same values: invalid UTF-8 and lone surrogates become U+FFFD,
// later duplicate keys win, and numbers beyond float64 are errors.
func parseJSON(data []byte) (*structpb.Value, error) {
	p := parser{data: data}
	p.skipSpace()
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("unexpected %q after the top-level value", p.data[p.pos])
	}
	return v, nil
}

type parser struct {
	data  []byte
	pos   int
	depth int
	// interned holds the short strings seen so far: the events of a batch
	// repeat the same keys and many of the same values, and sharing them
	// saves over a third of the parse's allocations.
	interned map[string]string
	slabs    slabs
	// fields collects the entries of the objects being read, so that each
	// object's map is made at its final size instead of growing.
	fields []field
}

type field struct {
	key string
	val *structpb.Value
}

// Strings and numbers are most of a payload's values, and each would be
// two allocations (the Value and its kind). They are carved from chunks
// instead, which live as long as the request's events, as the values
// would.
type slabs struct {
	values []structpb.Value
	strs   []structpb.Value_StringValue
	nums   []structpb.Value_NumberValue
	size   int
}

// carve takes the next element of a chunk, making a new chunk when it is
// used up: small for small payloads, growing up to 256 elements.
func carve[T any](chunk *[]T, size *int) *T {
	if len(*chunk) == 0 {
		*size = min(max(2**size, 16), 256)
		*chunk = make([]T, *size)
	}
	e := &(*chunk)[0]
	*chunk = (*chunk)[1:]
	return e
}

func (p *parser) stringValue(str string) *structpb.Value {
	k := carve(&p.slabs.strs, &p.slabs.size)
	k.StringValue = str
	v := carve(&p.slabs.values, &p.slabs.size)
	v.Kind = k
	return v
}

func (p *parser) numberValue(f float64) *structpb.Value {
	k := carve(&p.slabs.nums, &p.slabs.size)
	k.NumberValue = f
	v := carve(&p.slabs.values, &p.slabs.size)
	v.Kind = k
	return v
}

// Strings up to internMax bytes are interned, in a table of at most
// internEntries per payload.
const (
	internMax     = 32
	internEntries = 4096
)

func (p *parser) intern(b []byte) string {
	if len(b) > internMax {
		return string(b)
	}
	if s, ok := p.interned[string(b)]; ok {
		return s
	}
	s := string(b)
	if p.interned == nil {
		p.interned = make(map[string]string, 64)
	}
	if len(p.interned) < internEntries {
		p.interned[s] = s
	}
	return s
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
	switch c := p.data[p.pos]; {
	case c == '{':
		s, err := p.object()
		if err != nil {
			return nil, err
		}
		return structpb.NewStructValue(s), nil
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return p.stringValue(s), nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", structpb.NewBoolValue(true))
	case c == 'f':
		return p.literal("false", structpb.NewBoolValue(false))
	case c == 'n':
		return p.literal("null", structpb.NewNullValue())
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *parser) literal(word string, v *structpb.Value) (*structpb.Value, error) {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return nil, p.errorf("invalid literal")
	}
	p.pos += len(word)
	return v, nil
}

func (p *parser) enter() error {
	if p.depth == maxDepth {
		return p.errorf("nested deeper than %d", maxDepth)
	}
	p.depth++
	return nil
}

func (p *parser) object() (*structpb.Struct, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++ // {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return &structpb.Struct{Fields: map[string]*structpb.Value{}}, nil
	}
	first := len(p.fields)
	defer func() { p.fields = p.fields[:first] }()
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
	m := make(map[string]*structpb.Value, len(entries))
	for _, f := range entries {
		m[f.key] = f.val // a repeated key keeps its last value
	}
	return &structpb.Struct{Fields: m}, nil
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
	defer func() { p.depth-- }()
	p.pos++ // [
	list := &structpb.ListValue{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return structpb.NewListValue(list), nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		list.Values = append(list.Values, v)
		closed, err := p.afterElement(']')
		if err != nil {
			return nil, err
		}
		if closed {
			return structpb.NewListValue(list), nil
		}
	}
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
