package persons

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// appendPerson must give encoding/json's bytes: persons stored before it
// and after are alike, and a node of either version reads both.
func TestEncodePersonAsEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", `q"uote\back`, "<b>&amp;</b>", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é中文🙂",
		"bad\xffutf8\xc3", "line\u2028sep\u2029", "\u00e9\u0301", string([]byte{0xed, 0xa0, 0x80})}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-6, 1e-7, 9.99e-7, 1e20, 1e21, 1.5e300, -2.5e-300, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64, 3}
	persons := []*Person{
		{},
		{ID: "x", Properties: map[string]any{}, DistinctIDs: []string{}, Applied: []string{}},
		{ID: DerivedID("shop", "u"), Properties: map[string]any{"a": nil, "b": true, "c": false, "d": []any{}, "e": map[string]any{},
			"f": []any(nil), "g": map[string]any(nil), "<k>": []any{1.5, "s", nil, map[string]any{"z": 1.0, "a": []any{}}}},
			CreatedAt: time.Date(2026, 12, 6, 18, 0, 0, 123456789, time.UTC), IsIdentified: true, DistinctIDs: []string{"u", "v"},
			Version: 7, MergedInto: "y", Applied: []string{"m1", "m2"}},
		{ID: "tz", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))},
	}
	for i, s := range strs {
		persons = append(persons, &Person{ID: s, Properties: map[string]any{s: s, "f": floats[i%len(floats)]}, DistinctIDs: []string{s}, MergedInto: s})
	}
	for _, f := range floats {
		persons = append(persons, &Person{Properties: map[string]any{"f": f, "n": -f, "l": []any{f}}})
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		persons = append(persons, &Person{ID: strs[rnd.IntN(len(strs))], Properties: randomMap(rnd, strs, floats, 0),
			Version: rnd.Int64(), DistinctIDs: []string{strs[rnd.IntN(len(strs))]}})
	}
	for _, p := range persons {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendPerson(nil, p)
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("appendPerson(%+v) = %s (%v), encoding/json gives %s", p, got, ok, want)
		}
	}
	// What it does not encode goes to encoding/json, errors included.
	for _, v := range []any{1, int64(2), json.Number("3"), []string{"a"}, map[string]string{}, math.NaN(), math.Inf(1)} {
		p := &Person{ID: "x", Properties: map[string]any{"v": v}}
		if _, ok := appendPerson(nil, p); ok {
			t.Fatalf("appendPerson encoded %T", v)
		}
		got, gotErr := encode(p)
		want, wantErr := json.Marshal(p)
		if !bytes.Equal(got, want) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("encode of %T: %s, %v; encoding/json: %s, %v", v, got, gotErr, want, wantErr)
		}
	}
}

func randomMap(rnd *rand.Rand, strs []string, floats []float64, depth int) map[string]any {
	m := map[string]any{}
	for range rnd.IntN(5) {
		m[strs[rnd.IntN(len(strs))]+strs[rnd.IntN(len(strs))]] = randomValue(rnd, strs, floats, depth+1)
	}
	return m
}

func randomValue(rnd *rand.Rand, strs []string, floats []float64, depth int) any {
	n := 7
	if depth > 3 {
		n = 5
	}
	switch rnd.IntN(n) {
	case 0:
		return nil
	case 1:
		return rnd.IntN(2) == 0
	case 2:
		return strs[rnd.IntN(len(strs))]
	case 3:
		f := floats[rnd.IntN(len(floats))]
		if g := f * float64(rnd.IntN(1000)-500); !math.IsInf(g, 0) {
			return g
		}
		return f
	case 4:
		return rnd.NormFloat64() * math.Pow(10, float64(rnd.IntN(60)-30))
	case 5:
		l := []any{}
		for range rnd.IntN(4) {
			l = append(l, randomValue(rnd, strs, floats, depth+1))
		}
		return l
	default:
		return randomMap(rnd, strs, floats, depth)
	}
}
