// Command hogwire is the whole product in one binary: `hogwire dev` runs
// everything in one process; `controlplane` and `dataplane` run the two
// roles of a production deployment; the other commands are tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"dev", "run everything in one process on embedded etcd and NATS", runDev},
		{"controlplane", "run a control-plane replica against external etcd and NATS", runControlPlane},
		{"dataplane", "run a data-plane node", runDataPlane},
		{"projects", "manage projects: create, list, get, update, delete, rotate-token", runProjects},
		{"destinations", "manage destinations: create, list, get, update, delete, enable, disable", runDestinations},
		{"templates", "list destination templates and show one", runTemplates},
		{"nodes", "list data-plane nodes", runNodes},
		{"logs", "print or follow a destination's log entries: logs ID [--follow] [--level warn]", runLogs},
		{"metrics", "print a destination's or project's metrics as a table and sparklines: metrics ID [--since 1h]", runMetrics},
		{"hog", "run or compile Hog: hog run FILE.hog|FILE.hoge, hog compile FILE.hog, hog repl", runHog},
		{"events", "send events: events send", runEvents},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "hogwire", version)
			return nil
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hogwire:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for usage errors and 1 for everything else.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return usageError{"no command given"}
		}
		return nil
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr, cmds)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func usage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "Usage: hogwire <command> [flags]\n\nCommands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'hogwire <command> -h' for a command's flags. Flags of dev, controlplane\nand dataplane can also be set as HOGWIRE_<FLAG>, e.g. HOGWIRE_NATS_URL.")
}

// parseFlags parses args, then fills every flag not given on the command
// line from the environment variable HOGWIRE_<NAME> (dashes become
// underscores), so that container deployments can configure by env.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected arguments %q", fs.Name(), fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []string
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := "HOGWIRE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", env, err))
			}
		}
	})
	if len(errs) > 0 {
		sort.Strings(errs)
		return usageError{strings.Join(errs, "; ")}
	}
	return nil
}
