package bytecode_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/bytecode"
)

func TestAppendPythonFloat(t *testing.T) {
	// Expected values are Python's repr() of the same floats.
	tests := []struct {
		f    float64
		want string
	}{
		{1, "1.0"}, {0.1, "0.1"}, {1e16, "1e+16"}, {1e-5, "1e-05"}, {0.0001, "0.0001"},
		{123456789012345678, "1.2345678901234568e+17"}, {1.5e300, "1.5e+300"}, {-2, "-2.0"},
		{1e15, "1000000000000000.0"}, {5e-324, "5e-324"}, {0.30000000000000004, "0.30000000000000004"},
		{math.Copysign(0, -1), "-0.0"}, {0, "0.0"}, {math.MaxFloat64, "1.7976931348623157e+308"},
		{math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"}, {math.NaN(), "NaN"},
	}
	for _, tt := range tests {
		if got := string(bytecode.AppendPythonFloat(nil, tt.f)); got != tt.want {
			t.Errorf("%v: got %s, want %s", tt.f, got, tt.want)
		}
	}
}

func TestAppendPythonString(t *testing.T) {
	// Expected values are Python's json.dumps() of the same strings.
	tests := []struct{ s, want string }{
		{"plain", `"plain"`},
		{"é", `"\u00e9"`},
		{"😀", `"\ud83d\ude00"`},
		{"\x7f\x00\u2028", `"\u007f\u0000\u2028"`},
		{`a"b\`, `"a\"b\\"`},
		{"/<>&", `"/<>&"`},
		{"\x1f\t\n\r\b\f", `"\u001f\t\n\r\b\f"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
	}
	for _, tt := range tests {
		if got := string(bytecode.AppendPythonString(nil, tt.s)); got != tt.want {
			t.Errorf("%q: got %s, want %s", tt.s, got, tt.want)
		}
	}
}

func TestMarshalJSON(t *testing.T) {
	p := &bytecode.Program{Version: 1, Code: []any{
		int64(bytecode.String), "héllo", int64(bytecode.Float), 2.0, int64(bytecode.Closure), int64(1), true, int64(0),
	}}
	got, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `["_H",1,32,"h\u00e9llo",34,2.0,53,1,true,0]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// The JSON reads back as the same values; 2.0 stays a float.
	var back []any
	dec := json.NewDecoder(strings.NewReader(string(got)))
	dec.UseNumber()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if back[3] != "héllo" || back[5].(json.Number).String() != "2.0" || back[8] != true {
		t.Errorf("round trip: %v", back)
	}

	legacy, err := json.Marshal(&bytecode.Program{Version: 0, Code: []any{int64(29)}})
	if err != nil || string(legacy) != `["_h",29]` {
		t.Errorf("legacy program: %s, %v", legacy, err)
	}

	if _, err := json.Marshal(&bytecode.Program{Version: 1, Code: []any{int64(34), math.Inf(1)}}); err == nil {
		t.Error("infinite float marshalled without error")
	}
	if _, err := json.Marshal(&bytecode.Program{Version: 1, Code: []any{struct{}{}}}); err == nil {
		t.Error("unsupported element marshalled without error")
	}
}

func TestFormat(t *testing.T) {
	short := &bytecode.Program{Version: 1, Code: []any{int64(33), int64(1), int64(35)}}
	if got := string(bytecode.Format(short)); got != "[\"_H\", 1, 33, 1, 35]\n" {
		t.Errorf("short: %q", got)
	}
	// Long programs wrap before a line would pass 118 characters; the break
	// replaces the space after a comma.
	var code []any
	for i := 0; i < 60; i++ {
		code = append(code, int64(32), "abcdefghij")
	}
	out := string(bytecode.Format(&bytecode.Program{Version: 1, Code: code}))
	if !strings.HasSuffix(out, "]\n") {
		t.Errorf("no closing bracket and newline: %q", out[len(out)-5:])
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 10 {
		t.Fatalf("expected wrapping, got %d lines", len(lines))
	}
	for i, l := range lines {
		if len(l) > 118 {
			t.Errorf("line %d has %d characters", i, len(l))
		}
		if strings.HasPrefix(l, " ") || (i < len(lines)-1 && !strings.HasSuffix(l, ",")) {
			t.Errorf("line %d badly broken: %q", i, l)
		}
	}
	if joined := strings.Join(lines, " "); !strings.HasPrefix(joined, `["_H", 1, 32, "abcdefghij", 32,`) {
		t.Errorf("unexpected start %q", joined[:40])
	}
	// Format never fails: non-finite floats use Python's spelling.
	if got := string(bytecode.Format(&bytecode.Program{Version: 1, Code: []any{int64(34), math.NaN()}})); got != "[\"_H\", 1, 34, NaN]\n" {
		t.Errorf("nan: %q", got)
	}
}

// TestDecodeRoundTrip checks that Decode reads back what MarshalJSON and
// Format write.
func TestDecodeRoundTrip(t *testing.T) {
	p := &bytecode.Program{Version: 1, Code: []any{
		int64(32), "a\"b\u00e9\U0001F600", int64(34), 2.0, int64(34), 1e-7, int64(33), int64(-5),
		int64(53), int64(1), true, int64(0), int64(31),
	}}
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{js, bytecode.Format(p)} {
		back, err := bytecode.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if back.Version != p.Version || len(back.Code) != len(p.Code) {
			t.Fatalf("%s: got %#v", data, back)
		}
		for i := range p.Code {
			if back.Code[i] != p.Code[i] {
				t.Errorf("element %d: got %#v, want %#v", i, back.Code[i], p.Code[i])
			}
		}
	}
}
