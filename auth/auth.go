// Package auth checks the bearer tokens that guard hogwire's gRPC API and
// generates the tokens and keys hogwire hands out.
//
// There are three kinds of caller: administrators (the admin API: projects,
// destinations, templates, tests, logs, metrics), data-plane nodes (config and
// telemetry streams) and anyone (health and reflection). Event ingest is
// authenticated by a project's capture token, which the ingest service checks
// itself because the token also selects the project.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Role is what a method requires of its caller.
type Role int

const (
	// Public methods need no token.
	Public Role = iota
	// Admin methods need the admin token.
	Admin
	// NodeRole methods need the node token.
	NodeRole
	// Capture methods check a project's capture token themselves.
	Capture
)

// Policy maps gRPC services to the role their methods require.
type Policy struct {
	// Services maps a full service name ("hogwire.v1.ProjectService") to its role.
	Services map[string]Role
	// AdminToken and NodeToken are the expected bearer tokens.
	AdminToken, NodeToken string
}

// roleFor returns the role of a full method name "/pkg.Service/Method".
// Services not listed are admin-only, so a new service is never public by
// accident.
func (p *Policy) roleFor(fullMethod string) Role {
	svc := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndexByte(svc, '/'); i >= 0 {
		svc = svc[:i]
	}
	if r, ok := p.Services[svc]; ok {
		return r
	}
	return Admin
}

// Check authorizes a call to fullMethod with the metadata in ctx.
func (p *Policy) Check(ctx context.Context, fullMethod string) error {
	var want string
	switch p.roleFor(fullMethod) {
	case Public, Capture:
		return nil
	case Admin:
		want = p.AdminToken
	case NodeRole:
		want = p.NodeToken
	}
	got, ok := BearerToken(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "missing \"authorization: Bearer <token>\" metadata")
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return status.Error(codes.Unauthenticated, "invalid token")
	}
	return nil
}

// BearerToken returns the token of an "authorization: Bearer <token>"
// metadata entry of an incoming call.
func BearerToken(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:]), true
		}
	}
	return "", false
}

// UnaryInterceptor enforces the policy on unary calls.
func (p *Policy) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := p.Check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor enforces the policy on streaming calls.
func (p *Policy) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := p.Check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// Bearer is per-RPC credentials that send a token as "authorization: Bearer".
type Bearer struct {
	Token string
	// Insecure allows sending the token over a connection without TLS (for
	// loopback and in-cluster plaintext).
	Insecure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.Token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b Bearer) RequireTransportSecurity() bool { return !b.Insecure }

// NewToken returns prefix followed by 43 URL-safe characters: 256 bits from
// a CSPRNG, the shape of PostHog's "phc_" project tokens.
func NewToken(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand.Read does not fail on supported platforms.
		panic(fmt.Sprintf("auth: crypto/rand: %v", err))
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// LoadOrCreate returns the trimmed contents of the file at path, creating it
// (mode 0600, parent directories 0700) with create() when it does not exist.
// A second start thereby finds the token or key of the first.
func LoadOrCreate(path string, create func() string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("auth: %s is empty", path)
		}
		return v, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("auth: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	v := create()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("auth: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("auth: write %s: %w", path, err)
	}
	return v, nil
}

// ReadSecretFile returns the trimmed contents of a token or key file.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("auth: %s is empty", path)
	}
	return v, nil
}
