package compiler_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/hogwire/hogwire/hogvm/refvm"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/compiler"
)

var update = flag.Bool("update", false, "rewrite testdata/programs/*.stdout from the reference VM")

// refVMBugs lists test programs whose expected output the reference VM
// (npm @posthog/hogvm 1.0.71) does not produce because of a bug in it; the
// expected output was written by hand.
var refVMBugs = map[string]string{}

// refVM locates node and the reference HogVM installed by
// testdata/refvm/install.sh, or skips the test.
func refVM(t *testing.T) (node, dir string) {
	t.Helper()
	node, dir, err := refvm.Find(refvm.VM)
	if err != nil {
		t.Skip(err)
	}
	return node, dir
}

type refRun struct {
	name    string
	prog    any    // compiled program (marshalled to JSON)
	globals any    // optional globals
	stdout  string // what the VM printed
	result  string // the program's result, printed as Hog prints values
	err     string // a VM error
}

// runRef runs all programs in one node process.
func runRef(t *testing.T, runs []*refRun) {
	t.Helper()
	node, dir := refVM(t)
	tmp := t.TempDir()
	var files []string
	for i, r := range runs {
		f := filepath.Join(tmp, strings.ReplaceAll(r.name, "/", "_")+"."+string(rune('a'+i%26))+".json")
		data, err := json.Marshal(r.prog)
		if err != nil {
			t.Fatalf("%s: marshal: %v", r.name, err)
		}
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if r.globals != nil {
			g, err := json.Marshal(r.globals)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f+".globals", g, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		files = append(files, f)
	}
	cmd := exec.Command(node, append([]string{filepath.Join("testdata", "refvm", "run.js")}, files...)...)
	cmd.Env = append(os.Environ(), "HOGWIRE_REFVM_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference VM runner failed: %v\n%s", err, out)
	}
	for i, r := range runs {
		read := func(ext string) string {
			b, err := os.ReadFile(files[i] + ext)
			if err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			return string(b)
		}
		r.stdout, r.result, r.err = read(".out"), read(".result"), read(".err")
	}
}

// TestReferenceVM compiles every test program (PostHog's and ours), runs
// the bytecode on PostHog's reference VM and compares what it prints with
// the expected .stdout, byte for byte.
func TestReferenceVM(t *testing.T) {
	refVM(t)
	var files []string
	for _, pattern := range []string{"testdata/posthog/*.hog", "testdata/programs/*.hog"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	var runs []*refRun
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := compiler.Compile(string(src), compiler.Options{})
		if err != nil {
			t.Errorf("%s: compile: %v", f, err)
			continue
		}
		runs = append(runs, &refRun{name: f, prog: prog})
	}
	runRef(t, runs)
	for _, r := range runs {
		want := strings.TrimSuffix(r.name, ".hog") + ".stdout"
		// Where hogwire deliberately differs from PostHog (docs/hog.md),
		// NAME.posthog.stdout is what PostHog's VM prints.
		if f := strings.TrimSuffix(r.name, ".hog") + ".posthog.stdout"; fileExists(f) {
			want = f
		}
		if reason, ok := refVMBugs[r.name]; ok {
			t.Logf("%s: not compared, reference VM bug: %s", r.name, reason)
			continue
		}
		if *update && strings.HasPrefix(r.name, "testdata/programs/") {
			if err := os.WriteFile(want, []byte(r.stdout), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		expected, err := os.ReadFile(want)
		if err != nil {
			t.Errorf("%s: %v", r.name, err)
			continue
		}
		if !bytes.Equal([]byte(r.stdout), expected) {
			t.Errorf("%s: output differs from %s\n--- got ---\n%s--- want ---\n%s--- VM error ---\n%s",
				r.name, want, r.stdout, expected, r.err)
		}
	}
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
