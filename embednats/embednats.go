// Package embednats runs a NATS server with JetStream inside the current
// process, for `hogwire dev` and for tests. Production deployments use an
// external NATS cluster instead.
package embednats

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config describes the server.
type Config struct {
	// Addr is host:port to listen on; port 0 picks a free one. Default
	// "127.0.0.1:0".
	Addr string
	// StoreDir holds JetStream's file storage. A second start with the same
	// directory finds the streams of the first.
	StoreDir string
	// StartTimeout bounds the wait until it accepts connections (default 10s).
	StartTimeout time.Duration
}

// Server is a running NATS server.
type Server struct {
	srv *server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(cfg Config) (*Server, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embednats: addr %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embednats: addr %q: %w", addr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("embednats: StoreDir is required")
	}
	opts := &server.Options{
		ServerName: "hogwire-dev",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// The dev stack has no other NATS servers to talk to.
		DisableShortFirstPing: true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embednats: %w", err)
	}
	srv.Start()
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		return nil, errors.New("embednats: server not ready in time")
	}
	return &Server{srv: srv}, nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// InProcessConn returns a connection to the server that stays in memory,
// without a socket; nats.InProcessServer(s) makes a client use it.
func (s *Server) InProcessConn() (net.Conn, error) { return s.srv.InProcessConn() }

// Close shuts the server down and waits until it has stopped.
func (s *Server) Close() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}
