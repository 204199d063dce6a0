package capture

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// checkLikeEncodingJSON fails unless parseJSON accepts exactly what
// encoding/json accepts and decodes it to the same value.
func checkLikeEncodingJSON(t *testing.T, in []byte) {
	t.Helper()
	var want any
	wantErr := json.Unmarshal(in, &want)
	got, err := parseJSON(in)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("parseJSON(%q): error %v, encoding/json: %v", in, err, wantErr)
	}
	if err != nil {
		return
	}
	if g := got.AsInterface(); !reflect.DeepEqual(g, want) {
		t.Fatalf("parseJSON(%q) = %#v, encoding/json = %#v", in, g, want)
	}
}

var jsonSeeds = []string{
	`{}`, `[]`, ` {"a" : [1, -2.5e3, 0, -0, 1E+2, 1e-400, true, false, null, "x"]} `,
	`"\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r"`, `"\ud800"`, `"\udc00\ud800x"`, `"\ud83d\u0041"`, "\"\xff\xfe ok \xc3\"", "\"é😀\"",
	`{"a":1,"a":2}`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `[1 2]`, `01`, `1.`, `.5`, `-`, `1e`, `1e400`, `-1e400`, `+1`,
	`tru`, `nul`, `"abc`, `"\x"`, `"\u12"`, `"\u12zz"`, "\"a\x01b\"", `{"a":{"b":{"c":[[[]]]}}}`, `1 2`, ``, `   `,
	`{"k":"v"}x`, `[` + strings.Repeat(`"s",`, 50) + `"t"]`, `NaN`, `Infinity`, `{"\u0000":"\u0000"}`,
}

func TestParseJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		checkLikeEncodingJSON(t, []byte(s))
	}
	deep := strings.Repeat(`[{"a":`, maxDepth/2) + "1" + strings.Repeat("}]", maxDepth/2)
	checkLikeEncodingJSON(t, []byte(deep))
	if _, err := parseJSON([]byte(deep)); err != nil {
		t.Errorf("nesting of %d refused: %v", maxDepth, err)
	}
	tooDeep := "[" + deep + "]"
	checkLikeEncodingJSON(t, []byte(tooDeep))
	if _, err := parseJSON([]byte(tooDeep)); err == nil {
		t.Errorf("nesting of %d accepted", maxDepth+1)
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkLikeEncodingJSON(t, in) })
}
