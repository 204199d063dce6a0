package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/kind"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

func (a *app) hogCommand() *cobra.Command {
	return groupCommand("hog", "Run, compile or try Hog locally: hog run, hog compile, hog repl",
		"Runs, compiles or tries Hog, PostHog's language, on this machine: nothing talks to a server.",
		a.hogRun(), a.hogCompile(), a.hogRepl())
}

// loadProgram reads FILE.hog (compiling it) or FILE.hoge (bytecode JSON).
func loadProgram(path string) (*bytecode.Program, error) {
	return loadProgramAs(path, nil, nil)
}

// loadProgramAs is loadProgram compiling source as code of kind k (nil:
// plain Hog, no host functions); warn receives the compiler's warnings.
func loadProgramAs(path string, k *kind.Kind, warn func(compiler.Warning)) (*bytecode.Program, error) {
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
	var p *bytecode.Program
	if k != nil {
		p, err = k.Compile(string(src), warn)
	} else {
		p, err = compiler.Compile(string(src), compiler.Options{Warn: warn})
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func (a *app) hogRun() *cobra.Command {
	var repeat int
	var globalsFile string
	var timeout time.Duration
	var quiet bool
	cmd := &cobra.Command{
		Use:   "run FILE.hog|FILE.hoge",
		Short: "Run a Hog program and print its output and return value",
		Long: "Runs a Hog program (source, or bytecode from 'hog compile') and prints what it prints, then its\n" +
			"return value when it returns one (as Hog prints values: strings quoted). fetch() and other async\n" +
			"functions are not available.",
		Example: "  echo \"print('hello'); return 1 + 2\" > program.hog\n  hogwire hog run program.hog",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if repeat < 1 {
				return usagef("--repeat must be at least 1")
			}
			return runHogFile(cmd.Context(), a, args[0], globalsFile, timeout, repeat, !quiet)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&repeat, "repeat", 1, "run the program N times in one process, printing the first run's output, and write ms_per_run=X to stderr")
	fs.StringVar(&globalsFile, "globals", "", "JSON `file` whose object becomes the program's globals")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "wall-time limit of one run")
	fs.BoolVar(&quiet, "no-result", false, "do not print the return value")
	return cmd
}

func runHogFile(ctx context.Context, a *app, path, globalsFile string, timeout time.Duration, repeat int, printResult bool) error {
	p, err := loadProgram(path)
	if err != nil {
		return err
	}
	prog, err := vm.Link(p, stl.Library())
	if err != nil {
		return err
	}
	globals := vm.Null
	if globalsFile != "" {
		b, err := os.ReadFile(globalsFile)
		if err != nil {
			return err
		}
		if globals, err = vm.ParseJSON(b); err != nil {
			return fmt.Errorf("%s: %w", globalsFile, err)
		}
	}
	out := bufio.NewWriter(a.stdout)
	defer out.Flush()
	printing := true
	m := vm.New(vm.Options{Timeout: timeout, Print: func(line string) {
		if printing {
			out.WriteString(line)
			out.WriteByte('\n')
		}
	}})
	noAsync := func(_ context.Context, name string, _ []vm.Value) (vm.Value, error) {
		return vm.Null, fmt.Errorf("%s() is not available in `hogwire hog run`", name)
	}
	start := time.Now()
	var res vm.Result
	for i := range repeat {
		printing = i == 0
		if res, err = m.RunAsync(ctx, prog, globals, noAsync); err != nil {
			out.Flush()
			return err
		}
		if i == 0 && printResult && !res.Value.IsNull() {
			out.WriteString(vm.Format(res.Value))
			out.WriteByte('\n')
		}
	}
	if repeat > 1 {
		ms := float64(time.Since(start).Microseconds()) / 1000 / float64(repeat)
		fmt.Fprintf(a.stderr, "ms_per_run=%.4f\n", ms)
	}
	return nil
}

func (a *app) hogCompile() *cobra.Command {
	var outFile, kindName string
	cmd := &cobra.Command{
		Use:   "compile FILE.hog",
		Short: "Compile Hog to bytecode (PostHog's .hoge JSON)",
		Long: "Compiles Hog to bytecode. Plain Hog may call the standard library only; --kind compiles the code\n" +
			"of a destination (fetch, postHogCapture and the invocation globals), a transformation, a source webhook\n" +
			"(source_webhook) or a filter expression, and warns on stderr about globals that kind does not have.",
		Example: "  hogwire hog compile --kind destination templates/webhook/template.hog",
		Args:    exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var k *kind.Kind
			var warn func(compiler.Warning)
			if kindName != "" {
				kk, err := kind.Lookup(kindName)
				if err != nil {
					return usagef("--kind: %v", err)
				}
				k = &kk
				warn = func(w compiler.Warning) {
					fmt.Fprintf(a.stderr, "%s:%d:%d: warning: %s\n", args[0], w.Line, w.Column, w.Msg)
				}
			}
			p, err := loadProgramAs(args[0], k, warn)
			if err != nil {
				return err
			}
			b := bytecode.Format(p)
			if outFile != "" {
				return os.WriteFile(outFile, b, 0o644)
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}
	cmd.Flags().StringVarP(&outFile, "output", "o", "", "write the bytecode to this `file` instead of stdout")
	cmd.Flags().StringVar(&kindName, "kind", "", "compile as the code of a `kind`: destination, transformation or filter")
	return cmd
}

func (a *app) hogRepl() *cobra.Command {
	return &cobra.Command{
		Use:   "repl",
		Short: "Try Hog line by line",
		Long:  "Reads Hog statements line by line and runs each with the variables of the lines before; an expression on its own shows its value.",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return hogRepl(cmd.Context(), a.stdin, a.stdout, a.stderr)
		},
	}
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
