package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hogwire/hogwire/deliverystate"
)

// A destination's max_rate holds across every node because the nodes
// share one schedule of request times per destination, a generic cell rate
// algorithm (GCRA) whose state — the "theoretical arrival time" (TAT), the
// time the next request may go — is one key of the JetStream key-value
// bucket HOGWIRE_RATES. A node that needs to send reserves a few
// consecutive slots at once with a compare-and-set on that key (from
// max(TAT, now), one every 1/rate), and each request then waits for its
// slot. Slots never overlap, so the rate at the endpoint is the limit
// however the events spread over the nodes, and a node that has nothing to
// send takes no share from the others. A slot not used within one slot's
// time of when it came is let go: under-use, never a burst.
//
// The other way, each node taking rate/N, is simpler but holds only while
// the events spread evenly: JetStream hands a backlog to whichever node
// pulls first, so one node could hold all the events of a destination and
// send at rate/N. The cost here is one key-value round trip per
// reservation, made about every 50 ms per busy destination and node.

// ratesBucket holds one key per rate-limited destination ("r.<key>") and
// one per live node ("n.<hash of its id>") for the node count that splits
// max_requests_in_flight.
const ratesBucket = "HOGWIRE_RATES"

// reservePeriod is about how much of the schedule one reservation takes.
const reservePeriod = 50 * time.Millisecond

// nodeTTL is how long a node counts as live after it last said so.
const nodeTTL = 15 * time.Second

type rates struct {
	kv  jetstream.KeyValue
	log *slog.Logger
	// nodes is the number of live nodes, at least 1.
	nodes atomic.Int32
}

func openRates(ctx context.Context, nc *nats.Conn, log *slog.Logger) (*rates, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ratesBucket,
		Description: "per destination, when its next request may go (max_rate), and the live data-plane nodes",
		History:     1,
		TTL:         nodeTTL,
		// The schedule is worth nothing after a restart of NATS.
		Storage: jetstream.MemoryStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("dataplane: bucket %s: %w", ratesBucket, err)
	}
	r := &rates{kv: kv, log: log}
	r.nodes.Store(1)
	return r, nil
}

// heartbeat says this node is live, and counts the live nodes, until ctx
// ends.
func (r *rates) heartbeat(ctx context.Context, nodeID string) {
	h := sha256.Sum256([]byte(nodeID))
	key := "n." + hex.EncodeToString(h[:8])
	beat := func() {
		if _, err := r.kv.Put(ctx, key, []byte(nodeID)); err != nil {
			r.log.Debug("announcing the node", "err", err)
			return
		}
		l, err := r.kv.ListKeysFiltered(ctx, "n.*")
		if err != nil {
			return
		}
		n := int32(0)
		for range l.Keys() {
			n++
		}
		r.nodes.Store(max(n, 1))
	}
	beat()
	every(ctx, nodeTTL/3, beat)
}

// limiter spaces one destination's requests from this node within the
// shared schedule.
type limiter struct {
	r   *rates
	key string

	mu sync.Mutex
	// slots are the times reserved and not used yet, ascending, one
	// 1/rate apart.
	slots []time.Time
	rate  float64
}

func (r *rates) limiter(dest string) *limiter {
	return &limiter{r: r, key: "r." + deliverystate.Key(dest)}
}

// reserve returns the time this node's next request may go at rate
// requests per second.
func (l *limiter) reserve(ctx context.Context, rate float64) (time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rate != l.rate {
		l.slots, l.rate = nil, rate
	}
	interval := time.Duration(float64(time.Second) / rate)
	now := time.Now()
	for len(l.slots) > 0 {
		t := l.slots[0]
		l.slots = l.slots[1:]
		if t.After(now.Add(-interval)) {
			return t, nil
		}
	}
	k := int(math.Ceil(rate * reservePeriod.Seconds()))
	k = min(max(k, 1), 1000)
	start, err := l.take(ctx, k, interval, now)
	if err != nil {
		return time.Time{}, err
	}
	for i := 1; i < k; i++ {
		l.slots = append(l.slots, start.Add(time.Duration(i)*interval))
	}
	return start, nil
}

// take reserves k slots in the shared schedule and returns the first.
func (l *limiter) take(ctx context.Context, k int, interval time.Duration, now time.Time) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		var rev uint64
		tat := now
		e, err := l.r.kv.Get(ctx, l.key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return time.Time{}, err
		default:
			rev = e.Revision()
			if ns, perr := strconv.ParseInt(string(e.Value()), 10, 64); perr == nil {
				tat = time.Unix(0, ns)
			}
		}
		start := tat
		if start.Before(now) {
			start = now
		}
		next := []byte(strconv.FormatInt(start.Add(time.Duration(k)*interval).UnixNano(), 10))
		if rev == 0 {
			_, err = l.r.kv.Create(ctx, l.key, next)
		} else {
			_, err = l.r.kv.Update(ctx, l.key, next, rev)
		}
		if err == nil {
			return start, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return time.Time{}, err
		}
		// Another node reserved in between: read again.
		now = time.Now()
	}
	return time.Time{}, ctx.Err()
}
