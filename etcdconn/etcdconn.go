// Package etcdconn builds etcd clients from the settings an operator gives:
// several endpoints, TLS with a CA and a client certificate, and
// username/password authentication. The flag names follow etcdctl's
// (--cacert, --cert, --key, --user), prefixed with "etcd-".
package etcdconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"

	"github.com/hogwire/hogwire/zapslog"
)

// PasswordEnv is the environment variable the password is read from when
// no password file is given.
const PasswordEnv = "HOGWIRE_ETCD_PASSWORD"

// Config is how to reach an etcd cluster.
type Config struct {
	// Endpoints are client URLs, e.g. https://etcd-0.etcd:2379. An https
	// endpoint uses TLS even without CACert (the system roots verify it).
	Endpoints []string
	// CACert verifies the servers; Cert and Key are the client certificate
	// for clusters that require one (--client-cert-auth). PEM files. They
	// are read again on each connection, so rotated files take effect
	// without a restart.
	CACert, Cert, Key string
	// ServerName overrides the name checked in the servers' certificates.
	ServerName string
	// InsecureSkipVerify accepts any server certificate (testing only).
	InsecureSkipVerify bool
	// User is "name" or, as etcdctl takes it, "name:password".
	User string
	// PasswordFile holds the password; otherwise Password, then the
	// HOGWIRE_ETCD_PASSWORD environment variable, is used.
	PasswordFile string
	Password     string
	// DialTimeout bounds the first connection (default 5s).
	DialTimeout time.Duration

	endpoints string // the --etcd-endpoints flag, split by Client
}

// FlagSet is what RegisterFlags needs of a flag set; both the standard
// library's and spf13/pflag's satisfy it.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
}

// RegisterFlags adds the --etcd-* flags, and etcdctl's unprefixed
// --cacert, --cert and --key as aliases, with the given default endpoints.
func (c *Config) RegisterFlags(fs FlagSet, defaultEndpoints string) {
	fs.StringVar(&c.endpoints, "etcd-endpoints", defaultEndpoints, "comma-separated etcd client URLs")
	fs.StringVar(&c.CACert, "etcd-cacert", "", "verify etcd servers with this CA bundle (PEM)")
	fs.StringVar(&c.Cert, "etcd-cert", "", "client certificate for etcd (PEM)")
	fs.StringVar(&c.Key, "etcd-key", "", "private key of --etcd-cert (PEM)")
	fs.StringVar(&c.CACert, "cacert", "", "alias of --etcd-cacert (etcdctl's name)")
	fs.StringVar(&c.Cert, "cert", "", "alias of --etcd-cert (etcdctl's name)")
	fs.StringVar(&c.Key, "key", "", "alias of --etcd-key (etcdctl's name)")
	fs.StringVar(&c.ServerName, "etcd-server-name", "", "server name to verify in etcd certificates (default: the endpoint's host)")
	fs.BoolVar(&c.InsecureSkipVerify, "etcd-insecure-skip-tls-verify", false, "accept any etcd server certificate (testing only)")
	fs.StringVar(&c.User, "etcd-user", "", "etcd user name, or name:password (password also from --etcd-password-file or "+PasswordEnv+")")
	fs.StringVar(&c.PasswordFile, "etcd-password-file", "", "file holding the etcd password")
	fs.DurationVar(&c.DialTimeout, "etcd-dial-timeout", 5*time.Second, "time to wait for the first etcd connection")
}

// ClientConfig resolves the settings into a clientv3 configuration. getenv
// reads the password variable (nil: os.Getenv).
func (c Config) ClientConfig(getenv func(string) string) (clientv3.Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	endpoints := c.Endpoints
	if len(endpoints) == 0 {
		// URLs hold neither commas nor spaces.
		endpoints = strings.FieldsFunc(c.endpoints, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	}
	if len(endpoints) == 0 {
		return clientv3.Config{}, errors.New("etcd: no endpoints")
	}
	if (c.Cert == "") != (c.Key == "") {
		return clientv3.Config{}, errors.New("etcd: --etcd-cert and --etcd-key go together")
	}
	useTLS := c.CACert != "" || c.Cert != "" || c.ServerName != "" || c.InsecureSkipVerify
	for _, e := range endpoints {
		if strings.HasPrefix(e, "https://") || strings.HasPrefix(e, "unixs://") {
			useTLS = true
		}
	}
	spec := &clientv3.ConfigSpec{
		Endpoints:   endpoints,
		DialTimeout: c.DialTimeout,
		Secure: &clientv3.SecureConfig{
			Cert: c.Cert, Key: c.Key, Cacert: c.CACert, ServerName: c.ServerName,
			InsecureTransport: !useTLS, InsecureSkipVerify: c.InsecureSkipVerify,
		},
	}
	if spec.DialTimeout <= 0 {
		spec.DialTimeout = 5 * time.Second
	}
	if c.User != "" {
		user, password, hasPassword := strings.Cut(c.User, ":")
		switch {
		case c.PasswordFile != "":
			b, err := os.ReadFile(c.PasswordFile)
			if err != nil {
				return clientv3.Config{}, fmt.Errorf("etcd: password file: %w", err)
			}
			password = strings.TrimRight(string(b), "\r\n")
		case hasPassword:
		case c.Password != "":
			password = c.Password
		default:
			password = getenv(PasswordEnv)
		}
		if password == "" {
			return clientv3.Config{}, fmt.Errorf("etcd: user %q has no password (use --etcd-password-file or %s)", user, PasswordEnv)
		}
		spec.Auth = &clientv3.AuthConfig{Username: user, Password: password}
	} else if c.PasswordFile != "" {
		return clientv3.Config{}, errors.New("etcd: --etcd-password-file needs --etcd-user")
	}
	cfg, err := clientv3.NewClientConfig(spec, nil)
	if err != nil {
		return clientv3.Config{}, fmt.Errorf("etcd: TLS: %w", err)
	}
	return *cfg, nil
}

// Client returns a client for the cluster; the caller closes it. With
// authentication on it logs in first (within DialTimeout), so a wrong
// password fails here rather than at the first request. ctx bounds only
// that login: the client lives until Close.
func Client(ctx context.Context, c Config, log *slog.Logger) (*clientv3.Client, error) {
	cfg, err := c.ClientConfig(nil)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	cfg.Logger = zapslog.New(log.With("component", "etcd-client"), zapcore.ErrorLevel, nil)
	type result struct {
		cli *clientv3.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		cli, err := clientv3.New(cfg)
		done <- result{cli, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("etcd at %s: %w", strings.Join(cfg.Endpoints, ","), r.err)
		}
		return r.cli, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.cli != nil {
				r.cli.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
