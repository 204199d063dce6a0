package capture_test

import (
	"fmt"
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
