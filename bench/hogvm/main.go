// Command hogvm runs the same Hog bytecode files on hogwire's VM and on
// PostHog's reference VM (npm @posthog/hogvm, run with node) in one run and
// prints the time per run of each and their ratio.
//
//	hogvm/compiler/testdata/refvm/install.sh   # once: installs @posthog/hogvm
//	go run ./bench/hogvm                        # conformance programs + bench/hogvm/programs
//	go run ./bench/hogvm -runs 200 FILE.hoge FILE.hog …
//
// .hog files are compiled with hogwire's compiler first; both VMs run the
// same bytecode. Output goes nowhere on both sides (print is discarded).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/refvm"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

func main() {
	runs := flag.Int("runs", 0, "runs per file (0: enough for about 0.3 s on our VM, at least 20)")
	flag.Parse()
	if err := run(*runs, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "bench/hogvm:", err)
		os.Exit(1)
	}
}

func run(runs int, files []string) error {
	if len(files) == 0 {
		for _, g := range []string{"hogvm/vm/testdata/conformance/*.hoge", "bench/hogvm/programs/*.hog"} {
			m, _ := filepath.Glob(g)
			files = append(files, m...)
		}
	}
	if len(files) == 0 {
		return fmt.Errorf("no programs: run from the repository root or name files")
	}
	node, dir, err := refvm.Find(refvm.VM)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "hogvm-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	type row struct {
		name       string
		runs       int
		ours, refs float64 // ns per run
	}
	var rows []row
	for _, f := range files {
		p, err := load(f)
		if err != nil {
			return err
		}
		prog, err := vm.Link(p, stl.Library())
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		m := vm.New(vm.Options{Timeout: time.Minute})
		once := func() {
			_, _ = m.RunAsync(context.Background(), prog, vm.Null, func(context.Context, string, []vm.Value) (vm.Value, error) {
				return vm.Null, nil
			})
		}
		n := runs
		if n <= 0 {
			start := time.Now()
			once()
			per := max(time.Since(start), time.Microsecond)
			n = max(20, int(300*time.Millisecond/per))
		}
		for range max(1, n/10) {
			once()
		}
		start := time.Now()
		for range n {
			once()
		}
		ours := float64(time.Since(start).Nanoseconds()) / float64(n)
		jf := filepath.Join(tmp, strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))+".json")
		b, _ := json.Marshal(p)
		if err := os.WriteFile(jf, b, 0o644); err != nil {
			return err
		}
		// Node is much slower: fewer runs keep the whole bench short while
		// still running long enough to be warmed up.
		refRuns := max(5, n/20)
		refs, err := timeRef(node, dir, refRuns, jf)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		rows = append(rows, row{filepath.Base(f), n, ours, refs})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].refs/rows[i].ours < rows[j].refs/rows[j].ours })
	fmt.Printf("%-28s %12s %14s %9s\n", "program", "hogwire", "@posthog/hogvm", "speed-up")
	logSum := 0.0
	for _, r := range rows {
		ratio := r.refs / r.ours
		logSum += math.Log(ratio)
		fmt.Printf("%-28s %12s %14s %8.1fx\n", r.name, dur(r.ours), dur(r.refs), ratio)
	}
	fmt.Printf("\nslowest speed-up %.1fx (%s); geometric mean %.1fx over %d programs\n",
		rows[0].refs/rows[0].ours, rows[0].name, math.Exp(logSum/float64(len(rows))), len(rows))
	return nil
}

func load(f string) (*bytecode.Program, error) {
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(f, ".hoge") {
		return bytecode.Decode(b)
	}
	p, err := compiler.Compile(string(b), compiler.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	return p, nil
}

func timeRef(node, dir string, runs int, file string) (float64, error) {
	cmd := exec.Command(node, "bench/hogvm/ref.js", strconv.Itoa(runs), file)
	cmd.Env = append(os.Environ(), "HOGWIRE_REFVM_DIR="+dir)
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("node: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 {
			return strconv.ParseFloat(f[0], 64)
		}
	}
	return 0, fmt.Errorf("no timing from node: %q", out)
}

func dur(ns float64) string {
	return time.Duration(ns).Round(time.Duration(math.Max(1, math.Pow(10, math.Floor(math.Log10(ns))-2)))).String()
}
