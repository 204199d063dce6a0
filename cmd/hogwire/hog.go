package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// runHog is `hogwire hog run|compile|repl`.
func runHog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"hog: want run, compile or repl"}
	}
	switch args[0] {
	case "run":
		return hogRun(ctx, args[1:], stdout, stderr)
	case "compile":
		return hogCompile(args[1:], stdout, stderr)
	case "repl":
		return hogRepl(ctx, os.Stdin, stdout, stderr)
	}
	return usageError{fmt.Sprintf("hog: unknown command %q (want run, compile or repl)", args[0])}
}

// loadProgram reads FILE.hog (compiling it) or FILE.hoge (bytecode JSON).
func loadProgram(path string) (*bytecode.Program, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(filepath.Ext(path), ".hoge") {
		p, err := bytecode.Decode(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return p, nil
	}
	p, err := compiler.Compile(string(src), compiler.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func hogRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hog run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repeat := fs.Int("repeat", 1, "run the program N times in one process, printing the first run's output, and write ms_per_run=X to stderr")
	globalsFile := fs.String("globals", "", "JSON file whose object becomes the program's globals")
	timeout := fs.Duration("timeout", 5*time.Second, "wall-time limit of one run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *repeat < 1 {
		return usageError{"usage: hogwire hog run [--repeat N] [--globals FILE.json] FILE.hog|FILE.hoge"}
	}
	p, err := loadProgram(fs.Arg(0))
	if err != nil {
		return err
	}
	prog, err := vm.Link(p, stl.Library())
	if err != nil {
		return err
	}
	globals := vm.Null
	if *globalsFile != "" {
		b, err := os.ReadFile(*globalsFile)
		if err != nil {
			return err
		}
		if globals, err = vm.ParseJSON(b); err != nil {
			return fmt.Errorf("%s: %w", *globalsFile, err)
		}
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	printing := true
	m := vm.New(vm.Options{Timeout: *timeout, Print: func(line string) {
		if printing {
			out.WriteString(line)
			out.WriteByte('\n')
		}
	}})
	noAsync := func(_ context.Context, name string, _ []vm.Value) (vm.Value, error) {
		return vm.Null, fmt.Errorf("%s() is not available in `hogwire hog run`", name)
	}
	start := time.Now()
	for i := range *repeat {
		printing = i == 0
		if _, err := m.RunAsync(ctx, prog, globals, noAsync); err != nil {
			out.Flush()
			return err
		}
	}
	if *repeat > 1 {
		ms := float64(time.Since(start).Microseconds()) / 1000 / float64(*repeat)
		fmt.Fprintf(stderr, "ms_per_run=%.4f\n", ms)
	}
	return nil
}

func hogCompile(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hog compile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	outFile := fs.String("o", "", "write the bytecode to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"usage: hogwire hog compile [-o FILE.hoge] FILE.hog"}
	}
	p, err := loadProgram(fs.Arg(0))
	if err != nil {
		return err
	}
	b := bytecode.Format(p)
	if *outFile != "" {
		return os.WriteFile(*outFile, b, 0o644)
	}
	_, err = stdout.Write(b)
	return err
}

// hogRepl reads statements line by line and runs each with the variables
// of the lines before it: every accepted line is kept and the whole
// program re-run with output shown only for the new line.
func hogRepl(ctx context.Context, in io.Reader, stdout, stderr io.Writer) error {
	var program []string
	sc := bufio.NewScanner(in)
	fmt.Fprint(stdout, "hog> ")
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			fmt.Fprint(stdout, "hog> ")
			continue
		}
		src := strings.Join(append(program, line), "\n")
		p, err := compiler.Compile(src, compiler.Options{})
		if err != nil {
			// An expression on its own: show its value.
			if p2, err2 := compiler.Compile(strings.Join(append(program, "return "+line), "\n"), compiler.Options{}); err2 == nil {
				p, err = p2, nil
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			fmt.Fprint(stdout, "hog> ")
			continue
		}
		prog, err := vm.Link(p, stl.Library())
		if err != nil {
			fmt.Fprintln(stderr, err)
			fmt.Fprint(stdout, "hog> ")
			continue
		}
		var lines []string
		m := vm.New(vm.Options{Print: func(l string) { lines = append(lines, l) }})
		res, err := m.RunAsync(ctx, prog, vm.Null, func(context.Context, string, []vm.Value) (vm.Value, error) {
			return vm.Null, errors.New("async functions are not available in the REPL")
		})
		if err != nil {
			fmt.Fprintln(stderr, err)
			fmt.Fprint(stdout, "hog> ")
			continue
		}
		// Output of earlier lines was shown already.
		for _, l := range lines[min(len(lines), printed(ctx, program)):] {
			fmt.Fprintln(stdout, l)
		}
		if !strings.HasPrefix(strings.TrimSpace(line), "let ") && !res.Value.IsNull() {
			b, _ := json.Marshal(res.Value.ToGo())
			fmt.Fprintln(stdout, string(b))
		} else {
			program = append(program, line)
		}
		fmt.Fprint(stdout, "hog> ")
	}
	fmt.Fprintln(stdout)
	return sc.Err()
}

// printed counts the lines the kept program prints, to show only new ones.
func printed(ctx context.Context, program []string) int {
	if len(program) == 0 {
		return 0
	}
	p, err := compiler.Compile(strings.Join(program, "\n"), compiler.Options{})
	if err != nil {
		return 0
	}
	prog, err := vm.Link(p, stl.Library())
	if err != nil {
		return 0
	}
	n := 0
	m := vm.New(vm.Options{Print: func(string) { n++ }})
	_, _ = m.RunAsync(ctx, prog, vm.Null, func(context.Context, string, []vm.Value) (vm.Value, error) { return vm.Null, nil })
	return n
}
