package eventlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// OpenBucket creates or updates a JetStream key-value bucket the data
// plane keeps beside the event stream (pauses, masking hashes, …). It is
// stored and replicated as the stream is (cfg.Memory, cfg.Replicas), so a
// NATS cluster keeps it as long as it keeps the events.
func OpenBucket(ctx context.Context, cfg Config, kv jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Conn == nil {
		return nil, errors.New("eventlog: a NATS connection is required")
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	kv.Storage = jetstream.FileStorage
	if cfg.Memory {
		kv.Storage = jetstream.MemoryStorage
	}
	kv.Replicas = max(cfg.Replicas, 1)
	b, err := js.CreateOrUpdateKeyValue(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("eventlog: bucket %s: %w", kv.Bucket, err)
	}
	return b, nil
}
