package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/hogwire -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./cmd/hogwire -run Golden -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// runCLI runs a command line with a clean environment and returns what it
// printed and its exit status.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	home := t.TempDir()
	a := &app{getenv: func(k string) string {
		return map[string]string{"HOME": home}[k]
	}, stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	err := a.run(context.Background(), args)
	return strings.ReplaceAll(out.String(), home, "$HOME"), strings.ReplaceAll(errb.String(), home, "$HOME"), exitCode(err)
}

// Every command's --help exits 0 and prints what testdata/help holds.
func TestGoldenHelp(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(path[:len(path):len(path)], sub.Name()))
		}
	}
	walk(newApp(nil, nil).rootCommand(), nil)
	if len(paths) < 40 {
		t.Fatalf("found %d commands", len(paths))
	}
	for _, p := range paths {
		name := strings.Join(append([]string{"hogwire"}, p...), "_")
		for _, h := range []string{"--help", "-h"} {
			stdout, stderr, code := runCLI(t, append(p, h)...)
			if code != 0 || stderr != "" {
				t.Errorf("%s %s: exit %d, stderr %q", name, h, code, stderr)
			}
			if h == "--help" {
				golden(t, filepath.Join("help", name+".txt"), stdout)
			}
		}
	}
}

// Each command's usage errors exit 2 and say what is wrong; a server that
// cannot be reached is an error (exit 1) with a hint.
func TestGoldenErrors(t *testing.T) {
	unreachable := []string{"--server", "127.0.0.1:1", "--token", "hwa_x", "--timeout", "2s"}
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"unknown_command", []string{"frobnicate"}, 2},
		{"unknown_subcommand", []string{"destinations", "frob"}, 2},
		{"unknown_flag", []string{"projects", "list", "--frob"}, 2},
		{"bad_output", []string{"projects", "list", "-o", "xml"}, 2},
		{"projects_get_no_arg", []string{"projects", "get"}, 2},
		{"projects_get_two_args", []string{"projects", "get", "a", "b"}, 2},
		{"projects_update_nothing", []string{"projects", "update", "shop"}, 2},
		{"destinations_create_no_project", []string{"destinations", "create", "--template", "webhook"}, 2},
		{"destinations_create_nothing_to_run", []string{"destinations", "create", "--project", "shop"}, 2},
		{"destinations_create_bad_input", []string{"destinations", "create", "--project", "shop", "--template", "webhook", "--input", "novalue"}, 2},
		{"destinations_create_bad_schema", []string{"destinations", "create", "--project", "shop", "--hog-file", "x.hog", "--input-schema", "url:text"}, 2},
		{"destinations_update_nothing", []string{"destinations", "update", "hook"}, 2},
		{"destinations_list_bad_health", []string{"destinations", "list", "--health", "sick"}, 2},
		{"destinations_test_missing_event_file", []string{"destinations", "test", "hook", "--event", "/nonexistent/e.yaml"}, 1},
		{"logs_bad_level", []string{"logs", "hook", "--level", "loud"}, 2},
		{"metrics_bad_since", []string{"metrics", "hook", "--since", "-1h"}, 2},
		{"metrics_all_and_metric", []string{"metrics", "hook", "--all", "--metric", "failed"}, 2},
		{"events_send_no_token", []string{"events", "send", "--event", "e", "--distinct-id", "u"}, 2},
		{"hog_run_no_file", []string{"hog", "run"}, 2},
		{"hog_run_missing_file", []string{"hog", "run", "/nonexistent/p.hog"}, 1},
		{"config_use_missing_context", []string{"config", "use-context", "prod"}, 2},
		{"controlplane_no_token", []string{"controlplane"}, 2},
		{"dev_bad_log_level", []string{"dev", "--log-level", "loud"}, 2},
		{"version_args", []string{"version", "now"}, 2},
		{"projects_list_unreachable", append([]string{"projects", "list"}, unreachable...), 1},
		{"nodes_list_no_token", []string{"nodes", "list", "--data-dir", "/nonexistent"}, 2},
	}
	var all strings.Builder
	for _, tc := range cases {
		stdout, stderr, code := runCLI(t, tc.args...)
		if code != tc.code {
			t.Errorf("%s: hogwire %s: exit %d, want %d\n%s", tc.name, strings.Join(tc.args, " "), code, tc.code, stderr)
		}
		fmt.Fprintf(&all, "$ hogwire %s\n%s%s[exit %d]\n\n", strings.Join(tc.args, " "), stdout, stderr, code)
	}
	golden(t, "errors.txt", all.String())
}
