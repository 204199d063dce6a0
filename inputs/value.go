package inputs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hogwire/hogwire/jsonscan"
)

// Kind is the JSON type of a Value.
type Kind uint8

// The JSON types.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

// Value is a JSON value that keeps the order of object keys, which a
// protobuf Struct loses. The zero Value is null.
type Value struct {
	Kind   Kind
	Bool   bool
	Number float64
	String string
	// Keys are an object's keys in order; Elems holds their values. For an
	// array, Elems holds the elements.
	Keys  []string
	Elems []Value
}

// Str returns a string value.
func Str(s string) Value { return Value{Kind: String, String: s} }

// Get returns the value of key in an object.
func (v Value) Get(key string) (Value, bool) {
	if i := slices.Index(v.Keys, key); i >= 0 && v.Kind == Object {
		return v.Elems[i], true
	}
	return Value{}, false
}

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

// Parse reads JSON text into a Value, keeping object keys in order. A key
// given twice keeps its first position and its last value, as JavaScript's
// JSON.parse does.
func Parse(text string) (Value, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(text)))
	d.UseNumber()
	v, err := parseValue(d, 0)
	if err != nil {
		return Value{}, err
	}
	if _, err := d.Token(); err != io.EOF {
		return Value{}, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

func parseValue(d *json.Decoder, depth int) (Value, error) {
	tok, err := d.Token()
	if err != nil {
		if err == io.EOF {
			return Value{}, errors.New("unexpected end of JSON")
		}
		return Value{}, err
	}
	return fromToken(d, tok, depth)
}

func fromToken(d *json.Decoder, tok json.Token, depth int) (Value, error) {
	if depth > maxDepth {
		return Value{}, errors.New("JSON nested too deeply")
	}
	switch t := tok.(type) {
	case nil:
		return Value{}, nil
	case bool:
		return Value{Kind: Bool, Bool: t}, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return Value{}, fmt.Errorf("invalid number %s", t)
		}
		if math.IsInf(f, 0) {
			return Value{}, fmt.Errorf("number %s is out of range", t)
		}
		return Value{Kind: Number, Number: f}, nil
	case string:
		return Str(t), nil
	case json.Delim:
		switch t {
		case '[':
			v := Value{Kind: Array}
			for d.More() {
				e, err := parseValue(d, depth+1)
				if err != nil {
					return Value{}, err
				}
				v.Elems = append(v.Elems, e)
			}
			_, err := d.Token()
			return v, err
		case '{':
			v := Value{Kind: Object}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return Value{}, err
				}
				key, _ := kt.(string)
				e, err := parseValue(d, depth+1)
				if err != nil {
					return Value{}, err
				}
				if i := slices.Index(v.Keys, key); i >= 0 {
					v.Elems[i] = e
					continue
				}
				v.Keys = append(v.Keys, key)
				v.Elems = append(v.Elems, e)
			}
			_, err := d.Token()
			return v, err
		}
	}
	return Value{}, fmt.Errorf("unexpected JSON token %v", tok)
}

// JSON returns v as compact JSON text, object keys in order. HTML
// characters are not escaped.
func (v Value) JSON() string { return string(v.AppendJSON(nil)) }

// MarshalJSON encodes v as JSON.
func (v Value) MarshalJSON() ([]byte, error) { return v.AppendJSON(nil), nil }

// UnmarshalJSON decodes JSON into v, keeping key order.
func (v *Value) UnmarshalJSON(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// AppendJSON appends v as compact JSON to b.
func (v Value) AppendJSON(b []byte) []byte {
	switch v.Kind {
	case Bool:
		return strconv.AppendBool(b, v.Bool)
	case Number:
		return appendNumber(b, v.Number)
	case String:
		return jsonscan.AppendString(b, v.String)
	case Array:
		b = append(b, '[')
		for i, e := range v.Elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.AppendJSON(b)
		}
		return append(b, ']')
	case Object:
		b = append(b, '{')
		for i, k := range v.Keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonscan.AppendString(b, k)
			b = append(b, ':')
			b = v.Elems[i].AppendJSON(b)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

// appendNumber formats f as encoding/json does (and as JavaScript does for
// every value JSON can hold).
func appendNumber(b []byte, f float64) []byte {
	j, err := json.Marshal(f)
	if err != nil { // NaN and infinities, which JSON cannot hold
		return append(b, "null"...)
	}
	return append(b, j...)
}

// FromProto converts a protobuf Value. A Struct has no key order, so
// object keys come out sorted.
func FromProto(p *structpb.Value) Value {
	switch k := p.GetKind().(type) {
	case *structpb.Value_BoolValue:
		return Value{Kind: Bool, Bool: k.BoolValue}
	case *structpb.Value_NumberValue:
		return Value{Kind: Number, Number: k.NumberValue}
	case *structpb.Value_StringValue:
		return Str(k.StringValue)
	case *structpb.Value_ListValue:
		v := Value{Kind: Array}
		for _, e := range k.ListValue.GetValues() {
			v.Elems = append(v.Elems, FromProto(e))
		}
		return v
	case *structpb.Value_StructValue:
		fields := k.StructValue.GetFields()
		v := Value{Kind: Object, Keys: make([]string, 0, len(fields))}
		for key := range fields {
			v.Keys = append(v.Keys, key)
		}
		slices.Sort(v.Keys)
		for _, key := range v.Keys {
			v.Elems = append(v.Elems, FromProto(fields[key]))
		}
		return v
	}
	return Value{}
}

// Proto converts v to a protobuf Value, losing the key order.
func (v Value) Proto() *structpb.Value {
	switch v.Kind {
	case Bool:
		return structpb.NewBoolValue(v.Bool)
	case Number:
		return structpb.NewNumberValue(v.Number)
	case String:
		return structpb.NewStringValue(v.String)
	case Array:
		l := &structpb.ListValue{Values: make([]*structpb.Value, len(v.Elems))}
		for i, e := range v.Elems {
			l.Values[i] = e.Proto()
		}
		return structpb.NewListValue(l)
	case Object:
		s := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(v.Keys))}
		for i, k := range v.Keys {
			s.Fields[k] = v.Elems[i].Proto()
		}
		return structpb.NewStructValue(s)
	}
	return structpb.NewNullValue()
}

// Equal reports whether v and w are the same JSON value, whatever the
// order of their object keys.
func (v Value) Equal(w Value) bool {
	if v.Kind != w.Kind {
		return false
	}
	switch v.Kind {
	case Bool:
		return v.Bool == w.Bool
	case Number:
		return v.Number == w.Number
	case String:
		return v.String == w.String
	case Array:
		return slices.EqualFunc(v.Elems, w.Elems, Value.Equal)
	case Object:
		if len(v.Keys) != len(w.Keys) {
			return false
		}
		for i, k := range v.Keys {
			e, ok := w.Get(k)
			if !ok || !v.Elems[i].Equal(e) {
				return false
			}
		}
	}
	return true
}
