package capture

import (
	"context"
	flag "github.com/spf13/pflag"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Defaults of ServerConfig's zero values.
const (
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultBodyReadTimeout    = 10 * time.Second
	DefaultReadTimeout        = 60 * time.Second
	DefaultIdleTimeout        = 120 * time.Second
	DefaultMaxRequestsPerConn = 10_000
	DefaultMaxHeaderBytes     = 64 << 10
)

// ServerConfig bounds what one connection to the capture server may take.
type ServerConfig struct {
	// ReadHeaderTimeout is how long a client has to send a request's
	// headers.
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout is how long the body may stall between two reads.
	BodyReadTimeout time.Duration
	// ReadTimeout is how long a client has to send a whole request; the
	// answer must then be written within as long again.
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
	// MaxRequestsPerConn closes a keep-alive connection after this many
	// requests, so that load balances over nodes and nothing lives on one
	// connection forever.
	MaxRequestsPerConn int
	// MaxHeaderBytes caps a request's header block.
	MaxHeaderBytes int
}

func (s ServerConfig) withDefaults() ServerConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&s.BodyReadTimeout, DefaultBodyReadTimeout)
	def(&s.ReadTimeout, DefaultReadTimeout)
	def(&s.IdleTimeout, DefaultIdleTimeout)
	if s.MaxRequestsPerConn <= 0 {
		s.MaxRequestsPerConn = DefaultMaxRequestsPerConn
	}
	if s.MaxHeaderBytes <= 0 {
		s.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return s
}

func (s *ServerConfig) registerFlags(fs *flag.FlagSet) {
	*s = s.withDefaults()
	fs.DurationVar(&s.ReadHeaderTimeout, "http-read-header-timeout", s.ReadHeaderTimeout, "time a capture client has to send a request's headers")
	fs.DurationVar(&s.BodyReadTimeout, "http-body-read-timeout", s.BodyReadTimeout, "time a capture request's body may stall between reads (408 beyond)")
	fs.DurationVar(&s.ReadTimeout, "http-read-timeout", s.ReadTimeout, "time a capture client has to send a whole request")
	fs.DurationVar(&s.IdleTimeout, "http-idle-timeout", s.IdleTimeout, "close keep-alive capture connections idle this long")
	fs.IntVar(&s.MaxRequestsPerConn, "http-max-requests-per-conn", s.MaxRequestsPerConn, "close a keep-alive capture connection after this many requests")
	fs.IntVar(&s.MaxHeaderBytes, "http-max-header-bytes", s.MaxHeaderBytes, "largest header block of a capture request")
}

type connRequestsKey struct{}

// NewServer returns an HTTP server for h (the capture handler, or a mux
// around it) with the timeouts and keep-alive limit of cfg. Set its Addr,
// or call Serve with a listener.
func NewServer(h http.Handler, cfg ServerConfig) *http.Server {
	cfg = cfg.withDefaults()
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, ok := r.Context().Value(connRequestsKey{}).(*atomic.Int64); ok && n.Add(1) >= int64(cfg.MaxRequestsPerConn) {
			// The server closes the connection after this answer.
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
	return &http.Server{
		Handler:           limited,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      2 * cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connRequestsKey{}, new(atomic.Int64))
		},
	}
}
