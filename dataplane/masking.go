package dataplane

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
)

// masker remembers masking hashes in a JetStream key-value bucket shared by
// every node, each key expiring after its destination's TTL, so that an
// event is masked whichever node sees it.
type masker struct {
	kv jetstream.KeyValue
}

// maskingBucket holds the hashes; its keys carry their own TTL.
const maskingBucket = "HOGWIRE_MASKING"

func openMasker(ctx context.Context, nc *nats.Conn, lc eventlog.Config) (*masker, error) {
	kv, err := openBucket(ctx, nc, lc, jetstream.KeyValueConfig{
		Bucket:         maskingBucket,
		Description:    "masking hashes of destinations, each expiring after its destination's TTL",
		History:        1,
		TTL:            7 * 24 * time.Hour, // the longest masking TTL the API accepts
		LimitMarkerTTL: time.Minute,
	})
	if err != nil {
		return nil, err
	}
	return &masker{kv: kv}, nil
}

// openBucket creates or updates one of the node's key-value buckets, with
// the event log's storage and replicas.
func openBucket(ctx context.Context, nc *nats.Conn, lc eventlog.Config, kc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kc.Storage, kc.Replicas = jetstream.FileStorage, max(lc.Replicas, 1)
	if lc.Memory {
		kc.Storage = jetstream.MemoryStorage
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, kc)
	if err != nil {
		return nil, fmt.Errorf("dataplane: bucket %s: %w", kc.Bucket, err)
	}
	return kv, nil
}

// mask reports whether an event with this hash was already let through
// threshold times within ttl for the destination, and otherwise records it.
// Each occurrence takes one of threshold slots, created with the TTL; the
// event is masked when every slot is taken. Creating a key is atomic in
// JetStream, so two nodes never take the same slot.
func (m *masker) mask(ctx context.Context, d *hogwirev1.Destination, hash string) (bool, error) {
	ms := d.GetMasking()
	threshold := ms.GetThreshold()
	if threshold <= 0 {
		threshold = 1
	}
	ttl := ms.GetTtl().AsDuration()
	project, id := projectOf(d.Name), lastSegment(d.Name)
	for slot := int64(1); slot <= threshold; slot++ {
		key := project + "." + id + "." + hash + "." + strconv.FormatInt(slot, 10)
		_, err := m.kv.Create(ctx, key, nil, jetstream.KeyTTL(ttl))
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, jetstream.ErrKeyExists):
			continue
		default:
			return false, err
		}
	}
	return true, nil
}

func lastSegment(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[i+1:]
		}
	}
	return name
}
