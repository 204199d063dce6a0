package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hogwire/hogwire/deliverystate"
)

// The parked stream holds invocations waiting to be retried later (a
// destination that failed, or paused by Retry-After), one message each,
// apart from the events: its consumer allows any number of messages in
// flight, since a parked message stays unacknowledged, waiting for its
// time, for as long as an hour, and must not hold up new events. A
// message whose time has not come is handed back with a delay (Nak), so
// JetStream itself keeps the schedule: it survives the loss of any node.
//
// Its subjects are "<Subject>_parked.<project>.<destination key>", so the
// backlog of each destination can be counted (ParkedDepth).

// MaxParkedAge is how long the parked stream keeps a message: more than
// any retry schedule may last.
const MaxParkedAge = 8 * 24 * time.Hour

// Streams names the log's JetStream streams: events, and parked
// invocations.
func (l *Log) Streams() []string { return []string{l.cfg.Stream, l.parkedStream()} }

func (l *Log) parkedStream() string { return l.cfg.Stream + "_PARKED" }

func (l *Log) parkedSubject() string { return l.cfg.Subject + "_parked" }

func (l *Log) openParked(ctx context.Context, storage jetstream.StorageType) (jetstream.Stream, error) {
	name := l.parkedStream()
	st, err := l.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "hogwire invocations waiting to be retried",
		Subjects:    []string{l.parkedSubject() + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storage,
		Replicas:    l.cfg.Replicas,
		MaxAge:      MaxParkedAge,
		Duplicates:  l.cfg.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: stream %s: %w", name, err)
	}
	return st, nil
}

// DestinationKey is the subject token of a destination in the parked
// stream.
func DestinationKey(destination string) string { return deliverystate.Key(destination) }

// Park stores one parked invocation of a destination of project; id
// deduplicates within the duplicate window.
func (l *Log) Park(ctx context.Context, project, destination string, body []byte, header nats.Header, id string) error {
	m := &nats.Msg{Subject: l.parkedSubject() + "." + project + "." + DestinationKey(destination), Data: body, Header: nats.Header{}}
	for k, v := range header {
		m.Header[k] = v
	}
	m.Header.Set(jetstream.MsgIDHeader, id)
	return l.publishOne(ctx, m)
}

// ConsumeParked delivers parked messages (Data holds the body given to
// Park) to handle until ctx ends, as Consume does.
func (l *Log) ConsumeParked(ctx context.Context, batch int, handle func(*Message)) error {
	return l.consume(ctx, l.parked, jetstream.ConsumerConfig{
		Durable:   l.cfg.Consumer + "_parked",
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   l.cfg.AckWait,
		// Waiting messages are in flight: there is no bound but the
		// stream's.
		MaxAckPending: -1,
		MaxDeliver:    -1,
	}, l.parkedSubject(), batch, func(m jetstream.Msg) ([][]byte, error) { return [][]byte{m.Data()}, nil }, handle)
}

// ParkedDepth counts the parked messages of every destination that has
// some, by DestinationKey.
func (l *Log) ParkedDepth(ctx context.Context) (map[string]uint64, error) {
	info, err := l.parked.Info(ctx, jetstream.WithSubjectFilter(l.parkedSubject()+".>"))
	if err != nil {
		return nil, fmt.Errorf("eventlog: parked stream: %w", err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		out[subj[strings.LastIndexByte(subj, '.')+1:]] += n
	}
	return out, nil
}

func (l *Log) parkedDestSubject(project, destination string) string {
	return l.parkedSubject() + "." + project + "." + DestinationKey(destination)
}

// PurgeParked drops every parked message of a destination and returns about
// how many there were (messages parked meanwhile may be counted or not).
func (l *Log) PurgeParked(ctx context.Context, project, destination string) (uint64, error) {
	subj := l.parkedDestSubject(project, destination)
	info, err := l.parked.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return 0, fmt.Errorf("eventlog: parked stream: %w", err)
	}
	if err := l.parked.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
		return 0, fmt.Errorf("eventlog: purging parked messages: %w", err)
	}
	return info.State.Subjects[subj], nil
}

// OldestParked returns the body of a destination's parked message stored
// first, or nil when it has none.
func (l *Log) OldestParked(ctx context.Context, project, destination string) ([]byte, error) {
	m, err := l.parked.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(l.parkedDestSubject(project, destination)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}
