package bytecode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// DecodeError reports why a JSON document is not Hog bytecode.
type DecodeError struct {
	Offset int64 // byte offset in the input where the problem was found, -1 if unknown
	Msg    string
}

func (e *DecodeError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("bytecode: %s (at byte %d)", e.Msg, e.Offset)
	}
	return "bytecode: " + e.Msg
}

// Decode parses the JSON form of a program, ["_H", 1, op, operand, ...],
// or the legacy version-0 form ["_h", op, ...].
//
// Integers become int64 (integers beyond the int64 range become float64, as
// they would be doubles in PostHog's VM), numbers written with a fraction or
// an exponent become float64, strings and booleans keep their Go types and a
// JSON null becomes nil. Nested arrays and objects are rejected. Decode never
// panics; every malformed input yields a *DecodeError.
func Decode(data []byte) (*Program, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, wrapDecode(dec, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, &DecodeError{Offset: 0, Msg: "expected a JSON array"}
	}
	var code []any
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, wrapDecode(dec, err)
		}
		switch t := tok.(type) {
		case json.Delim:
			return nil, &DecodeError{Offset: dec.InputOffset() - 1, Msg: fmt.Sprintf("unexpected %q: elements must be numbers, strings, booleans or null", string(t))}
		case json.Number:
			v, err := decodeNumber(string(t))
			if err != nil {
				return nil, &DecodeError{Offset: dec.InputOffset(), Msg: err.Error()}
			}
			code = append(code, v)
		case nil, string, bool:
			code = append(code, t)
		}
	}
	if _, err := dec.Token(); err != nil { // closing bracket
		return nil, wrapDecode(dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &DecodeError{Offset: dec.InputOffset(), Msg: "trailing data after the bytecode array"}
	}
	if len(code) == 0 {
		return nil, &DecodeError{Offset: -1, Msg: `empty array, expected the "_H" header`}
	}
	switch code[0] {
	case "_H":
		if len(code) < 2 {
			return nil, &DecodeError{Offset: -1, Msg: `missing version after "_H"`}
		}
		v, ok := code[1].(int64)
		if !ok || v < 0 || v > Version {
			return nil, &DecodeError{Offset: -1, Msg: fmt.Sprintf("unsupported bytecode version %v", code[1])}
		}
		return &Program{Version: int(v), Code: code[2:]}, nil
	case "_h":
		return &Program{Version: 0, Code: code[1:]}, nil
	}
	return nil, &DecodeError{Offset: -1, Msg: `invalid header, bytecode must start with "_H"`}
}

func decodeNumber(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("invalid number %q", s)
	}
	if math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %q out of range", s)
	}
	return f, nil
}

func wrapDecode(dec *json.Decoder, err error) error {
	if err == io.EOF {
		return &DecodeError{Offset: dec.InputOffset(), Msg: "unexpected end of input"}
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return &DecodeError{Offset: syn.Offset, Msg: syn.Error()}
	}
	return &DecodeError{Offset: dec.InputOffset(), Msg: err.Error()}
}
