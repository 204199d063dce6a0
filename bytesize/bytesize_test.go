package bytesize_test

import (
	"testing"

	"github.com/hogwire/hogwire/bytesize"
)

func TestSetAndString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		str  string
	}{
		{"20MiB", 20 << 20, "20 MiB"},
		{"1MB", 1_000_000, "1.0 MB"},
		{"1048576", 1 << 20, "1.0 MiB"},
		{"512 KiB", 512 << 10, "512 KiB"},
	} {
		var b bytesize.Int64
		if err := b.Set(tc.in); err != nil {
			t.Fatalf("Set(%q): %v", tc.in, err)
		}
		if int64(b) != tc.want || b.String() != tc.str {
			t.Errorf("Set(%q) = %d %q, want %d %q", tc.in, b, b.String(), tc.want, tc.str)
		}
	}
	for _, bad := range []string{"", "0", "-1", "lots", "2PiB"} {
		var b bytesize.Int64
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted %d", bad, b)
		}
	}
	var i bytesize.Int
	if err := i.Set("3GiB"); err == nil {
		t.Errorf("Int took 3GiB: %d", i)
	}
	if err := i.Set("1KiB"); err != nil || i != 1024 {
		t.Errorf("Int 1KiB = %d, %v", i, err)
	}
	var zero bytesize.Int64
	if zero.String() != "0" {
		t.Errorf("zero prints %q", zero.String())
	}
}
