package persons

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// encode returns v as JSON. A person, written for every event that
// changes it, is encoded by appendPerson, which gives encoding/json's
// bytes without its reflection; anything appendPerson does not know goes
// to encoding/json.
func encode(v any) ([]byte, error) {
	if p, ok := v.(*Person); ok && p != nil {
		if b, ok := appendPerson(make([]byte, 0, 256), p); ok {
			return b, nil
		}
	}
	return json.Marshal(v)
}

// appendPerson appends p as encoding/json encodes it (fields in order,
// map keys sorted, strings escaped alike), or reports false when p holds
// a value it does not encode (anything but what JSON decodes to: nil,
// bool, float64, string, []any, map[string]any; a number JSON has not, a
// time outside JSON's years).
func appendPerson(b []byte, p *Person) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = appendString(b, p.ID)
	b = append(b, `,"properties":`...)
	var ok bool
	if p.Properties == nil {
		b = append(b, "null"...)
	} else if b, ok = appendValue(b, p.Properties, 0); !ok {
		return nil, false
	}
	t, err := p.CreatedAt.MarshalJSON()
	if err != nil {
		return nil, false
	}
	b = append(b, `,"created_at":`...)
	b = append(b, t...)
	b = append(b, `,"is_identified":`...)
	b = strconv.AppendBool(b, p.IsIdentified)
	b = append(b, `,"distinct_ids":`...)
	b = appendStrings(b, p.DistinctIDs)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, p.Version, 10)
	if p.MergedInto != "" {
		b = append(b, `,"merged_into":`...)
		b = appendString(b, p.MergedInto)
	}
	if len(p.Applied) > 0 {
		b = append(b, `,"applied":`...)
		b = appendStrings(b, p.Applied)
	}
	return append(b, '}'), true
}

func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// maxEncodeDepth bounds the nesting appendValue follows; deeper values go
// to encoding/json.
const maxEncodeDepth = 64

func appendValue(b []byte, v any, depth int) ([]byte, bool) {
	if depth > maxEncodeDepth {
		return nil, false
	}
	var ok bool
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return strconv.AppendBool(b, v), true
	case string:
		return appendString(b, v), true
	case float64:
		return appendFloat(b, v)
	case []any:
		if v == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendValue(b, e, depth+1); !ok {
				return nil, false
			}
		}
		return append(b, ']'), true
	case map[string]any:
		if v == nil {
			return append(b, "null"...), true
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			if b, ok = appendValue(b, v[k], depth+1); !ok {
				return nil, false
			}
		}
		return append(b, '}'), true
	}
	return nil, false
}

// appendFloat formats f as encoding/json does; false for NaN and
// infinities, which it refuses.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with its HTML escaping:
// <, > and & as \u003c and the like, invalid UTF-8 as \ufffd, U+2028 and
// U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
