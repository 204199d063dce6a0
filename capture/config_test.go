package capture_test

import (
	flag "github.com/spf13/pflag"
	"io"
	"testing"
	"time"

	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/eventlimits"
)

// The flags default to the documented defaults and set the Config.
func TestRegisterFlags(t *testing.T) {
	var c capture.Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if c.MaxBodyBytes != capture.DefaultMaxBodyBytes || c.MemoryBytes != capture.DefaultMemoryBytes ||
		c.Limits.MaxEventBytes != eventlimits.DefaultMaxEventBytes || c.Server.ReadHeaderTimeout != capture.DefaultReadHeaderTimeout {
		t.Fatalf("defaults %+v", c)
	}
	err := fs.Parse([]string{
		"--max-body-size", "5MiB", "--max-decompressed-size", "10MB", "--max-decompression-ratio", "50",
		"--capture-memory", "1GiB", "--capture-retry-after", "5s", "--max-event-size", "512KiB",
		"--max-batch-events", "500", "--max-event-properties", "300", "--max-string-size", "4096",
		"--http-read-timeout", "30s", "--http-max-requests-per-conn", "7",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := capture.Config{
		MaxBodyBytes: 5 << 20, MaxDecompressedBytes: 10_000_000, MaxDecompressionRatio: 50, MemoryBytes: 1 << 30,
		RetryAfter: 5 * time.Second,
		Limits:     eventlimits.Limits{MaxEventBytes: 512 << 10, MaxBatchEvents: 500, MaxProperties: 300, MaxStringBytes: 4096},
	}
	if c.MaxBodyBytes != want.MaxBodyBytes || c.MaxDecompressedBytes != want.MaxDecompressedBytes ||
		c.MaxDecompressionRatio != want.MaxDecompressionRatio || c.MemoryBytes != want.MemoryBytes ||
		c.RetryAfter != want.RetryAfter || c.Limits != want.Limits ||
		c.Server.ReadTimeout != 30*time.Second || c.Server.MaxRequestsPerConn != 7 {
		t.Errorf("parsed %+v", c)
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse([]string{"--max-body-size", "lots"}); err == nil {
		t.Error("a size that is no size was accepted")
	}
}
