package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/rpcclient"
)

// Defaults of the admin commands; they match what `hogwire dev` uses.
const (
	defaultServer  = "127.0.0.1:7070"
	defaultDataDir = ".hogwire"
	adminTokenName = "admin.token"
)

// adminEnv is what an admin command reads and writes besides its
// arguments, so that tests can supply it.
type adminEnv struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
}

func newAdminEnv(stdout, stderr io.Writer) *adminEnv {
	return &adminEnv{getenv: os.Getenv, stdin: os.Stdin, stdout: stdout, stderr: stderr}
}

// subcommand is one verb of an admin command group, e.g. "destinations get".
type subcommand struct {
	name, summary string
	run           func(ctx context.Context, env *adminEnv, args []string) error
}

// runGroup dispatches "hogwire <group> <verb> ...".
func runGroup(ctx context.Context, group string, subs []subcommand, args []string, env *adminEnv) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		groupUsage(env.stderr, group, subs)
		if len(args) == 0 {
			return usageError{fmt.Sprintf("%s: no subcommand given", group)}
		}
		return nil
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(ctx, env, args[1:])
		}
	}
	groupUsage(env.stderr, group, subs)
	return usageError{fmt.Sprintf("%s: unknown subcommand %q", group, args[0])}
}

func groupUsage(w io.Writer, group string, subs []subcommand) {
	fmt.Fprintf(w, "Usage: hogwire %s <subcommand> [flags]\n\nSubcommands:\n", group)
	for _, s := range subs {
		fmt.Fprintf(w, "  %-14s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(w, "\nRun 'hogwire %s <subcommand> -h' for its flags.\n", group)
}

// outputFormat is the -o flag.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
	outputYAML  outputFormat = "yaml"
)

func (o *outputFormat) String() string { return string(*o) }

func (o *outputFormat) Set(s string) error {
	switch f := outputFormat(s); f {
	case outputTable, outputJSON, outputYAML:
		*o = f
		return nil
	}
	return fmt.Errorf("%q is not table, json or yaml", s)
}

// adminCmd is one invocation of an admin subcommand: its flags (the
// connection and output flags shared by all, plus its own) and its
// positional arguments once parsed.
type adminCmd struct {
	env  *adminEnv
	fs   *flag.FlagSet
	args []string
	// given records the flags set on the command line, which is what
	// updates build their field mask from.
	given map[string]bool

	server, token, dataDir, caFile string
	useTLS                         bool
	timeout                        time.Duration
	output                         outputFormat
}

// envFlags may also be set with HOGWIRE_<FLAG>. Flags that describe a
// change (--name, --input, …) are deliberately not among them: an exported
// HOGWIRE_NAME must not slip into an update.
func envFlags() []string {
	return []string{"server", "data-dir", "output", "tls", "ca-file", "timeout", "project"}
}

func newAdminCmd(env *adminEnv, name, argsUsage, summary string) *adminCmd {
	c := &adminCmd{env: env, output: outputTable, fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs := c.fs
	fs.SetOutput(env.stderr)
	fs.StringVar(&c.server, "server", defaultServer, "gRPC address of the control plane")
	fs.StringVar(&c.token, "token", "", "admin token (default: $HOGWIRE_TOKEN, else the file <data-dir>/"+adminTokenName+")")
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir, "data directory of 'hogwire dev', where its admin token is")
	fs.Var(&c.output, "o", "output `format`: table, json or yaml")
	fs.Var(&c.output, "output", "same as -o")
	fs.BoolVar(&c.useTLS, "tls", false, "connect with TLS, verifying the server with the system roots")
	fs.StringVar(&c.caFile, "ca-file", "", "connect with TLS, verifying the server with the CA in this PEM `file`")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "time limit of the whole command")
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "Usage: %s\n\n%s\n\nFlags:\n", strings.TrimSpace("hogwire "+name+" [flags] "+argsUsage), summary)
		fs.PrintDefaults()
	}
	return c
}

// parse parses flags, which may come before or after the positional
// arguments, and checks the number of positional arguments.
func (c *adminCmd) parse(args []string, minArgs, maxArgs int) error {
	pos, err := parseInterspersed(c.fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return usageError{err.Error()}
	}
	c.given = map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { c.given[f.Name] = true })
	// -o is --output: either on the command line beats HOGWIRE_OUTPUT.
	if c.given["o"] || c.given["output"] {
		c.given["o"], c.given["output"] = true, true
	}
	for _, name := range envFlags() {
		f := c.fs.Lookup(name)
		if f == nil || c.given[name] {
			continue
		}
		env := "HOGWIRE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v := c.env.getenv(env); v != "" {
			if err := f.Value.Set(v); err != nil {
				return usageError{fmt.Sprintf("%s: %v", env, err)}
			}
		}
	}
	switch {
	case len(pos) < minArgs && minArgs == maxArgs:
		return usageError{fmt.Sprintf("%s: expects %d argument(s), got %d", c.fs.Name(), minArgs, len(pos))}
	case len(pos) < minArgs:
		return usageError{fmt.Sprintf("%s: expects at least %d argument(s), got %d", c.fs.Name(), minArgs, len(pos))}
	case len(pos) > maxArgs:
		return usageError{fmt.Sprintf("%s: unexpected arguments %q", c.fs.Name(), pos[maxArgs:])}
	}
	c.args = pos
	return nil
}

// parseInterspersed lets flags follow positional arguments, as in
// "destinations get hook -o json"; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// errNoToken is returned when no admin token can be found.
var errNoToken = errors.New("no admin token")

// resolveToken finds the admin token: the flag, else $HOGWIRE_TOKEN, else
// the file that `hogwire dev` writes into its data directory.
func resolveToken(flagValue string, getenv func(string) string, dataDir string) (string, error) {
	if t := strings.TrimSpace(flagValue); t != "" {
		return t, nil
	}
	if t := strings.TrimSpace(getenv("HOGWIRE_TOKEN")); t != "" {
		return t, nil
	}
	path := filepath.Join(dataDir, adminTokenName)
	t, err := auth.ReadSecretFile(path)
	if err == nil {
		return t, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: pass --token, set HOGWIRE_TOKEN, or point --data-dir at the data directory of `hogwire dev` (%s does not exist)", errNoToken, path)
	}
	return "", fmt.Errorf("%w: %w", errNoToken, err)
}

// dial connects to the server. The returned context carries --timeout.
func (c *adminCmd) dial(ctx context.Context) (context.Context, *grpc.ClientConn, func(), error) {
	token, err := resolveToken(c.token, c.env.getenv, c.dataDir)
	if err != nil {
		return nil, nil, nil, usageError{err.Error()}
	}
	var creds credentials.TransportCredentials
	if c.useTLS || c.caFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.caFile != "" {
			pem, err := os.ReadFile(c.caFile)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("--ca-file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, nil, nil, fmt.Errorf("--ca-file: no certificate in %s", c.caFile)
			}
		}
		creds = credentials.NewTLS(cfg)
	}
	cc, err := rpcclient.Dial(c.server, rpcclient.Options{Token: token, Creds: creds})
	if err != nil {
		return nil, nil, nil, usageError{fmt.Sprintf("--server: %v", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return ctx, cc, func() { cancel(); cc.Close() }, nil
}

// apiError is a failed call, rendered for a person: the status message,
// every field violation on its own line and a hint for the usual causes.
type apiError struct {
	op     string
	st     *status.Status
	server string
}

func (e *apiError) GRPCStatus() *status.Status { return e.st }

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.op, e.st.Message())
	for _, d := range e.st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fmt.Fprintf(&b, "\n  %s: %s", v.GetField(), v.GetDescription())
			}
		}
	}
	switch e.st.Code() {
	case codes.Unauthenticated:
		b.WriteString("\nhint: check --token (or HOGWIRE_TOKEN); `hogwire dev` writes its admin token to <data-dir>/" + adminTokenName)
	case codes.Unavailable:
		fmt.Fprintf(&b, "\nhint: the server at %s is not reachable: is `hogwire dev` running, and are --server and --tls right?", e.server)
	case codes.Aborted:
		b.WriteString("\nIt was changed by someone else after it was read, so nothing was written: run the command again to apply your change to the new version (with -f, get the destination again first).")
	case codes.DeadlineExceeded:
		b.WriteString("\nhint: the call did not finish within --timeout")
	}
	return b.String()
}

// callErr wraps an RPC error for printing.
func (c *adminCmd) callErr(op string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	return &apiError{op: op, st: st, server: c.server}
}

// printMessage writes m as JSON or YAML, or calls table for -o table.
func (c *adminCmd) printMessage(m proto.Message, table func(w io.Writer) error) error {
	switch c.output {
	case outputJSON, outputYAML:
		b, err := marshalStable(m)
		if err != nil {
			return err
		}
		if c.output == outputYAML {
			if b, err = yaml.JSONToYAML(b); err != nil {
				return fmt.Errorf("encoding YAML: %w", err)
			}
			_, err = c.env.stdout.Write(b)
			return err
		}
		_, err = fmt.Fprintf(c.env.stdout, "%s\n", b)
		return err
	}
	return table(c.env.stdout)
}

// marshalStable renders m as indented protojson. protojson varies its
// whitespace on purpose, so the result is re-indented to be byte-stable for
// scripts that diff it.
func marshalStable(m proto.Message) ([]byte, error) {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding JSON: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("encoding JSON: %w", err)
	}
	return out.Bytes(), nil
}

// readInput reads a file, or stdin for "-".
func (c *adminCmd) readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(c.env.stdin)
	}
	return os.ReadFile(path)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// projectName accepts "projects/x" or "x".
func projectName(arg string) string {
	if strings.HasPrefix(arg, "projects/") {
		return arg
	}
	return "projects/" + arg
}

// destinationName accepts a full resource name or a bare id, which names
// the destination in whichever project it is (ids are unique).
func destinationName(arg string) string {
	if strings.Contains(arg, "/") {
		return arg
	}
	return "projects/-/destinations/" + arg
}

// lastSegment returns the id at the end of a resource name.
func lastSegment(name string) string {
	return name[strings.LastIndex(name, "/")+1:]
}

// callOne is the shape of most commands: one resource argument, one call,
// and the response printed as JSON/YAML or, for humans, by text.
func callOne[R proto.Message](ctx context.Context, c *adminCmd, args []string, op string,
	call func(ctx context.Context, cc *grpc.ClientConn, arg string) (R, error),
	text func(w io.Writer, resp R) error) error {
	if err := c.parse(args, 1, 1); err != nil {
		return err
	}
	ctx, cc, done, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := call(ctx, cc, c.args[0])
	if err != nil {
		return c.callErr(op, err)
	}
	return c.printMessage(resp, func(w io.Writer) error { return text(w, resp) })
}
