package dataplane

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

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

func openMasker(ctx context.Context, cfg eventlog.Config) (*masker, error) {
	kv, err := eventlog.OpenBucket(ctx, cfg, jetstream.KeyValueConfig{
		Bucket:         maskingBucket,
		Description:    "masking hashes of destinations, each expiring after its destination's TTL",
		History:        1,
		TTL:            7 * 24 * time.Hour, // the longest masking TTL the API accepts
		LimitMarkerTTL: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("dataplane: masking: %w", err)
	}
	return &masker{kv: kv}, nil
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
