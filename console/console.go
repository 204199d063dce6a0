// Package console serves hogwire's web console: the single-page app built
// from this directory's TypeScript (embedded, so building the binary needs
// no Node), and the control plane's own gRPC admin API for it to call.
//
// The browser speaks the Connect protocol; connectrpc.com/vanguard
// transcodes each call into a gRPC call on the same *grpc.Server that
// serves the API, so the very same services, interceptors and auth policy
// answer it. There is no second API.
//
// Sign-in exchanges the admin token for a session cookie (HttpOnly,
// SameSite=Strict, an HMAC of an expiry under a key derived from the admin
// token, so that every replica accepts it and a new admin token ends every
// session). API calls carrying that cookie are given the admin token's
// bearer metadata; calls with their own Authorization header are passed on
// as they are. Unsafe cross-origin requests are refused
// (http.CrossOriginProtection), so a cookie never acts for another site.
package console

import (
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/vanguard"
	"google.golang.org/grpc"

	"github.com/hogwire/hogwire/auth"
)

// Prefix is the path the console is served under.
const Prefix = "/console/"

// apiPrefix is where the browser reaches the API: Connect calls
// "/console/api/hogwire.v1.ProjectService/ListProjects".
const apiPrefix = Prefix + "api/"

//go:embed all:dist
var dist embed.FS

// Options configure the console.
type Options struct {
	// GRPC is the server that serves the admin API; its services must be
	// registered before New is called.
	GRPC *grpc.Server
	// Roles says which token each service needs (controlplane.Roles()); the
	// console exposes the services that need the admin token, and no other.
	Roles map[string]auth.Role
	// AdminToken is the admin API's token: what a user signs in with.
	AdminToken string
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
	Logger     *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// New returns the console's handler for everything under Prefix; it
// redirects "/" there too, for a server that serves only the console.
func New(opts Options) (http.Handler, error) {
	if opts.GRPC == nil {
		return nil, errors.New("console: a gRPC server is required")
	}
	if opts.AdminToken == "" {
		return nil, errors.New("console: the admin token is required")
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var services []*vanguard.Service
	info := opts.GRPC.GetServiceInfo()
	for _, name := range adminServices(opts.Roles) {
		if _, ok := info[name]; !ok {
			continue
		}
		services = append(services, vanguard.NewService(name, opts.GRPC,
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			vanguard.WithTargetCodecs(vanguard.CodecProto)))
	}
	if len(services) == 0 {
		return nil, errors.New("console: the gRPC server has no admin service registered")
	}
	api, err := vanguard.NewTranscoder(services)
	if err != nil {
		return nil, err
	}
	assets, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, err
	}
	static, err := newStatic(assets)
	if err != nil {
		return nil, err
	}
	sess := &sessions{key: sessionKey(opts.AdminToken), ttl: opts.SessionTTL, now: opts.Now}
	c := &console{log: opts.Logger, adminToken: opts.AdminToken, sessions: sess, api: api, static: static}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusFound)
	})
	mux.HandleFunc("POST "+Prefix+"session", c.signIn)
	mux.HandleFunc("DELETE "+Prefix+"session", c.signOut)
	mux.HandleFunc("GET "+Prefix+"session", c.whoami)
	// Connect calls are POSTs (no method of the API is marked free of side
	// effects, which is what Connect would send as a GET).
	mux.Handle("POST "+apiPrefix, http.StripPrefix(strings.TrimSuffix(apiPrefix, "/"), http.HandlerFunc(c.serveAPI)))
	mux.Handle("GET "+Prefix, static)
	mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(mux)), nil
}

// adminServices returns, sorted, the services that need the admin token.
func adminServices(roles map[string]auth.Role) []string {
	var out []string
	for name, r := range roles {
		if r == auth.Admin {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

type console struct {
	log        *slog.Logger
	adminToken string
	sessions   *sessions
	api        http.Handler
	static     http.Handler
}

// serveAPI hands an API call to the transcoder, with the admin token's
// bearer metadata when it carries a valid session cookie.
func (c *console) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") == "" {
		if ck, err := r.Cookie(sessionCookie(r)); err == nil && c.sessions.valid(ck.Value) {
			r.Header.Set("Authorization", "Bearer "+c.adminToken)
		}
	}
	// The browser never needs cookies past this point.
	r.Header.Del("Cookie")
	c.api.ServeHTTP(w, r)
}

// securityHeaders sets headers that keep the console's pages from being
// framed or sniffed, and scripts to the console's own.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		// CodeMirror and uPlot set inline styles; scripts come only from
		// the embedded bundle.
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
			"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.ServeHTTP(w, r)
	})
}
