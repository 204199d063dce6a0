package capture

import (
	"bytes"
	"testing"
	"testing/iotest"
)

// A body's announced size stops the buffer's growth there: a one-event
// request does not take a buffer of firstRead, nor a batch one of twice
// its size. A size announced wrong, smaller or larger, still reads the
// whole body, and a larger one reserves no more than the body needs.
func TestReadLimitedHint(t *testing.T) {
	small := bytes.Repeat([]byte("e"), 500)
	large := bytes.Repeat([]byte("b"), 3*firstRead+123)
	for _, tc := range []struct {
		name    string
		body    []byte
		hint    int64
		wantCap int
	}{
		{"small, announced", small, int64(len(small)), len(small) + 1},
		{"small, unannounced", small, -1, firstRead},
		{"large, announced", large, int64(len(large)), len(large) + 1},
		{"large, unannounced", large, -1, 4 * firstRead},
		{"announced too small", large, 10, 4 * firstRead},
		{"announced too large", small, 1 << 30, firstRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := (&memory{max: 1 << 30}).lease()
			// Short reads, as a network gives them.
			buf, err := readLimited(iotest.HalfReader(bytes.NewReader(tc.body)), 1<<20, tc.hint, mem, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, tc.body) {
				t.Fatalf("read %d bytes, want the body's %d", len(buf), len(tc.body))
			}
			if cap(buf) != tc.wantCap {
				t.Errorf("buffer of %d bytes, want %d", cap(buf), tc.wantCap)
			}
			if mem.held != int64(cap(buf)) {
				t.Errorf("%d bytes reserved for a buffer of %d", mem.held, cap(buf))
			}
		})
	}
}
