// Package docs holds hogwire's documentation; its test runs the shell
// blocks of the README and of these pages, as Go runs a package's examples.
package docs_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
)

// block is one ```sh block of a page.
type block struct {
	file string
	line int
	text string
	skip string // why it is not run; "" runs it
	// indent is the fence's, which the block's lines share.
	indent string
}

// shellBlocks returns the ```sh blocks of a Markdown file. A block whose
// previous line is "<!-- docs-test: skip (reason) -->" is not run.
func shellBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []block
	var cur *block
	prev := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```sh":
			cur = &block{file: filepath.Base(path), line: n, indent: line[:len(line)-len(strings.TrimLeft(line, " "))]}
			if r, ok := strings.CutPrefix(prev, "<!-- docs-test: skip"); ok {
				cur.skip = strings.TrimSpace(strings.TrimSuffix(r, "-->"))
			}
		case cur != nil && trimmed == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += strings.TrimPrefix(line, cur.indent) + "\n"
		}
		if trimmed != "" {
			prev = trimmed
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestShellBlocks runs the README's tour and then the docs' shell blocks,
// in order, verbatim, with bash in a copy of the repository's layout,
// against a real `hogwire dev` whose data directory is ./.hogwire there,
// as a user's would be. The only thing set for them is HOGWIRE_SERVER,
// since the test's server listens on a free port, not on 127.0.0.1:7070.
func TestShellBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the tour; skipped with -short")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []block
	blocks = append(blocks, shellBlocks(t, filepath.Join(root, "README.md"))...)
	pages, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	slices.SortStableFunc(pages, func(a, b string) int {
		// The tour continues the README's; the other pages after it.
		return boolInt(!strings.HasSuffix(a, "tour.md")) - boolInt(!strings.HasSuffix(b, "tour.md"))
	})
	for _, p := range pages {
		blocks = append(blocks, shellBlocks(t, p)...)
	}

	// The blocks run where a user would run them, the root of a clone,
	// which here is a directory of links to the repository's entries, so
	// that what they write stays out of the repository.
	work := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n == ".git" || n == ".hogwire" || n == "hogwire" {
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(work, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Config{
		DataDir: filepath.Join(work, ".hogwire"), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), EventLog: eventlog.Config{Memory: true},
		Persons: true, // as `hogwire dev`
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st.Close(ctx)
	})

	env := []string{"HOGWIRE_SERVER=" + st.GRPCAddr, "HOME=" + work, "XDG_CONFIG_HOME=" + filepath.Join(work, ".config")}
	for _, kv := range os.Environ() {
		// Nothing of the caller's hogwire set-up leaks in.
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "HOGWIRE_") && k != "HOME" && k != "XDG_CONFIG_HOME" {
			env = append(env, kv)
		}
	}
	if os.Getenv("GOCACHE") == "" {
		if c, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
			env = append(env, "GOCACHE="+strings.TrimSpace(string(c)))
		}
	}
	if os.Getenv("GOMODCACHE") == "" {
		if c, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			env = append(env, "GOMODCACHE="+strings.TrimSpace(string(c)))
		}
	}
	ran := 0
	for _, b := range blocks {
		where := fmt.Sprintf("%s:%d", b.file, b.line)
		if b.skip != "" {
			t.Logf("%s: not run: %s", where, b.skip)
			continue
		}
		bctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(bctx, bash, "-euo", "pipefail", "-c", b.text)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s failed: %v\n--- block\n%s--- output\n%s", where, err, b.text, out)
		}
		t.Logf("%s ran:\n%s", where, out)
		ran++
	}
	if ran < 2 {
		t.Fatalf("ran %d blocks; the README's tour and docs/tour.md should be among them", ran)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
