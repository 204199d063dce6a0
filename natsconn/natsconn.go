// Package natsconn connects to NATS with the settings an operator gives:
// several servers, TLS with a CA and a client certificate, and any of
// NATS' authentication methods (a credentials file, an NKey seed, or a user
// and password). The flag names follow the nats CLI's (--tlsca, --tlscert,
// --tlskey, --creds, --nkey, --user), prefixed with "nats-".
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// PasswordEnv is the environment variable the password is read from when
// no password file is given.
const PasswordEnv = "HOGWIRE_NATS_PASSWORD"

// Config is how to reach a NATS cluster.
type Config struct {
	// URL lists servers, comma-separated: nats://, tls:// (TLS required) or
	// with credentials in the URL (nats://user:pass@host:4222).
	URL string
	// CACert verifies the servers; Cert and Key are a client certificate for
	// servers that verify clients (tls { verify: true }). PEM files.
	CACert, Cert, Key string
	// CredsFile is a user JWT and seed (a .creds file, decentralised auth).
	CredsFile string
	// NKeyFile holds a user NKey seed ("SU…").
	NKeyFile string
	// User and a password from PasswordFile, Password or the
	// HOGWIRE_NATS_PASSWORD variable, in that order.
	User, PasswordFile, Password string
	// Replicas of the JetStream streams hogwire creates (1 for a single
	// server, 3 for a cluster).
	Replicas int
	// Name identifies the connection in the server's monitoring.
	Name string
}

// FlagSet is what RegisterFlags needs of a flag set; both the standard
// library's and spf13/pflag's satisfy it.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
	IntVar(p *int, name string, value int, usage string)
}

// RegisterFlags adds the --nats-* flags with the given default URL.
func (c *Config) RegisterFlags(fs FlagSet, defaultURL string) {
	fs.StringVar(&c.URL, "nats-url", defaultURL, "NATS server URLs, comma-separated (tls:// requires TLS)")
	fs.StringVar(&c.CACert, "nats-tlsca", "", "verify NATS servers with this CA bundle (PEM)")
	fs.StringVar(&c.Cert, "nats-tlscert", "", "client certificate for NATS (PEM)")
	fs.StringVar(&c.Key, "nats-tlskey", "", "private key of --nats-tlscert (PEM)")
	fs.StringVar(&c.CredsFile, "nats-creds", "", "NATS user credentials file (JWT and seed)")
	fs.StringVar(&c.NKeyFile, "nats-nkey", "", "file holding a NATS user NKey seed")
	fs.StringVar(&c.User, "nats-user", "", "NATS user name (password from --nats-password-file or "+PasswordEnv+")")
	fs.StringVar(&c.PasswordFile, "nats-password-file", "", "file holding the NATS password")
	fs.IntVar(&c.Replicas, "nats-replicas", 1, "replicas of hogwire's JetStream streams (3 in a NATS cluster)")
}

// Options resolves the settings into connection options. getenv reads the
// password variable (nil: os.Getenv). The connection reconnects forever,
// with jitter, and logs one warning per outage.
func (c Config) Options(getenv func(string) string, log *slog.Logger) ([]nats.Option, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if log == nil {
		log = slog.Default()
	}
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost; reconnecting", "component", "nats", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connection restored", "component", "nats", "server", nc.ConnectedUrlRedacted())
		}),
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, errors.New("nats: --nats-tlscert and --nats-tlskey go together")
	}
	if c.CACert != "" {
		opts = append(opts, nats.RootCAs(c.CACert))
	}
	if c.Cert != "" {
		opts = append(opts, nats.ClientCert(c.Cert, c.Key))
	}
	methods := 0
	if c.CredsFile != "" {
		methods++
		if _, err := os.Stat(c.CredsFile); err != nil {
			return nil, fmt.Errorf("nats: credentials: %w", err)
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.NKeyFile != "" {
		methods++
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats: nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if c.User != "" {
		methods++
		password := c.Password
		if c.PasswordFile != "" {
			b, err := os.ReadFile(c.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("nats: password file: %w", err)
			}
			password = strings.TrimRight(string(b), "\r\n")
		} else if password == "" {
			password = getenv(PasswordEnv)
		}
		if password == "" {
			return nil, fmt.Errorf("nats: user %q has no password (use --nats-password-file or %s)", c.User, PasswordEnv)
		}
		opts = append(opts, nats.UserInfo(c.User, password))
	} else if c.PasswordFile != "" {
		return nil, errors.New("nats: --nats-password-file needs --nats-user")
	}
	if methods > 1 {
		return nil, errors.New("nats: use one of --nats-creds, --nats-nkey and --nats-user")
	}
	return opts, nil
}

// Connect connects to the first reachable server of c.URL. It fails if none
// answers within the connect timeout, or authentication or TLS fails;
// once connected, outages are ridden out by reconnecting.
func Connect(ctx context.Context, c Config, log *slog.Logger) (*nats.Conn, error) {
	if c.URL == "" {
		return nil, errors.New("nats: no URL")
	}
	opts, err := c.Options(nil, log)
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(time.Until(d)))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("NATS at %s: %w", redact(c.URL), err)
	}
	return nc, nil
}

// redact drops passwords from URLs for error messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "***" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// Check reports whether nc can be used now: an error while it is
// disconnected or reconnecting, for readiness checks.
func Check(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			if err := nc.LastError(); err != nil {
				return fmt.Errorf("NATS %s: %w", strings.ToLower(s.String()), err)
			}
			return fmt.Errorf("NATS %s", strings.ToLower(s.String()))
		}
		return nil
	}
}
