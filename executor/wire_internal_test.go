package executor

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hogwire/hogwire/hogvm/vm"
)

// wireKeys mixes keys JavaScript orders as array indexes with keys it does
// not, and keys that sort differently as strings and as numbers.
var wireKeys = []string{"0", "1", "2", "9", "10", "100", "012", "-1", "1.5", "4294967294", "4294967295",
	"$browser", "$set", "a", "b", "B", "", "ünï", "plan", "10a"}

// randomStruct encodes a google.protobuf.Struct with entries in a random
// order, some keys repeated (the last one wins), and nested values.
func randomStruct(r *rand.Rand, depth int) []byte {
	var b []byte
	n := r.IntN(12)
	if r.IntN(20) == 0 {
		n = 70 + r.IntN(60) // more than fit the sort's fixed buffer
	}
	for range n {
		key := wireKeys[r.IntN(len(wireKeys))]
		if n > len(wireKeys) {
			key = fmt.Sprint(r.IntN(3 * n))
			if r.IntN(2) == 0 {
				key = "k" + key
			}
		}
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, key)
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendBytes(entry, randomValue(r, depth))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
	}
	return b
}

func randomValue(r *rand.Rand, depth int) []byte {
	var b []byte
	kind := r.IntN(6)
	if depth >= 3 {
		kind = r.IntN(4)
	}
	switch kind {
	case 0:
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, 0)
	case 1:
		b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, uint64(r.IntN(1000)))
	case 2:
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, strings.Repeat("x", r.IntN(4)))
	case 3:
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(r.IntN(2)))
	case 4:
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, randomStruct(r, depth+1))
	case 5:
		var list []byte
		for range r.IntN(4) {
			list = protowire.AppendTag(list, 1, protowire.BytesType)
			list = protowire.AppendBytes(list, randomValue(r, depth+1))
		}
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, list)
	}
	return b
}

// sameValue reports where a and b differ, key order included.
func sameValue(a, b vm.Value, path string) error {
	if a.Kind() != b.Kind() {
		return fmt.Errorf("%s: kind %v, want %v", path, a.Kind(), b.Kind())
	}
	switch a.Kind() {
	case vm.KindDict:
		ad, bd := a.AsDict(), b.AsDict()
		if ad.Len() != bd.Len() {
			return fmt.Errorf("%s: %d entries, want %d", path, ad.Len(), bd.Len())
		}
		for i, k := range ad.Keys() {
			if k.AsString() != bd.Keys()[i].AsString() {
				return fmt.Errorf("%s: key %d is %q, want %q", path, i, k.AsString(), bd.Keys()[i].AsString())
			}
			if err := sameValue(ad.Values()[i], bd.Values()[i], path+"."+k.AsString()); err != nil {
				return err
			}
		}
		return nil
	case vm.KindArray:
		ae, be := a.AsArray().Elems, b.AsArray().Elems
		if len(ae) != len(be) {
			return fmt.Errorf("%s: %d elements, want %d", path, len(ae), len(be))
		}
		for i := range ae {
			if err := sameValue(ae[i], be[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	}
	aj, _ := a.MarshalJSON()
	bj, _ := b.MarshalJSON()
	if string(aj) != string(bj) {
		return fmt.Errorf("%s: %s, want %s", path, aj, bj)
	}
	return nil
}

// Objects decoded straight from the wire are those protobuf decodes and
// NewEvent converts: the same keys in the same (JavaScript) order, the last
// of a repeated key, whatever order and size the encoding has.
func TestWireStructMatchesProtobuf(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 1))
	for i := range 3000 {
		data := randomStruct(r, 0)
		s := &structpb.Struct{}
		if err := proto.Unmarshal(data, s); err != nil {
			t.Fatal(err)
		}
		want := vm.DictValue(dictFromFields(s.GetFields(), 0))
		dec := wireDecoders.Get().(*wireDecoder)
		got, err := dec.wireStruct(string(data), 0, 0)
		dec.release()
		if err != nil {
			t.Fatal(err)
		}
		if err := sameValue(vm.DictValue(got), want, "$"); err != nil {
			t.Fatalf("struct %d: %v", i, err)
		}
	}
}

// The links escape their parts as encodeURIComponent does, every byte.
func TestJoinURLEscapesAsEncodeURIComponent(t *testing.T) {
	var all strings.Builder
	var want strings.Builder
	for c := range 256 {
		all.WriteByte(byte(c))
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-_.!~*'()", byte(c)) >= 0:
			want.WriteByte(byte(c))
		default:
			fmt.Fprintf(&want, "%%%02X", c)
		}
	}
	got := joinURL("https://h.example/p", "/events/", all.String(), "/", "2026-12-06T06:37:08.000Z")
	if w := "https://h.example/p/events/" + want.String() + "/2026-12-06T06%3A37%3A08.000Z"; got != w {
		t.Errorf("joinURL =\n%q\nwant\n%q", got, w)
	}
	if got := joinURL("", "/person/", "", "", ""); got != "/person/" {
		t.Errorf("joinURL with empty parts = %q", got)
	}
}

// isoTimestamp writes what time.Format writes, for any instant.
func TestISOTimestampMatchesFormat(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 2))
	times := []time.Time{{}, time.Unix(0, 0), time.Unix(0, 999_999_999), time.Unix(-1, 0),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 6, 7, 8, 9, 1_000_000, time.FixedZone("x", 5*3600))}
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(1<<38)-1<<37, r.Int64N(1e9)))
	}
	for _, tm := range times {
		if got, want := isoTimestamp(tm), tm.UTC().Format("2006-01-02T15:04:05.000Z"); got != want {
			t.Fatalf("isoTimestamp(%v) = %q, want %q", tm, got, want)
		}
	}
}
