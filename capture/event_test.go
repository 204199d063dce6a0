package capture

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestParseTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	cases := []struct {
		in   *structpb.Value
		want time.Time
		ok   bool
	}{
		{structpb.NewStringValue("2026-11-20T08:30:00Z"), utc(2026, 11, 20, 8, 30, 0, 0), true},
		{structpb.NewStringValue("2026-11-20T08:30:00.123456789Z"), utc(2026, 11, 20, 8, 30, 0, 123456789), true},
		{structpb.NewStringValue("2026-11-20T08:30:00.5-05:00"), utc(2026, 11, 20, 13, 30, 0, 5e8), true},
		{structpb.NewStringValue("2026-11-20T08:30:00.5+0100"), utc(2026, 11, 20, 7, 30, 0, 5e8), true},
		{structpb.NewStringValue("2026-11-20T08:30:00-05"), utc(2026, 11, 20, 13, 30, 0, 0), true},
		{structpb.NewStringValue("2026-11-20T08:30:00"), utc(2026, 11, 20, 8, 30, 0, 0), true},
		{structpb.NewStringValue("2026-11-20 08:30:00.25"), utc(2026, 11, 20, 8, 30, 0, 25e7), true},
		{structpb.NewStringValue("2026-11-20 08:30:00+00:00"), utc(2026, 11, 20, 8, 30, 0, 0), true},
		{structpb.NewStringValue("2026-11-20"), utc(2026, 11, 20, 0, 0, 0, 0), true},
		{structpb.NewStringValue("Fri, 20 Nov 2026 08:30:00 +0200"), utc(2026, 11, 20, 6, 30, 0, 0), true},
		{structpb.NewStringValue("1795163400"), utc(2026, 11, 20, 8, 30, 0, 0), true},
		{structpb.NewStringValue("1795163400000"), utc(2026, 11, 20, 8, 30, 0, 0), true},
		{structpb.NewNumberValue(1795163400123), utc(2026, 11, 20, 8, 30, 0, 123e6), true},
		{structpb.NewNumberValue(1795163400.5), utc(2026, 11, 20, 8, 30, 0, 5e8), true},
		{structpb.NewStringValue(""), time.Time{}, false},
		{structpb.NewStringValue("soon"), time.Time{}, false},
		{structpb.NewNumberValue(-5), time.Time{}, false},
		{structpb.NewBoolValue(true), time.Time{}, false},
		{nil, time.Time{}, false},
	}
	for _, tc := range cases {
		got, ok := parseTime(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseTime(%#v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLooksBase64(t *testing.T) {
	for in, want := range map[string]bool{
		`{"a":1}`:       false,
		` [1]`:          false,
		"eyJhIjoxfQ==":  true,
		"eyJh Ijox+/_-": true,
		"data=abc":      false,
		"":              false,
		"\x1f\x8b\x08":  false,
	} {
		if got := looksBase64([]byte(in)); got != want {
			t.Errorf("looksBase64(%q) = %v", in, got)
		}
	}
}

// uuidGen's uuids are UUIDv7s in uuid.UUID.String's form, carrying the
// clock's milliseconds, and increase through a request across blocks,
// also when the clock stands still or goes back.
func TestUUIDGenMakesIncreasingV7s(t *testing.T) {
	at := time.UnixMilli(1796000000123).Add(456 * time.Microsecond)
	const n = 3*uuidBlock + 5
	g := &uuidGen{left: n, now: func() time.Time { return at }}
	prev := ""
	for i := range n {
		if i == 2*uuidBlock {
			at = at.Add(-time.Second)
		}
		id, err := g.next()
		if err != nil {
			t.Fatal(err)
		}
		g.left--
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 || u.String() != id {
			t.Fatalf("uuid %d %q is not a canonical UUIDv7 (%v)", i, id, err)
		}
		if id <= prev {
			t.Fatalf("uuid %d %q does not follow %q", i, id, prev)
		}
		prev = id
		if sec, nsec := u.Time().UnixTime(); i == 0 && time.Unix(sec, nsec).UnixMilli() != 1796000000123 {
			t.Errorf("first uuid's time %v, want the clock's millisecond", time.Unix(sec, nsec))
		}
	}
	if len(g.unused) != 0 {
		t.Errorf("%d uuids made beyond the events", len(g.unused)/36)
	}
}
