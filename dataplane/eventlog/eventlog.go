// Package eventlog is the data plane's durable event log on NATS
// JetStream. Ingest publishes and returns only once JetStream has stored
// every event; nodes consume as one work-queue group, and events leave the
// log only when the node processing them acknowledges them.
//
// The events of one publish (a capture batch) are stored together, up to
// MaxEventsPerMessage per JetStream message: JetStream's cost is per
// message (store, publish ack, delivery, ack, removal), and it dominated
// the cost of an event when every event was a message of its own. The
// message is the unit of acknowledgement and redelivery. A publish that
// needs several messages is one JetStream atomic batch: stored whole or
// not at all.
//
// Delivery is at least once. Two windows can repeat an event:
//   - a sender retrying a publish: a publish's id is a digest of its
//     project and its events' uuids, so a retry of the same batch within
//     DuplicateWindow (default 2 minutes) stores nothing new;
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
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
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
	// DuplicateWindow is how long JetStream remembers a publish's id (a
	// digest of its events' uuids) to drop a repeated publish (default 2
	// minutes).
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
	parked jetstream.Stream
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
		cfg.Subject = DefaultSubject
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
		// A request split over several messages is written as one
		// atomic batch.
		AllowAtomicPublish: true,
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: stream %s: %w", cfg.Stream, err)
	}
	if !st.CachedInfo().Config.AllowAtomicPublish {
		return nil, fmt.Errorf("eventlog: stream %s: the NATS server does not support atomic batch publishing; hogwire needs NATS 2.12 or later", cfg.Stream)
	}
	l := &Log{cfg: cfg, js: js, stream: st, log: cfg.Logger}
	if l.parked, err = l.openParked(ctx, storage); err != nil {
		return nil, err
	}
	return l, nil
}

// formatHeader marks messages that hold a sequence of events (protobuf
// field 1, repeated, like a message with `repeated Event events = 1`).
// Messages without it hold one Event: the format before events were
// stored together, still read so that an upgrade loses nothing.
const (
	formatHeader = "Hogwire-Format"
	formatEvents = "events"
)

// JetStream's atomic batch headers (ADR-50) and the error codes Publish
// treats specially.
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"

	errBatchDuplicate jetstream.ErrorCode = 10201 // the batch holds a message id already stored
	errBatchInflight  jetstream.ErrorCode = 10210 // too many batches open on the stream
	errDupInProgress  jetstream.ErrorCode = 10158 // the same message id is being stored right now
)

// MaxMessagesPerWrite is how many messages one atomic write may hold:
// the NATS server's default limit on an atomic batch.
const MaxMessagesPerWrite = 1000

// headerRoom is left under the server's payload limit for a message's
// headers (format, trace context, message and batch ids).
const headerRoom = 4096

// MaxEventBytes is the largest encoded event a message can hold.
func (l *Log) MaxEventBytes() int {
	return int(l.cfg.Conn.MaxPayload()) - headerRoom - protowire.SizeTag(1) - protowire.SizeVarint(uint64(l.cfg.Conn.MaxPayload()))
}

// Publish stores events of one project, all of them or none, and returns
// once JetStream has stored them. Headers (e.g. trace context) are added to
// each message.
//
// Events are grouped into messages of up to MaxEventsPerMessage events and
// the payload limit. A request that needs several messages is written as
// one JetStream atomic batch, so a failure part-way stores nothing. Its
// first message carries an id derived from the project and the events'
// uuids in order: the same request published again within
// DuplicateWindow (a client retrying after a lost answer) is recognised
// and stores nothing new, however its events were grouped. An event too
// large for any message is an *eventlimits.TooLargeError, and nothing is
// stored.
func (l *Log) Publish(ctx context.Context, project string, events []*hogwirev1.Event, header nats.Header) error {
	if len(events) == 0 {
		return nil
	}
	msgs, err := l.messages(project, len(events), header,
		func(first, perMessage, maxBytes int) ([]byte, int, error) {
			return encode(events, first, perMessage, maxBytes)
		},
		func(i int) string { return events[i].Uuid })
	if err != nil {
		return err
	}
	return l.write(ctx, msgs)
}

// PublishEncoded is Publish for events already encoded, each a
// hogwire.v1.Event's protobuf encoding, whose uuids are uuids: they are
// grouped, identified and stored as Publish stores them, without being
// encoded again.
func (l *Log) PublishEncoded(ctx context.Context, project string, uuids []string, events [][]byte, header nats.Header) error {
	if len(events) == 0 {
		return nil
	}
	if len(uuids) != len(events) {
		return fmt.Errorf("eventlog: %d uuids for %d events", len(uuids), len(events))
	}
	msgs, err := l.messages(project, len(events), header,
		func(first, perMessage, maxBytes int) ([]byte, int, error) {
			return pack(events, first, perMessage, maxBytes)
		},
		func(i int) string { return uuids[i] })
	if err != nil {
		return err
	}
	return l.write(ctx, msgs)
}

// newMsg is a message of events with header.
func newMsg(subject string, data []byte, header nats.Header) *nats.Msg {
	h := make(nats.Header, len(header)+1)
	h[formatHeader] = []string{formatEvents}
	for k, v := range header {
		h[k] = v
	}
	return &nats.Msg{Subject: subject, Data: data, Header: h}
}

// fit counts how many of n events from first go in one message body, by
// their sizes: fewer than maxEvents, within maxBytes framed (but at least
// one). It returns the body's size and the index after the last taken,
// or a TooLargeError for an event that fits in no message.
func fit(n int, size func(int) int, first, maxEvents, maxBytes int) (int, int, error) {
	total := 0
	i := first
	for ; i < n && i-first < maxEvents; i++ {
		size := size(i)
		framed := protowire.SizeTag(1) + protowire.SizeVarint(uint64(size)) + size
		if framed > maxBytes {
			return 0, 0, &eventlimits.TooLargeError{Index: i, Size: size, Max: maxBytes - (framed - size)}
		}
		if i > first && total+framed > maxBytes {
			break
		}
		total += framed
	}
	return total, i, nil
}

// pack is encode for encoded events.
func pack(events [][]byte, first, maxEvents, maxBytes int) ([]byte, int, error) {
	total, i, err := fit(len(events), func(i int) int { return len(events[i]) }, first, maxEvents, maxBytes)
	if err != nil {
		return nil, 0, err
	}
	data := make([]byte, 0, total)
	for _, ev := range events[first:i] {
		data = protowire.AppendTag(data, 1, protowire.BytesType)
		data = protowire.AppendBytes(data, ev)
	}
	return data, i, nil
}

// DefaultSubject is the subjects' prefix unless Config.Subject says.
const DefaultSubject = "hogwire.events"

// NewMessage returns a message of already encoded events of project, for
// the default subject, as Republish stores them: the control plane, which
// does not open the log, hands reruns to nodes with it.
func NewMessage(project string, events [][]byte, header nats.Header) *nats.Msg {
	var data []byte
	for _, ev := range events {
		data = protowire.AppendTag(data, 1, protowire.BytesType)
		data = protowire.AppendBytes(data, ev)
	}
	m := &nats.Msg{Subject: DefaultSubject + "." + project, Data: data, Header: nats.Header{formatHeader: {formatEvents}}}
	for k, v := range header {
		m.Header[k] = v
	}
	return m
}

// Republish stores already encoded events (as Message.Data holds them)
// again, all of them or none, with header, grouped as Publish groups
// events. id deduplicates: the same id within the duplicate window stores
// nothing again.
func (l *Log) Republish(ctx context.Context, project string, events [][]byte, header nats.Header, id string) error {
	if len(events) == 0 {
		return nil
	}
	subject := l.cfg.Subject + "." + project
	maxBytes := int(l.cfg.Conn.MaxPayload()) - headerRoom
	perMessage := max(l.cfg.MaxEventsPerMessage, (len(events)+MaxMessagesPerWrite-1)/MaxMessagesPerWrite)
	var msgs []*nats.Msg
	for first := 0; first < len(events); {
		var data []byte
		i := first
		for ; i < len(events) && i-first < perMessage; i++ {
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
		msgs = append(msgs, m)
		first = i
	}
	if len(msgs) > MaxMessagesPerWrite {
		return &eventlimits.TooLargeError{Index: -1, Size: len(msgs), Max: MaxMessagesPerWrite}
	}
	msgs[0].Header.Set(jetstream.MsgIDHeader, id)
	return l.write(ctx, msgs)
}

// write stores msgs, the first carrying the write's deduplication id, as
// one message or one atomic batch.
func (l *Log) write(ctx context.Context, msgs []*nats.Msg) error {
	if len(msgs) == 1 {
		return l.publishOne(ctx, msgs[0])
	}
	// Batches open at once are limited per stream; when the server is
	// at that limit, wait a little, as for any busy server.
	wait := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := l.publishBatch(ctx, msgs)
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != errBatchInflight || attempt == 5 {
			return err
		}
		select {
		case <-time.After(wait):
			wait *= 2
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// messages groups n events into message bodies, which body packs (from
// first, at most perMessage events within maxBytes; see fit), and sets
// their headers. The first message carries the request's id, made of the
// events' uuids.
func (l *Log) messages(project string, n int, header nats.Header, body func(first, perMessage, maxBytes int) ([]byte, int, error), uuid func(int) string) ([]*nats.Msg, error) {
	subject := l.cfg.Subject + "." + project
	maxBytes := int(l.cfg.Conn.MaxPayload()) - headerRoom
	perMessage := max(l.cfg.MaxEventsPerMessage, (n+MaxMessagesPerWrite-1)/MaxMessagesPerWrite)
	var msgs []*nats.Msg
	for first := 0; first < n; {
		data, last, err := body(first, perMessage, maxBytes)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, newMsg(subject, data, header))
		first = last
	}
	if len(msgs) > MaxMessagesPerWrite {
		return nil, &eventlimits.TooLargeError{Index: -1, Size: len(msgs), Max: MaxMessagesPerWrite}
	}
	msgs[0].Header.Set(jetstream.MsgIDHeader, requestID(project, n, uuid))
	return msgs, nil
}

// publishOne stores a single message; JetStream drops it as a duplicate
// when its id was stored within the window.
func (l *Log) publishOne(ctx context.Context, m *nats.Msg) error {
	f, err := l.js.PublishMsgAsync(m)
	if err != nil {
		return fmt.Errorf("eventlog: publish: %w", err)
	}
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return fmt.Errorf("eventlog: publish: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publishBatch stores messages as one atomic batch. Only the commit is
// answered: a message lost on the way makes the server refuse the commit
// (a gap in the batch's sequence), and a batch never committed is
// discarded by the server after its batch timeout.
func (l *Log) publishBatch(ctx context.Context, msgs []*nats.Msg) error {
	id := nuid.Next()
	for i, m := range msgs {
		m.Header.Set(batchIDHeader, id)
		m.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := l.cfg.Conn.PublishMsg(m); err != nil {
				return fmt.Errorf("eventlog: publish: %w", err)
			}
		}
	}
	commit := msgs[len(msgs)-1]
	commit.Header.Set(batchCommitHeader, "1")
	err := l.publishOne(ctx, commit)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errBatchDuplicate {
		// The request's id was stored within the window, and a batch is
		// stored whole: this request is already in the log.
		return nil
	}
	return err
}

// encode packs events[first:] into one message body, stopping before
// maxEvents events or maxBytes bytes (but taking at least one event), and
// returns the body and the index after the last event taken. The events'
// sizes are taken first (proto caches them for the marshalling), so that
// the body is allocated once at its size rather than grown while a
// hundred events are appended.
func encode(events []*hogwirev1.Event, first, maxEvents, maxBytes int) ([]byte, int, error) {
	total, i, err := fit(len(events), func(i int) int { return proto.Size(events[i]) }, first, maxEvents, maxBytes)
	if err != nil {
		return nil, 0, err
	}
	cached := proto.MarshalOptions{UseCachedSize: true}
	data := make([]byte, 0, total)
	for _, ev := range events[first:i] {
		data = protowire.AppendTag(data, 1, protowire.BytesType)
		data = protowire.AppendVarint(data, uint64(cached.Size(ev)))
		var err error
		if data, err = cached.MarshalAppend(data, ev); err != nil {
			return nil, 0, fmt.Errorf("eventlog: encoding event %s: %w", ev.Uuid, err)
		}
	}
	return data, i, nil
}

// requestID is the JetStream deduplication id of a publish: a digest of
// the project and the events' uuids in order. Two publishes share it only
// when they hold the same events, so finding it stored means this request
// is stored.
func requestID(project string, n int, uuid func(int) string) string {
	h := sha256.New()
	h.Write([]byte(project))
	for i := range n {
		h.Write([]byte{0})
		h.Write([]byte(uuid(i)))
	}
	return "req-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// split returns the encoded events of a message.
func split(msg jetstream.Msg) ([][]byte, error) {
	data := msg.Data()
	if msg.Headers().Get(formatHeader) != formatEvents {
		return [][]byte{data}, nil
	}
	// Counted first, so that the slice is made once at its size.
	n, err := eachEvent(data, func([]byte) {})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errors.New("no events")
	}
	events := make([][]byte, 0, n)
	_, _ = eachEvent(data, func(b []byte) { events = append(events, b) })
	return events, nil
}

// eachEvent calls f with each event of a message body (repeated field 1)
// and returns how many there are.
func eachEvent(data []byte, f func([]byte)) (int, error) {
	count := 0
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		data = data[n:]
		if num != 1 || typ != protowire.BytesType {
			return 0, fmt.Errorf("unexpected field %d of type %d", num, typ)
		}
		b, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		data = data[n:]
		f(b)
		count++
	}
	return count, nil
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
	return l.consume(ctx, l.stream, jetstream.ConsumerConfig{
		Durable:       l.cfg.Consumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       l.cfg.AckWait,
		MaxAckPending: l.cfg.MaxAckPending,
		MaxDeliver:    -1,
	}, l.cfg.Subject, batch, split, handle)
}

// consume delivers the messages of a consumer of st to handle until ctx
// ends; subject is the prefix of the stream's subjects before the project.
func (l *Log) consume(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig, subject string, batch int,
	split func(jetstream.Msg) ([][]byte, error), handle func(*Message)) error {
	cons, err := st.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("eventlog: consumer %s: %w", cfg.Durable, err)
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
		project, _, _ := strings.Cut(strings.TrimPrefix(msg.Subject(), subject+"."), ".")
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
