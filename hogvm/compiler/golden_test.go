package compiler_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/compiler"
)

// divergent lists PostHog test programs whose bytecode we deliberately do
// not reproduce element for element, with the reason. Their behaviour is
// still checked against the reference VM (refvm_test.go).
var divergent = map[string]string{}

// TestPostHogGolden compiles PostHog's own test programs and compares the
// result with PostHog's compiled snapshots (.hoge), byte for byte.
func TestPostHogGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/posthog/*.hog")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test programs: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hog")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".hog") + ".hoge")
			if err != nil {
				t.Fatal(err)
			}
			prog, err := compiler.Compile(string(src), compiler.Options{})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got := bytecode.Format(prog)
			if bytes.Equal(got, want) {
				return
			}
			if reason, ok := divergent[name]; ok {
				t.Skipf("bytecode differs by design: %s", reason)
			}
			t.Errorf("bytecode differs from PostHog's snapshot\n got: %s\nwant: %s\nfirst difference at byte %d", got, want, firstDiff(got, want))
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
