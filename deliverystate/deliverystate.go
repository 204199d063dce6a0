// Package deliverystate is the shared record of how each destination's
// delivery stands: its pause (no request may go to it until a time) and its
// backlog (invocations parked in the event log). Data-plane nodes write both to
// JetStream key-value buckets; every node watches the pauses, and the
// control plane reads both to show them ("hogwire destinations get").
package deliverystate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The buckets, one key per destination (its Key).
const (
	PausesBucket  = "HOGWIRE_PAUSES"
	BacklogBucket = "HOGWIRE_BACKLOG"
)

// Key is a destination's key in the buckets, and its subject token in the
// parked stream: destination names hold characters keys may not.
func Key(destination string) string {
	h := sha256.Sum256([]byte(destination))
	return hex.EncodeToString(h[:8])
}

// Pause says no request may go to a destination until a time.
type Pause struct {
	Destination string    `json:"destination"`
	Until       time.Time `json:"until"`
	Reason      string    `json:"reason"`
	// Breaker is set when the circuit breaker opened the pause (the
	// endpoint kept failing), not a Retry-After; Trips counts the
	// breaker's openings in a row, which lengthen its pauses.
	Breaker bool `json:"breaker,omitempty"`
	Trips   int  `json:"trips,omitempty"`
}

// Backlog is a destination's parked invocations, as a node last counted
// them.
type Backlog struct {
	Destination string `json:"destination"`
	Events      int64  `json:"events"`
	// Bytes is an estimate: Events times the mean size of what was parked.
	Bytes int64 `json:"bytes"`
	// Oldest is when the oldest parked invocation was first parked.
	Oldest time.Time `json:"oldest"`
	// Observed is when it was counted.
	Observed time.Time `json:"observed"`
}

// Open creates (or opens) both buckets through open, which sets their
// storage and replicas (the data plane stores them as it stores events).
func Open(ctx context.Context, open func(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error)) (pauses, backlog jetstream.KeyValue, err error) {
	pauses, err = open(ctx, jetstream.KeyValueConfig{
		Bucket:      PausesBucket,
		Description: "destinations paused by Retry-After or the circuit breaker, until when",
		History:     1,
		// Longer than any pause (Retry-After and breaker pauses are
		// clamped to an hour by default), so that ended pauses leave
		// nothing behind, and long enough to remember a breaker's trips.
		TTL: 6 * time.Hour,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("delivery: %w", err)
	}
	backlog, err = open(ctx, jetstream.KeyValueConfig{
		Bucket:      BacklogBucket,
		Description: "per destination, the parked invocations as last counted",
		History:     1,
		// A backlog no node counts any more (no node runs) is stale after
		// this; nodes rewrite it every few seconds.
		TTL: time.Hour,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("delivery: %w", err)
	}
	return pauses, backlog, nil
}

// Read returns the pause and backlog of a destination from js's buckets;
// either is nil when there is none (or no data plane ever made the
// buckets).
func Read(ctx context.Context, js jetstream.JetStream, destination string) (*Pause, *Backlog, error) {
	var p Pause
	var b Backlog
	pok, err := get(ctx, js, PausesBucket, destination, &p)
	if err != nil {
		return nil, nil, err
	}
	bok, err := get(ctx, js, BacklogBucket, destination, &b)
	if err != nil {
		return nil, nil, err
	}
	var pp *Pause
	var bp *Backlog
	if pok && p.Until.After(time.Now()) {
		pp = &p
	}
	if bok {
		bp = &b
	}
	return pp, bp, nil
}

func get(ctx context.Context, js jetstream.JetStream, bucket, destination string, v any) (bool, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	e, err := kv.Get(ctx, Key(destination))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return json.Unmarshal(e.Value(), v) == nil, nil
}
