package capture

import (
	"context"
	flag "github.com/spf13/pflag"
	"log/slog"
	"time"

	"github.com/hogwire/hogwire/bytesize"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
	"github.com/hogwire/hogwire/metrics"
)

// Tokens resolves a capture token to its project id.
type Tokens interface {
	Project(token string) (projectID string, ok bool)
}

// Publisher stores events durably: all of them or none. It returns only
// once every event is stored (for JetStream: acknowledged); an error means
// none is stored, and the caller reports a retryable failure, unless it is
// an *eventlimits.TooLargeError, which retrying cannot cure. ctx carries
// the request's span.
type Publisher interface {
	Publish(ctx context.Context, projectID string, events []*hogwirev1.Event) error
}

// EncodedPublisher is a Publisher that also stores events already
// encoded. The HTTP API encodes the events it builds itself and hands a
// Publisher that is one the encodings, rather than the Events to be
// encoded again by reflection. The rules of Publish hold.
type EncodedPublisher interface {
	Publisher
	// PublishEncoded stores events, each a hogwire.v1.Event's protobuf
	// encoding, whose uuids are uuids (in the same order).
	PublishEncoded(ctx context.Context, projectID string, uuids []string, events [][]byte) error
}

// Defaults for Config's zero values.
const (
	DefaultMaxBodyBytes          = 20 << 20
	DefaultMaxDecompressedBytes  = 20 << 20
	DefaultMaxDecompressionRatio = 100
	DefaultMemoryBytes           = 128 << 20
	DefaultRetryAfter            = 2 * time.Second
	DefaultStreamWindow          = 16
)

// Config configures the HTTP handler and the gRPC service. Tokens and
// Publisher are required; the rest have defaults.
type Config struct {
	Tokens    Tokens
	Publisher Publisher
	// Limits are the event limits enforced on both HTTP and gRPC.
	Limits eventlimits.Limits
	// MaxBodyBytes caps a request body as received, compressed or not.
	MaxBodyBytes int64
	// MaxDecompressedBytes caps a body after gzip or base64 decoding.
	MaxDecompressedBytes int64
	// MaxDecompressionRatio caps how many times its size a gzip body may
	// inflate (bodies may always inflate to 1 MiB).
	MaxDecompressionRatio int
	// MemoryBytes is the budget of bytes requests in flight may hold
	// (bodies as received, decoded and parsed). Past it requests get 503
	// with Retry-After; one request may hold at most three quarters of
	// it, and requests that need more get 413.
	MemoryBytes int64
	// RetryAfter is what 503 answers tell clients to wait.
	RetryAfter time.Duration
	// Server configures the HTTP server NewServer returns.
	Server ServerConfig
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
	AnonymizeIPs bool
	// Webhooks runs inbound webhooks at WebhookPath (nil: every id is
	// unknown).
	Webhooks Webhooks
	// Metrics counts requests' events and bytes by endpoint and status
	// (nil: not counted).
	Metrics        *metrics.Ingest
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
	c.Limits = c.Limits.WithDefaults()
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxDecompressedBytes <= 0 {
		c.MaxDecompressedBytes = DefaultMaxDecompressedBytes
	}
	if c.MaxDecompressionRatio <= 0 {
		c.MaxDecompressionRatio = DefaultMaxDecompressionRatio
	}
	if c.MemoryBytes <= 0 {
		c.MemoryBytes = DefaultMemoryBytes
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	c.Server = c.Server.withDefaults()
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

// RegisterFlags adds the capture limits to fs, with c's values (or the
// defaults) as the flags' defaults; parsing fs sets them in c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := Config{Tokens: noTokens{}, Publisher: noPublisher{}}.withDefaults()
	set := func(v *int64, def int64) *int64 {
		if *v <= 0 {
			*v = def
		}
		return v
	}
	l := &c.Limits
	*l = l.WithDefaults()
	fs.Var((*bytesize.Int64)(set(&c.MaxBodyBytes, d.MaxBodyBytes)), "max-body-size", "largest HTTP capture body as received, compressed or not (413 beyond)")
	fs.Var((*bytesize.Int64)(set(&c.MaxDecompressedBytes, d.MaxDecompressedBytes)), "max-decompressed-size", "largest HTTP capture body after gzip or base64 decoding (413 beyond)")
	fs.IntVar(&c.MaxDecompressionRatio, "max-decompression-ratio", d.MaxDecompressionRatio, "how many times its size a gzip body may inflate, above 1 MiB (413 beyond)")
	fs.Var((*bytesize.Int64)(set(&c.MemoryBytes, d.MemoryBytes)), "capture-memory", "memory requests in flight may hold together (503 with Retry-After beyond; one request may hold three quarters)")
	fs.DurationVar(&c.RetryAfter, "capture-retry-after", d.RetryAfter, "Retry-After of 503 answers")
	fs.Var((*bytesize.Int)(&l.MaxEventBytes), "max-event-size", "largest event, as stored (413 beyond; must fit the NATS server's max_payload)")
	fs.IntVar(&l.MaxBatchEvents, "max-batch-events", l.MaxBatchEvents, "most events in one request (413 beyond)")
	fs.IntVar(&l.MaxProperties, "max-event-properties", l.MaxProperties, "most property keys of an event, nested keys included (400 beyond)")
	fs.Var((*bytesize.Int)(&l.MaxStringBytes), "max-string-size", "longest string in an event: name, ids, keys and values (413 beyond)")
	c.Server.registerFlags(fs)
}

type noTokens struct{}

func (noTokens) Project(string) (string, bool) { return "", false }

type noPublisher struct{}

func (noPublisher) Publish(context.Context, string, []*hogwirev1.Event) error { return nil }
