package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
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

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/resourcename"
	"github.com/hogwire/hogwire/rpcclient"
)

// Defaults of the admin commands; they match what `hogwire dev` uses.
const (
	defaultServer  = "127.0.0.1:7070"
	defaultDataDir = ".hogwire"
	adminTokenName = "admin.token"
)

// outputFormat is the -o flag.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
	outputYAML  outputFormat = "yaml"
)

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "format" }

func (o *outputFormat) Set(s string) error {
	switch f := outputFormat(s); f {
	case outputTable, outputJSON, outputYAML:
		*o = f
		return nil
	}
	return fmt.Errorf("%q is not table, json or yaml", s)
}

// addOutputFlag adds -o/--output to a command that prints a result.
func addOutputFlag(fs *pflag.FlagSet, o *outputFormat) {
	*o = outputTable
	fs.VarP(o, "output", "o", "output format: table, json or yaml")
}

// adminEnvFlags may also be set with HOGWIRE_<FLAG> or by the config
// file's context. Flags that describe a change (--name, --input, …) are
// deliberately not among them: an exported HOGWIRE_NAME must not slip into
// an update.
var adminEnvFlags = []string{"server", "data-dir", "output", "tls", "ca-file", "timeout", "project", "context", "config"}

// adminCmd is one admin command: the connection and output flags shared
// by all, its own flags, and its positional arguments once parsed.
type adminCmd struct {
	app  *app
	cmd  *cobra.Command
	fs   *pflag.FlagSet
	args []string
	// ctx is the selected context of the config file (nil: none).
	ctx *cliContext

	server, token, dataDir, caFile string
	useTLS                         bool
	timeout                        time.Duration
	output                         outputFormat
	configPath, contextName        string
	// captureToken is events send's --capture-token.
	captureToken string
}

// newAdminCmd returns a command named by use ("get DESTINATION"); set
// its run with c.runE.
func (a *app) newAdminCmd(use, short, long string, args cobra.PositionalArgs) *adminCmd {
	c := &adminCmd{app: a, cmd: &cobra.Command{Use: use, Short: short, Long: long, Args: args}}
	c.fs = c.cmd.Flags()
	c.addConnFlags(c.fs, true)
	addOutputFlag(c.fs, &c.output)
	c.cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// addConnFlags adds the flags that say how to reach the control plane;
// admin adds the admin token's.
func (c *adminCmd) addConnFlags(fs *pflag.FlagSet, admin bool) {
	fs.StringVar(&c.server, "server", defaultServer, "gRPC address of the control plane")
	if admin {
		fs.StringVar(&c.token, "token", "", "admin token (default: $HOGWIRE_TOKEN, the context's token, else the file <data-dir>/"+adminTokenName+")")
		fs.StringVar(&c.dataDir, "data-dir", defaultDataDir, "data directory of 'hogwire dev', where its admin token is")
	}
	fs.BoolVar(&c.useTLS, "tls", false, "connect with TLS, verifying the server with the system roots")
	fs.StringVar(&c.caFile, "ca-file", "", "connect with TLS, verifying the server with the CA in this PEM `file`")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "time limit of the whole command")
	fs.StringVar(&c.contextName, "context", "", "use this context of the config file (default: its current-context)")
	fs.StringVar(&c.configPath, "config", "", "config file (default: $HOGWIRE_CONFIG, else ~/.config/hogwire/config.yaml)")
}

// runE makes fn the command's run: flags not given are filled from the
// environment, then from the config file's context.
func (c *adminCmd) runE(fn func(ctx context.Context) error) *adminCmd {
	c.cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c.args = args
		if err := c.resolve(); err != nil {
			return err
		}
		return fn(cmd.Context())
	}
	return c
}

// resolve applies HOGWIRE_<FLAG> and then the config file's context to
// the connection flags not given on the command line.
func (c *adminCmd) resolve() error {
	if err := applyEnv(c.fs, c.app.getenv, adminEnvFlags); err != nil {
		return err
	}
	cfg, path, err := loadCLIConfig(c.app.getenv, c.configPath)
	if err != nil {
		return err
	}
	if c.ctx, err = cfg.selected(c.contextName, path); err != nil || c.ctx == nil {
		return err
	}
	return c.ctx.apply(c.fs)
}

// given reports whether a flag was set on the command line (or, for the
// connection flags, by the environment or the context).
func (c *adminCmd) given(name string) bool { return c.fs.Changed(name) }

// errNoToken is returned when no admin token can be found.
var errNoToken = errors.New("no admin token")

// resolveToken finds the admin token: the flag, else $HOGWIRE_TOKEN, else
// the config file's context, else the file that `hogwire dev` writes into
// its data directory.
func (c *adminCmd) resolveToken() (string, error) {
	if t := strings.TrimSpace(c.token); t != "" {
		return t, nil
	}
	if t := strings.TrimSpace(c.app.getenv("HOGWIRE_TOKEN")); t != "" {
		return t, nil
	}
	if t, err := c.ctx.adminToken(); t != "" || err != nil {
		return t, err
	}
	path := filepath.Join(c.dataDir, adminTokenName)
	t, err := auth.ReadSecretFile(path)
	if err == nil {
		return t, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return "", usagef("%v: pass --token, set HOGWIRE_TOKEN, or point --data-dir at the data directory of `hogwire dev` (%s does not exist)", errNoToken, path)
	}
	return "", usagef("%v: %v", errNoToken, err)
}

// dial connects to the server with the admin token. The returned context
// carries --timeout.
func (c *adminCmd) dial(ctx context.Context) (context.Context, *grpc.ClientConn, func(), error) {
	token, err := c.resolveToken()
	if err != nil {
		return nil, nil, nil, err
	}
	return c.connect(ctx, token)
}

// connect connects to the server with a bearer token ("" for none).
func (c *adminCmd) connect(ctx context.Context, token string) (context.Context, *grpc.ClientConn, func(), error) {
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
		return nil, nil, nil, usagef("--server: %v", err)
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
		fmt.Fprintf(&b, "\nhint: the server at %s is not reachable: is `hogwire dev` running? Give the address with --server, HOGWIRE_SERVER or a context of the config file, and --tls for a TLS server", e.server)
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
	return printMessage(c.app.stdout, c.output, m, table)
}

func printMessage(w io.Writer, o outputFormat, m proto.Message, table func(w io.Writer) error) error {
	switch o {
	case outputJSON, outputYAML:
		raw, err := protojson.Marshal(m)
		if err != nil {
			return fmt.Errorf("encoding JSON: %w", err)
		}
		if o == outputYAML {
			b, err := yaml.JSONToYAML(raw)
			if err != nil {
				return fmt.Errorf("encoding YAML: %w", err)
			}
			_, err = w.Write(b)
			return err
		}
		return writeIndentedJSON(w, raw)
	}
	return table(w)
}

// writeIndentedJSON writes JSON indented by two spaces and a newline.
// protojson varies its whitespace on purpose, so its output is re-indented
// to be byte-stable for scripts that diff it.
func writeIndentedJSON(w io.Writer, raw []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// readInput reads a file, or stdin for "-".
func (c *adminCmd) readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(c.app.stdin)
	}
	return os.ReadFile(path)
}

// callOne is the shape of most commands: one resource argument, one call,
// and the response printed as JSON/YAML or, for humans, by text.
func callOne[R proto.Message](ctx context.Context, c *adminCmd, op string,
	call func(ctx context.Context, cc *grpc.ClientConn, arg string) (R, error),
	text func(w io.Writer, resp R) error) error {
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

// completeArgs completes the first positional argument with the names
// list returns from the server, for shell completion.
func (c *adminCmd) completeArgs(list func(ctx context.Context, cc *grpc.ClientConn) ([]string, error)) {
	c.cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if err := c.resolve(); err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		defer done()
		names, err := list(ctx, cc)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func completeProjects(ctx context.Context, cc *grpc.ClientConn) ([]string, error) {
	resp, err := hogwirev1.NewProjectServiceClient(cc).ListProjects(ctx, &hogwirev1.ListProjectsRequest{PageSize: 1000})
	var ids []string
	for _, p := range resp.GetProjects() {
		ids = append(ids, resourcename.ID(p.GetName()))
	}
	return ids, err
}

func completeDestinations(ctx context.Context, cc *grpc.ClientConn) ([]string, error) {
	resp, err := hogwirev1.NewDestinationServiceClient(cc).ListDestinations(ctx,
		&hogwirev1.ListDestinationsRequest{Parent: resourcename.Project(resourcename.Wildcard), PageSize: 1000})
	var ids []string
	for _, d := range resp.GetDestinations() {
		ids = append(ids, resourcename.ID(d.GetName()))
	}
	return ids, err
}

func completeTemplates(ctx context.Context, cc *grpc.ClientConn) ([]string, error) {
	resp, err := hogwirev1.NewTemplateServiceClient(cc).ListTemplates(ctx, &hogwirev1.ListTemplatesRequest{PageSize: 1000})
	var ids []string
	for _, t := range resp.GetTemplates() {
		ids = append(ids, resourcename.ID(t.GetName()))
	}
	return ids, err
}
