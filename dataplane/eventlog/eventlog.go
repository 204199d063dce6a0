// Package eventlog is the data plane's durable event log on NATS
// JetStream. Ingest publishes and returns only once JetStream has stored
// every event; nodes consume as one work-queue group, and an event leaves
// the log only when the node processing it acknowledges it.
//
// Delivery is at least once. Two windows can repeat an event:
//   - a sender retrying a publish: events carry their uuid as the
//     JetStream message id, so a repeat within DuplicateWindow (default
//     2 minutes) is dropped by JetStream itself;
//   - a node dying after delivering an event to some destinations but
//     before acknowledging it: after AckWait (default 60s) JetStream
//     redelivers it to another node, which runs every matching
//     destination again. Long-running events are kept alive with progress
//     acknowledgements, so only a dead node causes a redelivery.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// Config configures the log.
type Config struct {
	Conn *nats.Conn
	// Stream is the JetStream stream name (default "HOGWIRE_EVENTS"); its
	// subjects are "<Subject>.<project id>" (default subject "hogwire.events").
	Stream, Subject string
	// Memory stores events in memory instead of on disk (faster, lost when
	// NATS restarts).
	Memory bool
	// Replicas of the stream in a NATS cluster (default 1).
	Replicas int
	// MaxAge drops events nobody consumed after this long (default 7 days).
	MaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers event uuids to drop
	// repeated publishes (default 2 minutes).
	DuplicateWindow time.Duration
	// Consumer is the durable consumer all nodes share (default "dataplane").
	Consumer string
	// AckWait is how long a node may hold an event without a progress ack
	// before JetStream redelivers it elsewhere (default 60s).
	AckWait time.Duration
	// MaxAckPending bounds events in flight across all nodes (default 20000).
	MaxAckPending int
	Logger        *slog.Logger
}

// Log is the durable event log.
type Log struct {
	cfg    Config
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
}

// Open creates or updates the stream and consumer and returns the log.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Conn == nil {
		return nil, errors.New("eventlog: a NATS connection is required")
	}
	if cfg.Stream == "" {
		cfg.Stream = "HOGWIRE_EVENTS"
	}
	if cfg.Subject == "" {
		cfg.Subject = "hogwire.events"
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 7 * 24 * time.Hour
	}
	if cfg.DuplicateWindow <= 0 {
		cfg.DuplicateWindow = 2 * time.Minute
	}
	if cfg.Consumer == "" {
		cfg.Consumer = "dataplane"
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 60 * time.Second
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = 20000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "hogwire events awaiting delivery",
		Subjects:    []string{cfg.Subject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: stream %s: %w", cfg.Stream, err)
	}
	return &Log{cfg: cfg, js: js, stream: st, log: cfg.Logger}, nil
}

// Publish stores events of one project and returns once JetStream has
// acknowledged every one of them. Headers (e.g. trace context) are added to
// each message.
func (l *Log) Publish(ctx context.Context, project string, events []*hogwirev1.Event, header nats.Header) error {
	subject := l.cfg.Subject + "." + project
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, ev := range events {
		data, err := proto.Marshal(ev)
		if err != nil {
			return fmt.Errorf("eventlog: encoding event %s: %w", ev.Uuid, err)
		}
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		for k, v := range header {
			m.Header[k] = v
		}
		f, err := l.js.PublishMsgAsync(m, jetstream.WithMsgID(ev.Uuid))
		if err != nil {
			return fmt.Errorf("eventlog: publish: %w", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("eventlog: publish: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Message is one stored event handed to a consumer.
type Message struct {
	Event   *hogwirev1.Event
	Header  nats.Header
	Project string
	// Redelivered counts earlier deliveries of the same event (a node died
	// or was too slow).
	Redelivered uint64
	msg         jetstream.Msg
}

// Ack removes the event from the log: every destination is done with it.
func (m *Message) Ack() error { return m.msg.Ack() }

// InProgress tells JetStream the event is still being worked on, resetting
// its AckWait.
func (m *Message) InProgress() error { return m.msg.InProgress() }

// Nak asks for redelivery after delay.
func (m *Message) Nak(delay time.Duration) error { return m.msg.NakWithDelay(delay) }

// Consume delivers stored events to handle until ctx ends. handle owns the
// message and must eventually Ack (or Nak) it. At most batch messages are
// pulled at once.
func (l *Log) Consume(ctx context.Context, batch int, handle func(*Message)) error {
	cons, err := l.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       l.cfg.Consumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       l.cfg.AckWait,
		MaxAckPending: l.cfg.MaxAckPending,
		MaxDeliver:    -1,
	})
	if err != nil {
		return fmt.Errorf("eventlog: consumer %s: %w", l.cfg.Consumer, err)
	}
	if batch <= 0 {
		batch = 500
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		ev := &hogwirev1.Event{}
		if err := proto.Unmarshal(msg.Data(), ev); err != nil {
			// A message we cannot read will never become readable: drop it
			// rather than redeliver it forever.
			l.log.Error("dropping an unreadable event", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			return
		}
		md, _ := msg.Metadata()
		var redelivered uint64
		if md != nil && md.NumDelivered > 1 {
			redelivered = md.NumDelivered - 1
		}
		// The subject names the project the event was published for; it
		// wins over the event's own field.
		project := strings.TrimPrefix(msg.Subject(), l.cfg.Subject+".")
		handle(&Message{Event: ev, Header: msg.Headers(), Project: project, Redelivered: redelivered, msg: msg})
	}, jetstream.PullMaxMessages(batch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if ctx.Err() == nil {
			l.log.Warn("consuming events", "err", err)
		}
	}))
	if err != nil {
		return fmt.Errorf("eventlog: consume: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

// AckWait is the configured ack wait.
func (l *Log) AckWait() time.Duration { return l.cfg.AckWait }
