package jsonscan_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/jsonscan"
)

// Strings decode as encoding/json decodes them; the position after the
// closing quote or of the fault is returned.
func TestString(t *testing.T) {
	for _, c := range []struct {
		in   string // the literal, quotes included
		next int
		err  error
	}{
		{`"plain"`, 7, nil},
		{`"caf\u00e9 \ud83d\ude00 \/\b\f\n\r\t\"\\"`, 41, nil},
		{"\"\xff\xfe\"", 4, nil},
		{`"\ud800\u0041"`, 14, nil},
		{`"\ud800"`, 8, nil},
		{"\"a\x01\"", 2, jsonscan.ErrControl},
		{`"\x"`, 1, jsonscan.ErrEscape},
		{`"\u12"`, 1, jsonscan.ErrUnicodeEscape},
		{`"open`, 5, jsonscan.ErrEnd},
		{`"\`, 1, jsonscan.ErrEnd},
	} {
		s, next, err := jsonscan.String([]byte(c.in), 1, nil)
		if next != c.next || !errors.Is(err, c.err) {
			t.Errorf("%q: next %d, err %v; want %d, %v", c.in, next, err, c.next, c.err)
			continue
		}
		if err != nil {
			continue
		}
		var want string
		if err := json.Unmarshal([]byte(c.in), &want); err != nil {
			t.Fatal(err)
		}
		if string(s) != want {
			t.Errorf("%q decoded to %q, encoding/json says %q", c.in, s, want)
		}
	}
}

func TestNumber(t *testing.T) {
	for _, c := range []struct {
		in   string
		next int
		ok   bool
	}{
		{"0", 1, true}, {"-12.5e+3,", 8, true}, {"01", 1, true}, {"1E9]", 3, true},
		{"-", 1, false}, {"1.", 2, false}, {"1e", 2, false}, {".5", 0, false}, {"+1", 0, false},
	} {
		next, err := jsonscan.Number([]byte(c.in), 0)
		if next != c.next || (err == nil) != c.ok {
			t.Errorf("%q: next %d, err %v; want %d, ok %v", c.in, next, err, c.next, c.ok)
		}
	}
}

func TestAfterElement(t *testing.T) {
	for _, c := range []struct {
		in     string
		next   int
		closed bool
		err    error
	}{
		{" , 2", 3, false, nil}, {"\n]", 2, true, nil}, {"}", 0, false, jsonscan.ErrSeparator}, {"  ", 2, false, jsonscan.ErrEnd},
	} {
		next, closed, err := jsonscan.AfterElement([]byte(c.in), 0, ']')
		if next != c.next || closed != c.closed || !errors.Is(err, c.err) {
			t.Errorf("%q: %d %v %v, want %d %v %v", c.in, next, closed, err, c.next, c.closed, c.err)
		}
	}
}

// Strings are written as JSON.stringify writes them, and read back as
// they were (invalid UTF-8 as U+FFFD).
func TestAppendString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `""`},
		{"plain <b>&</b> text", `"plain <b>&</b> text"`},
		{"q\"b\\n\nt\tc\x01\x1f", `"q\"b\\n\nt\tc\u0001\u001f"`},
		{"\b\f\r", `"\b\f\r"`},
		{"é 😀 \u2028\u2029", "\"é 😀 \u2028\u2029\""},
		{"bad \xff byte\n", `"bad \ufffd byte\n"`},
	} {
		got := string(jsonscan.AppendString([]byte("x"), c.in))
		if got != "x"+c.want {
			t.Errorf("AppendString(%q) = %s, want x%s", c.in, got, c.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got[1:]), &back); err != nil {
			t.Fatalf("%s does not decode: %v", got[1:], err)
		}
		if want := strings.ToValidUTF8(c.in, "\ufffd"); back != want {
			t.Errorf("%s decodes to %q, want %q", got[1:], back, want)
		}
	}
}
