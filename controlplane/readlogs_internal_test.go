package controlplane

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// readLogs returns a destination's stored log entries, oldest first (tests read them
// directly, beside LogService).
func (t *telemetryStore) readLogs(ctx context.Context, destination string) ([]*hogwirev1.LogEntry, error) {
	sub, ok := subjectOf(destination)
	if !ok {
		return nil, fmt.Errorf("bad destination %q", destination)
	}
	c, err := t.js.OrderedConsumer(ctx, logsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{logsSubject + "." + sub}})
	if err != nil {
		return nil, err
	}
	var out []*hogwirev1.LogEntry
	for {
		info, err := c.Info(ctx)
		if err != nil {
			return nil, err
		}
		if info.NumPending == 0 {
			return out, nil
		}
		batch, err := c.FetchNoWait(int(min(info.NumPending, 1000)))
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			e := &hogwirev1.LogEntry{}
			if proto.Unmarshal(m.Data(), e) == nil {
				out = append(out, e)
			}
		}
		if batch.Error() != nil {
			return nil, batch.Error()
		}
	}
}
