package capture_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/capture"
)

// Requests share no state: the per-request event slab, the intern table
// and the uuids' random blocks belong to one request. Two batches posted
// back to back, with the same keys and short values but different
// contents, must give events that are each their own batch's, and the
// first batch's events must be unchanged by the second.
func TestBatchesBackToBackAreIndependent(t *testing.T) {
	pub := &memPublisher{}
	h := capture.NewHandler(testConfig(pub))
	batch := func(tag string) []byte {
		var b strings.Builder
		b.WriteString(`{"api_key":"` + testToken + `","batch":[`)
		for i := range 300 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"event":"e-%s","distinct_id":"%s-%d","properties":{"k":"%s","n":%d,"l":["%s",%d]},"$set":{"who":"%s-%d"}}`,
				tag, tag, i, tag, i, tag, i, tag, i)
		}
		b.WriteString("]}")
		return []byte(b.String())
	}
	check := func(evs []*hogwirev1.Event, tag string) {
		t.Helper()
		if len(evs) != 300 {
			t.Fatalf("%s: %d events, want 300", tag, len(evs))
		}
		for i, ev := range evs {
			props := ev.GetProperties().AsMap()
			l, _ := props["l"].([]any)
			if ev.Event != "e-"+tag || ev.DistinctId != fmt.Sprintf("%s-%d", tag, i) || props["k"] != tag || props["n"] != float64(i) ||
				len(l) != 2 || l[0] != tag || l[1] != float64(i) || ev.GetSet().AsMap()["who"] != fmt.Sprintf("%s-%d", tag, i) {
				t.Fatalf("%s: event %d is %v", tag, i, ev)
			}
		}
	}
	if rec := do(t, h, req{target: "/batch/", contentType: "application/json", body: batch("a")}); rec.Code != http.StatusOK {
		t.Fatalf("first batch: %d %s", rec.Code, rec.Body)
	}
	first := pub.all()
	check(first, "a")
	snapshot := make([]*hogwirev1.Event, len(first))
	for i, ev := range first {
		snapshot[i] = proto.Clone(ev).(*hogwirev1.Event)
	}
	pub.reset()
	if rec := do(t, h, req{target: "/batch/", contentType: "application/json", body: batch("b")}); rec.Code != http.StatusOK {
		t.Fatalf("second batch: %d %s", rec.Code, rec.Body)
	}
	second := pub.all()
	check(second, "b")
	seen := map[string]bool{}
	for i, ev := range first {
		if !proto.Equal(ev, snapshot[i]) {
			t.Fatalf("event %d of the first batch changed after the second: %v, was %v", i, ev, snapshot[i])
		}
	}
	for _, ev := range append(first, second...) {
		id, err := uuid.Parse(ev.Uuid)
		if err != nil || id.Version() != 7 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("generated uuid %q is not a UUIDv7", ev.Uuid)
		}
		if seen[ev.Uuid] {
			t.Fatalf("uuid %s generated twice", ev.Uuid)
		}
		seen[ev.Uuid] = true
	}
}

// gzipWithDict is a gzip member whose deflate stream refers back into
// dict, which no gzip reader has: read fresh, it is corrupt.
func gzipWithDict(t *testing.T, dict, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	b.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	fw, err := flate.NewWriterDict(&b, flate.BestCompression, dict)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	b.Write(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(data)))
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(data))))
	return b.Bytes()
}

// Gzip readers are reused from request to request: one request's
// decompressed text must never be there for the next to read. A stream
// that refers back to the previous request's text (its deflate window,
// were it kept) is corrupt, as it is to a new handler, and the requests
// around it are each their own.
func TestGzipRequestsBackToBackAreIndependent(t *testing.T) {
	pub := &memPublisher{}
	h := capture.NewHandler(testConfig(pub))
	payload := func(tag string) []byte {
		return []byte(fmt.Sprintf(`{"api_key":%q,"batch":[{"event":"e-%s","distinct_id":"%s","properties":{"p":"%s"}}]}`,
			testToken, tag, tag, strings.Repeat(tag, 200)))
	}
	post := func(body []byte) int {
		return do(t, h, req{target: "/batch/?compression=gzip-js", contentType: "text/plain", body: body}).Code
	}
	a := payload("a")
	if code := post(gz(t, a)); code != http.StatusOK {
		t.Fatalf("first request: %d", code)
	}
	// The stream is sound to a reader that has the previous text.
	withDict := gzipWithDict(t, a, a)
	if got, err := io.ReadAll(flate.NewReaderDict(bytes.NewReader(withDict[10:len(withDict)-8]), a)); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("the stream read with its dictionary: %q, %v", got, err)
	}
	fresh := do(t, capture.NewHandler(testConfig(&memPublisher{})),
		req{target: "/batch/?compression=gzip-js", contentType: "text/plain", body: gzipWithDict(t, a, a)})
	if fresh.Code != http.StatusBadRequest {
		t.Fatalf("a stream referring to text before its start, to a new handler: %d %s", fresh.Code, fresh.Body)
	}
	if code := post(gzipWithDict(t, a, a)); code != fresh.Code {
		t.Fatalf("a stream referring to the previous request's text: %d, want %d as from a new handler", code, fresh.Code)
	}
	if code := post(gz(t, payload("b"))[:20]); code != http.StatusBadRequest {
		t.Fatalf("a truncated stream: %d", code)
	}
	if code := post(gz(t, payload("c"))); code != http.StatusOK {
		t.Fatalf("last request: %d", code)
	}
	evs := pub.all()
	if len(evs) != 2 || evs[0].Event != "e-a" || evs[1].Event != "e-c" ||
		evs[1].GetProperties().AsMap()["p"] != strings.Repeat("c", 200) {
		t.Fatalf("events %v", evs)
	}
}
