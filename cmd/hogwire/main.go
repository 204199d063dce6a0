// Command hogwire is the whole product in one binary: `hogwire dev` runs
// everything in one process; `controlplane` and `dataplane` run the two
// roles of a production deployment; the other commands are tools.
//
// The command line follows the conventions of kubectl, helm and gh (it is
// built on cobra like them): --help on every command, shell completion,
// exit status 0 on success, 1 on an error and 2 on a usage error, and
// -o table|json|yaml on every command that reads.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}

// app is what a command reads and writes besides its arguments, so that
// tests can supply it.
type app struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{getenv: os.Getenv, stdin: os.Stdin, stdout: stdout, stderr: stderr}
}

// run runs the command line args and prints a failure to stderr; the
// error it returns decides the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return newApp(stdout, stderr).run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) error {
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	if isCobraUsageError(err) {
		err = usageError{err.Error()}
	}
	fmt.Fprintln(a.stderr, "Error:", err)
	var ue usageError
	if errors.As(err, &ue) && cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return err
}

// exitCode is 0 for success, 2 for usage errors and 1 for everything else.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError is a command line that cannot be run as given: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// isCobraUsageError recognizes the errors cobra itself returns for a bad
// command line (it has no error types for them).
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command ", "unknown flag: ", "unknown shorthand flag: ", "flag needs an argument: ",
		"invalid argument ", "required flag(s) ", "if any flags in the group ", "accepts ", "requires at least ", "requires at most ",
		"bad flag syntax: ", "invalid value "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

const rootLong = `hogwire runs PostHog-compatible realtime destinations: events arrive from
PostHog SDKs or over gRPC, and for every destination whose filters match, its
Hog code runs and delivers the data to another tool.

Start everything in one process with 'hogwire dev'; the other commands talk
to its API. They find the server with --server or HOGWIRE_SERVER (default
127.0.0.1:7070, where 'hogwire dev' listens) or the current context of
~/.config/hogwire/config.yaml (see 'hogwire config --help'), and the admin
token with --token, HOGWIRE_TOKEN, or the file 'hogwire dev' writes into
its data directory (.hogwire/admin.token).`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "hogwire",
		Short:         "Realtime destinations for product-analytics events",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
		// A bare "hogwire" shows the help, as kubectl and helm do.
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.CompletionOptions.HiddenDefaultCmd = false
	root.AddGroup(
		&cobra.Group{ID: "run", Title: "Running hogwire:"},
		&cobra.Group{ID: "admin", Title: "Managing destinations:"},
		&cobra.Group{ID: "tools", Title: "Tools:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("run", a.devCommand(), a.controlPlaneCommand(), a.dataPlaneCommand())
	add("admin", a.projectsCommand(), a.destinationsCommand(), a.webhooksCommand(), a.templatesCommand(), a.nodesCommand(),
		a.logsCommand(), a.metricsCommand(), a.eventsCommand(), a.personsCommand(), a.invocationsCommand())
	add("tools", a.hogCommand(), a.configCommand(), a.versionCommand())
	root.SetHelpCommandGroupID("tools")
	root.SetCompletionCommandGroupID("tools")
	return root
}

// groupCommand is a command that only holds subcommands: alone it shows
// its help; with an unknown subcommand it is a usage error.
func groupCommand(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use: use, Short: short, Long: long,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	c.AddCommand(subs...)
	return c
}

// noArgs, exactArgs and rangeArgs check positional arguments with usage
// errors.
func noArgs(cmd *cobra.Command, args []string) error { return rangeArgs(0, 0)(cmd, args) }

func exactArgs(n int) cobra.PositionalArgs { return rangeArgs(n, n) }

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) > hi && hi == 0:
			if cmd.HasSubCommands() {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
		case len(args) > hi:
			return usagef("%s: unexpected arguments %q", cmd.CommandPath(), args[hi:])
		case len(args) < lo && lo == hi:
			return usagef("%s expects %d argument(s) (%s), got %d", cmd.CommandPath(), lo, argNames(cmd), len(args))
		case len(args) < lo:
			return usagef("%s expects at least %d argument(s) (%s), got %d", cmd.CommandPath(), lo, argNames(cmd), len(args))
		}
		return nil
	}
}

// argNames is the part of Use after the command's name, e.g. "DESTINATION".
func argNames(cmd *cobra.Command) string {
	_, rest, _ := strings.Cut(cmd.Use, " ")
	return strings.TrimSpace(strings.ReplaceAll(rest, "[flags]", ""))
}

// envName is the environment variable of a flag: HOGWIRE_<FLAG>, dashes
// as underscores.
func envName(flag string) string {
	return "HOGWIRE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv fills each named flag (every flag when names is nil) not given
// on the command line from HOGWIRE_<FLAG>, so that containers can be
// configured by environment.
func applyEnv(fs *pflag.FlagSet, getenv func(string) string, names []string) error {
	var errs []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || (names != nil && !slices.Contains(names, f.Name)) || f.Name == "help" {
			return
		}
		env := envName(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", env, err))
			}
		}
	})
	if len(errs) > 0 {
		return usageError{strings.Join(errs, "; ")}
	}
	return nil
}
