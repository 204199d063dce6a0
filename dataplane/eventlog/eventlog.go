// Package eventlog is the data plane's durable event log on NATS
// JetStream. Ingest publishes and returns only once JetStream has stored
// every event; nodes consume as one work-queue group, and events leave the
// log only when the node processing them acknowledges them.
//
// The events of one publish (a capture batch) are stored together, up to
// MaxEventsPerMessage per JetStream message: JetStream's cost is per
// message (store, publish ack, delivery, ack, removal), and it dominated
// the cost of an event when every event was a message of its own. The
// message is the unit of acknowledgement and redelivery.
//
// Delivery is at least once. Two windows can repeat an event:
//   - a sender retrying a publish: a message's id is its event's uuid, or
//     a digest of its events' uuids, so a retry of the same batch within
//     DuplicateWindow (default 2 minutes) is dropped by JetStream itself;
//   - a node dying after delivering some of a message's events but before
//     acknowledging it: after AckWait (default 60s) JetStream redelivers
//     the message to another node, which runs every matching destination
//     on each of its events again. Long-running messages are kept alive
//     with progress acknowledgements, so only a dead node causes a
//     redelivery.
package eventlog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"
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
	// MaxAckPending bounds messages in flight across all nodes (default
	// 20000).
	MaxAckPending int
	// MaxEventsPerMessage is how many events of one publish share a
	// JetStream message (default 100). 1 stores every event alone.
	MaxEventsPerMessage int
	Logger              *slog.Logger
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
	if cfg.MaxEventsPerMessage <= 0 {
		cfg.MaxEventsPerMessage = 100
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

// formatHeader marks messages that hold a sequence of events (protobuf
// field 1, repeated, like a message with `repeated Event events = 1`).
// Messages without it hold one Event: the format before events were
// stored together, still read so that an upgrade loses nothing.
const (
	formatHeader = "Hogwire-Format"
	formatEvents = "events"
)

// Publish stores events of one project and returns once JetStream has
// acknowledged every one of them. Headers (e.g. trace context) are added to
// each message.
func (l *Log) Publish(ctx context.Context, project string, events []*hogwirev1.Event, header nats.Header) error {
	subject := l.cfg.Subject + "." + project
	// Leave room for headers under the server's payload limit.
	maxBytes := int(l.cfg.Conn.MaxPayload()) - 4096
	var futures []jetstream.PubAckFuture
	for first := 0; first < len(events); {
		data, last, err := encode(events, first, l.cfg.MaxEventsPerMessage, maxBytes)
		if err != nil {
			return err
		}
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{formatHeader: {formatEvents}}}
		for k, v := range header {
			m.Header[k] = v
		}
		f, err := l.js.PublishMsgAsync(m, jetstream.WithMsgID(messageID(events[first:last])))
		if err != nil {
			return fmt.Errorf("eventlog: publish: %w", err)
		}
		futures = append(futures, f)
		first = last
	}
	return awaitAcks(ctx, futures)
}

// Republish stores already encoded events (as Message.Data holds them)
// again, with header, in messages of at most MaxEventsPerMessage events.
// id deduplicates: the same id within the duplicate window stores nothing
// again (each message gets id and its index).
func (l *Log) Republish(ctx context.Context, project string, events [][]byte, header nats.Header, id string) error {
	subject := l.cfg.Subject + "." + project
	maxBytes := int(l.cfg.Conn.MaxPayload()) - 4096
	var futures []jetstream.PubAckFuture
	for first, part := 0, 0; first < len(events); part++ {
		var data []byte
		i := first
		for ; i < len(events) && i-first < l.cfg.MaxEventsPerMessage; i++ {
			if i > first && len(data)+len(events[i])+16 > maxBytes {
				break
			}
			data = protowire.AppendTag(data, 1, protowire.BytesType)
			data = protowire.AppendBytes(data, events[i])
		}
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{formatHeader: {formatEvents}}}
		for k, v := range header {
			m.Header[k] = v
		}
		f, err := l.js.PublishMsgAsync(m, jetstream.WithMsgID(id+"-"+strconv.Itoa(part)))
		if err != nil {
			return fmt.Errorf("eventlog: publish: %w", err)
		}
		futures = append(futures, f)
		first = i
	}
	return awaitAcks(ctx, futures)
}

// awaitAcks waits until JetStream has stored every message published.
func awaitAcks(ctx context.Context, futures []jetstream.PubAckFuture) error {
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

// encode packs events[first:] into one message body, stopping before
// maxEvents events or maxBytes bytes (but taking at least one event), and
// returns the body and the index after the last event taken.
func encode(events []*hogwirev1.Event, first, maxEvents, maxBytes int) ([]byte, int, error) {
	var data []byte
	i := first
	for ; i < len(events) && i-first < maxEvents; i++ {
		size := proto.Size(events[i])
		if i > first && len(data)+size+protowire.SizeVarint(uint64(size))+1 > maxBytes {
			break
		}
		data = protowire.AppendTag(data, 1, protowire.BytesType)
		data = protowire.AppendVarint(data, uint64(size))
		var err error
		if data, err = (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(data, events[i]); err != nil {
			return nil, 0, fmt.Errorf("eventlog: encoding event %s: %w", events[i].Uuid, err)
		}
	}
	return data, i, nil
}

// messageID is the JetStream deduplication id of a message: the event's
// uuid for one event, else a digest of the uuids in order, so that a sender
// retrying the same batch stores it once.
func messageID(events []*hogwirev1.Event) string {
	if len(events) == 1 {
		return events[0].Uuid
	}
	h := sha256.New()
	for _, ev := range events {
		h.Write([]byte(ev.Uuid))
		h.Write([]byte{0})
	}
	return "events-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// split returns the encoded events of a message.
func split(msg jetstream.Msg) ([][]byte, error) {
	data := msg.Data()
	if msg.Headers().Get(formatHeader) != formatEvents {
		return [][]byte{data}, nil
	}
	var events [][]byte
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		data = data[n:]
		if num != 1 || typ != protowire.BytesType {
			return nil, fmt.Errorf("unexpected field %d of type %d", num, typ)
		}
		b, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		data = data[n:]
		events = append(events, b)
	}
	if len(events) == 0 {
		return nil, errors.New("no events")
	}
	return events, nil
}

// Message is a stored message handed to a consumer: one or more events of
// one project, published together.
type Message struct {
	// Data holds each event's protobuf encoding (a hogwire.v1.Event), left
	// for the consumer to decode as far as it needs.
	Data    [][]byte
	Header  nats.Header
	Project string
	// Redelivered counts earlier deliveries of the same message (a node
	// died, was too slow or handed it back).
	Redelivered uint64
	// Seq is the message's sequence number in the stream.
	Seq uint64
	msg jetstream.Msg
}

// Events decodes the message's events.
func (m *Message) Events() ([]*hogwirev1.Event, error) {
	events := make([]*hogwirev1.Event, len(m.Data))
	for i, b := range m.Data {
		events[i] = &hogwirev1.Event{}
		if err := proto.Unmarshal(b, events[i]); err != nil {
			return nil, fmt.Errorf("eventlog: event %d of message %d: %w", i, m.Seq, err)
		}
	}
	return events, nil
}

// Ack removes the message's events from the log: every destination is
// done with every one of them.
func (m *Message) Ack() error { return m.msg.Ack() }

// InProgress tells JetStream the message is still being worked on,
// resetting its AckWait.
func (m *Message) InProgress() error { return m.msg.InProgress() }

// Nak asks for redelivery after delay.
func (m *Message) Nak(delay time.Duration) error { return m.msg.NakWithDelay(delay) }

// Consume delivers stored messages to handle until ctx ends. handle owns
// the message and must eventually Ack (or Nak) it. At most batch messages
// are pulled at once.
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
		events, err := split(msg)
		if err != nil {
			// A message we cannot read will never become readable: drop it
			// rather than redeliver it forever.
			l.log.Error("dropping an unreadable message", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			return
		}
		md, _ := msg.Metadata()
		var redelivered, seq uint64
		if md != nil {
			seq = md.Sequence.Stream
			if md.NumDelivered > 1 {
				redelivered = md.NumDelivered - 1
			}
		}
		// The subject names the project the event was published for; it
		// wins over the event's own field.
		project := strings.TrimPrefix(msg.Subject(), l.cfg.Subject+".")
		handle(&Message{Data: events, Header: msg.Headers(), Project: project, Redelivered: redelivered, Seq: seq, msg: msg})
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
