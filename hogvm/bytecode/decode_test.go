package bytecode_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/hogwire/hogwire/hogvm/bytecode"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		version int
		code    []any
	}{
		{`["_H", 1, 32, "a", 33, 5, 34, 1.0, 29, 31]`, 1, []any{int64(32), "a", int64(33), int64(5), int64(34), 1.0, int64(29), int64(31)}},
		{`["_H", 1]`, 1, []any{}},
		{`["_h", 33, 1, 2, "print", 1]`, 0, []any{int64(33), int64(1), int64(2), "print", int64(1)}},
		{`["_H", 1, 53, 1, true, 0, null, -7, 1e2, 2.5e-3]`, 1, []any{int64(53), int64(1), true, int64(0), nil, int64(-7), 100.0, 0.0025}},
		{`["_H", 1, 33, 123456789012345678901234]`, 1, []any{int64(33), 1.2345678901234568e23}},
		{" [\"_H\",1,32,\"\\u00e9\\n\"] \n", 1, []any{int64(32), "é\n"}},
	} {
		p, err := bytecode.Decode([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if p.Version != tc.version || !reflect.DeepEqual(p.Code, tc.code) {
			t.Errorf("%s: got version %d code %#v", tc.in, p.Version, p.Code)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `[]`, `["_X", 1]`, `["_H"]`, `["_H", 2]`, `["_H", "1"]`, `["_H", 1, [1]]`, `["_H", 1, {"a": 1}]`,
		`["_H", 1, 33`, `["_H", 1, 33,]`, `["_H", 1] x`, `["_H", 1, 1e999]`, `["_H", 1, 01]`, `[1, 2]`,
	} {
		p, err := bytecode.Decode([]byte(in))
		var de *bytecode.DecodeError
		if err == nil || !errors.As(err, &de) {
			t.Errorf("%q: want DecodeError, got %v, %v", in, p, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`["_H", 1, 32, "a", 2, "print", 1, 35]`, `["_h", 33, 1]`, `["_H", 1, 1.5, true, null]`, `[`, `["_H", 1, [`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := bytecode.Decode(data)
		if err != nil {
			var de *bytecode.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, el := range p.Code {
			switch el.(type) {
			case nil, int64, float64, string, bool:
			default:
				t.Fatalf("element of type %T", el)
			}
		}
	})
}
