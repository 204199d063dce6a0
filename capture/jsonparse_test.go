package capture

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

// checkLikeEncodingJSON fails unless parseJSON accepts exactly what
// encoding/json accepts and decodes it to the same value, whether it
// builds every container or cuts those nested deeper than a few levels.
func checkLikeEncodingJSON(t *testing.T, in []byte) {
	t.Helper()
	var want any
	wantErr := json.Unmarshal(in, &want)
	for _, cut := range []int{maxDepth, 2} {
		got, truncated, err := parseJSON(in, cut, nil)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("parseJSON(%q) cut at %d: error %v, encoding/json: %v", in, cut, err, wantErr)
		}
		if err != nil {
			continue
		}
		if cut == maxDepth && truncated {
			t.Fatalf("parseJSON(%q) truncated without a cut", in)
		}
		if g := got.AsInterface(); !truncated && !reflect.DeepEqual(g, want) {
			t.Fatalf("parseJSON(%q) = %#v, encoding/json = %#v", in, g, want)
		}
	}
}

var jsonSeeds = []string{
	`{}`, `[]`, ` {"a" : [1, -2.5e3, 0, -0, 1E+2, 1e-400, true, false, null, "x"]} `,
	`"\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r"`, `"\ud800"`, `"\udc00\ud800x"`, `"\ud83d\u0041"`, "\"\xff\xfe ok \xc3\"", "\"é😀\"",
	`{"a":1,"a":2}`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `[1 2]`, `01`, `1.`, `.5`, `-`, `1e`, `1e400`, `-1e400`, `+1`,
	`tru`, `nul`, `"abc`, `"\x"`, `"\u12"`, `"\u12zz"`, "\"a\x01b\"", `{"a":{"b":{"c":[[[]]]}}}`, `1 2`, ``, `   `,
	`{"k":"v"}x`, `[` + strings.Repeat(`"s",`, 50) + `"t"]`, `NaN`, `Infinity`, `{"\u0000":"\u0000"}`,
	`[[[{"a":[1,{"b":"\u00e9"},[]]}, {} ,[ ]]]]`, `[[[{"a" 1}]]]`, `[[[{"a":1,}]]]`, `[[[[1,]]]]`, `[[[{1:2}]]]`,
	`[[[{"a":1}]]`, `[[["\x"]]]`, `[[[tru]]]`, `[[[01]]]`, `[[[{"a":1}}]]]`, `[[[ {"a" : [ ] } , [ 1 , 2 ] ]]]`,
}

func TestParseJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		checkLikeEncodingJSON(t, []byte(s))
	}
	deep := strings.Repeat(`[{"a":`, maxDepth/2) + "1" + strings.Repeat("}]", maxDepth/2)
	checkLikeEncodingJSON(t, []byte(deep))
	if _, _, err := parseJSON([]byte(deep), maxDepth, nil); err != nil {
		t.Errorf("nesting of %d refused: %v", maxDepth, err)
	}
	if _, _, err := parseJSON([]byte(deep), payloadDepth, nil); err != nil {
		t.Errorf("nesting of %d refused with a cut: %v", maxDepth, err)
	}
	tooDeep := "[" + deep + "]"
	checkLikeEncodingJSON(t, []byte(tooDeep))
	for _, cut := range []int{maxDepth, payloadDepth} {
		if _, _, err := parseJSON([]byte(tooDeep), cut, nil); err == nil {
			t.Errorf("nesting of %d accepted with the cut at %d", maxDepth+1, cut)
		}
	}
}

// Containers past the cut are replaced by cutValue; the rest is built.
func TestParseJSONCut(t *testing.T) {
	v, truncated, err := parseJSON([]byte(`{"a":{"b":[{"c":1}],"d":"x"},"e":[[2]]}`), 2, nil)
	if err != nil || !truncated {
		t.Fatalf("truncated %v, err %v", truncated, err)
	}
	a := v.GetStructValue().Fields["a"].GetStructValue()
	if a.Fields["b"] != cutValue || a.Fields["d"].GetStringValue() != "x" || v.GetStructValue().Fields["e"].GetListValue().Values[0] != cutValue {
		t.Fatalf("parsed %v", v)
	}
	if field, ok := cutField(v); !ok || (field != "a" && field != "e") {
		t.Errorf("cutField: %q %v", field, ok)
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkLikeEncodingJSON(t, in) })
}

// The memory a parse reserves covers what the values it builds hold,
// however the payload is shaped: hostile payloads of tiny values cost many
// times their size.
func TestParseChargesWhatItBuilds(t *testing.T) {
	var manyKeys strings.Builder
	manyKeys.WriteString("{")
	for i := range 50_000 {
		fmt.Fprintf(&manyKeys, `"k%d":0,`, i)
	}
	manyKeys.WriteString(`"x":0}`)
	payloads := map[string]string{
		"zeros":     "[" + strings.Repeat("0,", 200_000) + "0]",
		"objects":   "[" + strings.Repeat("{},", 200_000) + "{}]",
		"arrays":    "[" + strings.Repeat("[],", 200_000) + "[]]",
		"strings":   "[" + strings.Repeat(`"",`, 200_000) + `""]`,
		"long":      `["` + strings.Repeat("x", 1<<20) + `"]`,
		"literals":  "[" + strings.Repeat("true,null,", 100_000) + "false]",
		"nested":    "[" + strings.Repeat(`{"a":{"b":0}},`, 100_000) + "0]",
		"many keys": manyKeys.String(),
		"events":    strings.TrimSuffix(strings.Repeat(`{"event":"$pageview","distinct_id":"u","properties":{"$current_url":"https://example.com/p","$browser":"Chrome","$screen_width":1920,"flags":["a","b"]}},`, 5000), ","),
	}
	for name, p := range payloads {
		if name == "events" {
			p = "[" + p + "]"
		}
		mem := (&memory{max: 1 << 40}).lease()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		v, _, err := parseJSON([]byte(p), payloadDepth, mem)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		runtime.KeepAlive(v)
		if live > mem.held*11/10 {
			t.Errorf("%s: %d bytes of JSON hold %d bytes, but %d were reserved", name, len(p), live, mem.held)
		}
		if mem.held > 3*live+reserveChunk {
			t.Errorf("%s: %d bytes reserved for %d held", name, mem.held, live)
		}
		t.Logf("%s: %d bytes of JSON, %d held, %d reserved", name, len(p), live, mem.held)
	}
	_ = structpb.NewNullValue
}

// The intern table keeps one string a slot, and strings that share a slot
// take it over from each other: every value must still be its own text,
// with more distinct short strings than the table has slots, repeated
// out of order, of every length up to internMax and past it.
func TestInternKeepsEachString(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := range 3 * internMaxSlots {
		if i > 0 {
			b.WriteString(",")
		}
		n := (i * 7919) % (2 * internMaxSlots)
		s := fmt.Sprintf("%d", n)
		s += strings.Repeat("x", n%(internMax+2))
		fmt.Fprintf(&b, `{%q:%q,"k":[%q,""]}`, s, s[:len(s)/2], s)
	}
	b.WriteString("]")
	checkLikeEncodingJSON(t, []byte(b.String()))
}

// Each kind of value carved from chunks gets chunks sized by its own use:
// a hundred objects and one list make one small chunk of lists, and the
// strings' chunks do not grow with the values'.
func TestChunksGrowByKind(t *testing.T) {
	data := []byte("[" + strings.TrimSuffix(strings.Repeat(`{"a":{"b":0}},`, 300), ",") + `,"s"]`)
	p := parser{data: data, cut: payloadDepth}
	if _, err := p.value(); err != nil {
		t.Fatal(err)
	}
	s := &p.slabs
	if s.structs.size != 256 || s.values.size != 256 || s.nums.size != 256 {
		t.Errorf("objects' chunk %d, values' %d, numbers' %d; want each to have grown to 256", s.structs.size, s.values.size, s.nums.size)
	}
	if s.lists.size != 16 || s.listKinds.size != 16 || s.strs.size != 16 {
		t.Errorf("lists' chunks %d and %d, strings' %d, for one list and one string; want 16", s.lists.size, s.listKinds.size, s.strs.size)
	}
}
