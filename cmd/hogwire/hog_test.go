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

// --kind compiles with that kind's globals and host functions; plain
// compile stays strict.
func TestHogCompileKind(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dest := write("dest.hog", "let res := fetch(inputs.url, {'body': event})\npostHogCapture({'event': 'sent', 'distinct_id': event.distinct_id})\nreturn res.status\n")
	filter := write("filter.hog", "event = '$pageview' and properties.plan = 'pro'")
	unknown := write("unknown.hog", "return [event.event, campaign.id]")
	compileOut := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"hog", "compile"}, args...), &out, &errb)
		return out.String(), errb.String(), err
	}

	if _, _, err := compileOut(dest); err == nil || !strings.Contains(err.Error(), "fetch") {
		t.Errorf("plain compile of destination code: %v, want an error about fetch", err)
	}
	out, stderr, err := compileOut("--kind", "destination", dest)
	if err != nil || !strings.HasPrefix(out, `["_H", 1, `) || stderr != "" {
		t.Errorf("--kind destination: %v, out %q, stderr %q", err, out, stderr)
	}
	if _, _, err := compileOut("--kind", "transformation", dest); err == nil || !strings.Contains(err.Error(), "fetch") {
		t.Errorf("--kind transformation with fetch: %v, want an error", err)
	}
	if out, _, err := compileOut("--kind", "filter", filter); err != nil || !strings.HasPrefix(out, `["_H", 1, `) {
		t.Errorf("--kind filter: %v, %q", err, out)
	}
	_, stderr, err = compileOut("--kind", "destination", unknown)
	if err != nil || !strings.Contains(stderr, "unknown.hog:1:") || !strings.Contains(stderr, "campaign") {
		t.Errorf("a global the kind lacks: %v, stderr %q, want a warning naming it", err, stderr)
	}
	if out, _, err := compileOut("--kind", "source_webhook", dest); err == nil || !strings.Contains(err.Error(), "fetch") {
		t.Errorf("--kind source_webhook compiled fetch: %v, %q", err, out)
	}
	if _, _, err := compileOut("--kind", "webhook", dest); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "destination, transformation, source_webhook, filter") {
		t.Errorf("an unknown kind: %v (exit %d), want a usage error listing the kinds", err, exitCode(err))
	}
}

// hog run prints the program's return value after its output, as Hog
// formats values; --no-result leaves it out.
func TestHogRunPrintsReturnValue(t *testing.T) {
	src := filepath.Join(t.TempDir(), "r.hog")
	os.WriteFile(src, []byte("print('hi')\nreturn {'a': [1, 'x', null], 'b': true}"), 0o644)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"hog", "run", src}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hi\n{'a': [1, 'x', null], 'b': true}\n" {
		t.Errorf("printed %q", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"hog", "run", "--no-result", src}, &out, &errb); err != nil || out.String() != "hi\n" {
		t.Errorf("--no-result: %v, printed %q", err, out.String())
	}
}
