package capture

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// Tokens resolves a capture token to its project id.
type Tokens interface {
	Project(token string) (projectID string, ok bool)
}

// Publisher stores events durably. It returns only once every event is
// stored (for JetStream: acknowledged); an error means none may be assumed
// stored, and the caller reports a retryable failure. ctx carries the
// request's span.
type Publisher interface {
	Publish(ctx context.Context, projectID string, events []*hogwirev1.Event) error
}

// Defaults for Config's zero values.
const (
	DefaultMaxBodyBytes         = 20 << 20
	DefaultMaxDecompressedBytes = 100 << 20
	DefaultMaxBatch             = 10_000
	DefaultStreamWindow         = 16
)

// Config configures the HTTP handler and the gRPC service. Tokens and
// Publisher are required; the rest have defaults.
type Config struct {
	Tokens    Tokens
	Publisher Publisher
	// MaxBodyBytes caps a request body as received, compressed or not.
	MaxBodyBytes int64
	// MaxDecompressedBytes caps a body after gzip or base64 decoding.
	MaxDecompressedBytes int64
	// MaxBatch caps the events of one request. PostHog itself limits
	// bytes only; the cap keeps one request from monopolising a Publish.
	MaxBatch int
	// StreamWindow is how many PublishStream requests of one stream may be
	// publishing at once. Responses are always sent in request order, but
	// batches in flight together may be stored in any order; 1 stores
	// them strictly in order.
	StreamWindow int
	// Now is the server clock used for default timestamps and skew
	// correction.
	Now func() time.Time
	// AnonymizeIPs leaves out the $ip property that HTTP capture otherwise
	// sets from the client's address, as PostHog's project setting of the
	// same name does.
	AnonymizeIPs   bool
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
}

// withDefaults fills in zero values. A Config without Tokens or Publisher
// is a programming error, reported at construction rather than on the
// first request.
func (c Config) withDefaults() Config {
	if c.Tokens == nil || c.Publisher == nil {
		panic("capture: Config.Tokens and Config.Publisher are required")
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxDecompressedBytes <= 0 {
		c.MaxDecompressedBytes = DefaultMaxDecompressedBytes
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.StreamWindow <= 0 {
		c.StreamWindow = DefaultStreamWindow
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
	return c
}
