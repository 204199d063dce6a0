package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestHogRunAndCompile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "p.hog")
	if err := os.WriteFile(src, []byte("let x := 1\nfor (let i := 0; i < 3; i := i + 1) {\n  print(f'{i}: {x + i}')\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"hog", "run", src}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	if out.String() != "0: 1\n1: 2\n2: 3\n" {
		t.Errorf("run printed %q", out.String())
	}

	hoge := filepath.Join(dir, "p.hoge")
	if err := run(context.Background(), []string{"hog", "compile", "-o", hoge, src}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(hoge)
	if !strings.HasPrefix(string(b), `["_H", 1, `) {
		t.Errorf("compiled to %q", b)
	}
	out.Reset()
	errb.Reset()
	if err := run(context.Background(), []string{"hog", "run", "--repeat", "5", hoge}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if out.String() != "0: 1\n1: 2\n2: 3\n" {
		t.Errorf("--repeat printed %q, want the first run's output once", out.String())
	}
	if !regexp.MustCompile(`^ms_per_run=\d+(\.\d+)?\n$`).MatchString(errb.String()) {
		t.Errorf("stderr %q, want ms_per_run=X", errb.String())
	}

	bad := filepath.Join(dir, "bad.hog")
	os.WriteFile(bad, []byte("throw Error('boom')"), 0o644)
	err := run(context.Background(), []string{"hog", "run", bad}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "boom") || exitCode(err) != 1 {
		t.Errorf("a thrown error: %v (exit %d)", err, exitCode(err))
	}
}
