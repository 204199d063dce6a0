// Package embedetcd runs an etcd member inside the current process, for
// `hogwire dev` and for tests. Production deployments use an external etcd
// cluster instead.
package embedetcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"

	"github.com/hogwire/hogwire/zapslog"
)

// Config describes one member.
type Config struct {
	// Name of the member; "default" when empty.
	Name string
	// Dir holds the member's data. A second start with the same Dir finds the
	// data of the first.
	Dir string
	// ClientURL and PeerURL are where the member listens, e.g.
	// "http://127.0.0.1:2379". Port 0 picks a free port (single member only,
	// since peers must know each other's URLs in advance).
	ClientURL, PeerURL string
	// InitialCluster lists every member as "name=peerURL,…"; empty for a
	// single member.
	InitialCluster string
	// Logger receives etcd's own log entries at or above LogLevel (nil
	// means error: etcd is chatty, and its warnings at start and stop are not
	// actionable for a dev stack). Nil uses slog.Default().
	Logger   *slog.Logger
	LogLevel slog.Leveler
	// StartTimeout bounds the wait until the member serves clients (default 30s).
	StartTimeout time.Duration
	// ClientTLS and PeerTLS, when set, serve clients and peers over TLS
	// (the URLs must then be https://).
	ClientTLS, PeerTLS *TLS
	// BcryptCost, when set, is the cost of hashing user passwords (etcd's
	// default is 10; tests use bcrypt's minimum, 4, to keep logins fast).
	BcryptCost uint
}

// TLS is a member's certificate, and the CA that verifies the other side
// when ClientCertAuth asks for client certificates. PEM files.
type TLS struct {
	CertFile, KeyFile, CAFile string
	ClientCertAuth            bool
}

func (t *TLS) info() transport.TLSInfo {
	return transport.TLSInfo{CertFile: t.CertFile, KeyFile: t.KeyFile, TrustedCAFile: t.CAFile, ClientCertAuth: t.ClientCertAuth}
}

// Server is a running member.
type Server struct {
	etcd    *embed.Etcd
	closing *atomic.Bool
	log     *slog.Logger
	scheme  string
}

// Start starts a member and waits until it is ready to serve clients.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	ec := embed.NewConfig()
	if cfg.Name != "" {
		ec.Name = cfg.Name
	}
	ec.Dir = cfg.Dir
	ec.WalDir = filepath.Join(cfg.Dir, "wal")
	clientURL, peerURL := cfg.ClientURL, cfg.PeerURL
	if clientURL == "" {
		clientURL = "http://127.0.0.1:0"
	}
	if peerURL == "" {
		peerURL = "http://127.0.0.1:0"
	}
	cu, err := url.Parse(clientURL)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: client URL: %w", err)
	}
	pu, err := url.Parse(peerURL)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: peer URL: %w", err)
	}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	if cfg.BcryptCost != 0 {
		ec.BcryptCost = cfg.BcryptCost
	}
	if cfg.ClientTLS != nil {
		ec.ClientTLSInfo = cfg.ClientTLS.info()
	}
	if cfg.PeerTLS != nil {
		ec.PeerTLSInfo = cfg.PeerTLS.info()
	}
	if cfg.InitialCluster != "" {
		ec.InitialCluster = cfg.InitialCluster
	} else {
		ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	min := zapcore.ErrorLevel
	if cfg.LogLevel != nil {
		min = zapslog.Level(cfg.LogLevel.Level())
	}
	closing := new(atomic.Bool)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapslog.New(log.With("component", "etcd"), min, closing))
	// Keep a bounded history: config watchers that fall further behind than
	// this get a fresh snapshot instead.
	ec.AutoCompactionMode = "revision"
	ec.AutoCompactionRetention = "10000"

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: start: %w", err)
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-e.Server.ReadyNotify():
		scheme := "http://"
		if cfg.ClientTLS != nil {
			scheme = "https://"
		}
		return &Server{etcd: e, closing: closing, log: log, scheme: scheme}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedetcd: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	case <-t.C:
		e.Server.Stop()
		e.Close()
		return nil, errors.New("embedetcd: member not ready in time (is a quorum of the cluster up?)")
	}
}

// ClientURL is the URL clients reach the member at, with the real port.
func (s *Server) ClientURL() string {
	return s.scheme + s.etcd.Clients[0].Addr().String()
}

// Client returns a new client for this member; the caller closes it. It
// speaks plaintext: for a member with ClientTLS, build a client with the
// etcdconn package.
func (s *Server) Client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{s.ClientURL()},
		DialTimeout: 5 * time.Second,
		Logger:      zapslog.New(s.log.With("component", "etcd-client"), zapcore.ErrorLevel, nil),
	})
}

// Close stops the member and waits until it has stopped. Closing again
// does nothing.
func (s *Server) Close() {
	if s.closing.Swap(true) {
		return
	}
	s.etcd.Close()
	<-s.etcd.Server.StopNotify()
}
