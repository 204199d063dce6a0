package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/embednats/natstest"
	"github.com/hogwire/hogwire/eventlimits"
)

// A publish repeated with the same uuid (a sender retrying) is stored once;
// a consumed event that is not acknowledged comes back after AckWait.
func TestDuplicatesDroppedAndUnackedRedelivered(t *testing.T) {
	l, _ := startLog(t, eventlog.Config{AckWait: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev := &hogwirev1.Event{Uuid: "0191f1a3-4b2c-7d8e-9f00-112233445566", Event: "e", DistinctId: "u"}
	for range 3 {
		if err := l.Publish(ctx, "shop", []*hogwirev1.Event{ev}, nil); err != nil {
			t.Fatal(err)
		}
	}

	got := make(chan *eventlog.Message, 10)
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Consume(cctx, 10, func(m *eventlog.Message) { got <- m }) }()
	first := <-got
	if first.Project != "shop" || len(first.Data) != 1 || decoded(t, first)[0].Uuid != ev.Uuid || first.Redelivered != 0 {
		t.Fatalf("first delivery %+v", first)
	}
	// Not acknowledged: redelivered after AckWait, and nothing else came.
	select {
	case again := <-got:
		if decoded(t, again)[0].Uuid != ev.Uuid || again.Redelivered != 1 {
			t.Fatalf("redelivery %+v", again)
		}
		if err := again.Ack(); err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an unacknowledged event was not redelivered")
	}
	select {
	case m := <-got:
		t.Fatalf("a third delivery (duplicate publish or acked event): %+v", m)
	case <-time.After(1500 * time.Millisecond):
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func decoded(t *testing.T, m *eventlog.Message) []*hogwirev1.Event {
	t.Helper()
	events, err := m.Events()
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// startLog opens a memory log on a fresh embedded NATS server.
func startLog(t testing.TB, cfg eventlog.Config) (*eventlog.Log, *nats.Conn) {
	t.Helper()
	nc := natstest.Connect(t)
	cfg.Conn, cfg.Memory = nc, true
	l, err := eventlog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, nc
}

// consumeAll acknowledges messages until want events arrived, then waits a
// little for any extra message, and returns what came.
func consumeAll(t *testing.T, l *eventlog.Log, want int) []*eventlog.Message {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	got := make(chan *eventlog.Message, 1000)
	done := make(chan error, 1)
	go func() {
		done <- l.Consume(ctx, 50, func(m *eventlog.Message) { _ = m.Ack(); got <- m })
	}()
	var msgs []*eventlog.Message
	events := 0
	deadline := time.After(20 * time.Second)
	for events < want {
		select {
		case m := <-got:
			msgs = append(msgs, m)
			events += len(m.Data)
		case <-deadline:
			t.Fatalf("%d of %d events consumed", events, want)
		}
	}
	select {
	case m := <-got:
		t.Fatalf("more than %d events: message %d with %d", want, m.Seq, len(m.Data))
	case <-time.After(500 * time.Millisecond):
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return msgs
}

// The events of one publish share messages of at most MaxEventsPerMessage
// events, in order; publishing the same batch again (a sender retrying) is
// dropped as a duplicate.
func TestBatchesShareMessages(t *testing.T) {
	l, _ := startLog(t, eventlog.Config{MaxEventsPerMessage: 100})
	ctx := context.Background()
	events := make([]*hogwirev1.Event, 250)
	for i := range events {
		events[i] = &hogwirev1.Event{Uuid: fmt.Sprintf("0191f1a3-0000-7000-8000-%012d", i), Event: "e", DistinctId: "u"}
	}
	for range 2 {
		if err := l.Publish(ctx, "shop", events, nats.Header{"Traceparent": {"x"}}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := consumeAll(t, l, len(events))
	var sizes []int
	i := 0
	for _, m := range msgs {
		sizes = append(sizes, len(m.Data))
		if m.Project != "shop" || m.Header.Get("Traceparent") != "x" {
			t.Errorf("message %d: project %q, headers %v", m.Seq, m.Project, m.Header)
		}
		for _, ev := range decoded(t, m) {
			if ev.Uuid != events[i].Uuid {
				t.Fatalf("event %d is %s, want %s", i, ev.Uuid, events[i].Uuid)
			}
			i++
		}
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Errorf("events per message %v, want [100 100 50]", sizes)
	}
}

// Messages stay under the server's payload limit: large events are split
// over more messages, however many the count limit allows.
func TestLargeEventsSplitBySize(t *testing.T) {
	l, nc := startLog(t, eventlog.Config{})
	big := strings.Repeat("x", int(nc.MaxPayload())/3)
	events := make([]*hogwirev1.Event, 5)
	for i := range events {
		props, err := structpb.NewStruct(map[string]any{"blob": big})
		if err != nil {
			t.Fatal(err)
		}
		events[i] = &hogwirev1.Event{Uuid: fmt.Sprintf("0191f1a3-0000-7000-8000-%012d", i), Event: "e", Properties: props}
	}
	if err := l.Publish(context.Background(), "shop", events, nil); err != nil {
		t.Fatal(err)
	}
	msgs := consumeAll(t, l, len(events))
	if len(msgs) != 3 {
		t.Errorf("%d messages, want 3 (two events of a third of the limit each, and one)", len(msgs))
	}
}

// A message stored before events were grouped (one bare Event, no format
// header) is still read, so an upgrade loses nothing in the log.
func TestReadsSingleEventMessages(t *testing.T) {
	l, nc := startLog(t, eventlog.Config{})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ev := &hogwirev1.Event{Uuid: "0191f1a3-4b2c-7d8e-9f00-112233445566", Event: "old", DistinctId: "u"}
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), "hogwire.events.shop", data); err != nil {
		t.Fatal(err)
	}
	msgs := consumeAll(t, l, 1)
	if got := decoded(t, msgs[0])[0]; got.Uuid != ev.Uuid || got.Event != "old" || msgs[0].Project != "shop" {
		t.Errorf("read %v", got)
	}
}

func numbered(n int, props func(i int) *structpb.Struct) []*hogwirev1.Event {
	events := make([]*hogwirev1.Event, n)
	for i := range events {
		events[i] = &hogwirev1.Event{Uuid: fmt.Sprintf("0191f1a3-0000-7000-8000-%012d", i), Event: "e", DistinctId: "u"}
		if props != nil {
			events[i].Properties = props(i)
		}
	}
	return events
}

func blob(n int) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{"blob": structpb.NewStringValue(strings.Repeat("x", n))}}
}

// uuids lists the events of the messages, in order.
func uuids(t *testing.T, msgs []*eventlog.Message) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		for _, ev := range decoded(t, m) {
			out = append(out, ev.Uuid)
		}
	}
	return out
}

// A publish that spans several messages is stored whole or not at all:
// when the server refuses one of its messages, none is stored, and the
// same publish retried later is stored exactly once.
func TestMultiMessagePublishIsAtomic(t *testing.T) {
	l, nc := startLog(t, eventlog.Config{MaxEventsPerMessage: 10})
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	setMaxMsgSize := func(n int32) {
		t.Helper()
		st, err := js.Stream(ctx, "HOGWIRE_EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.MaxMsgSize = n
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	// Events 20–29 form the third message, too large for the stream's
	// message size limit; the first two messages fit.
	events := numbered(35, func(i int) *structpb.Struct {
		if i >= 20 && i < 30 {
			return blob(2000)
		}
		return nil
	})
	setMaxMsgSize(8000)
	if err := l.Publish(ctx, "shop", events, nil); err == nil {
		t.Fatal("a publish with a refused message succeeded")
	}
	setMaxMsgSize(-1)
	if err := l.Publish(ctx, "shop", events, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Publish(ctx, "shop", events, nil); err != nil {
		t.Fatalf("a retry of a stored publish: %v", err)
	}
	got := uuids(t, consumeAll(t, l, len(events)))
	if len(got) != len(events) {
		t.Fatalf("%d events stored, want %d", len(got), len(events))
	}
	for i, u := range got {
		if u != events[i].Uuid {
			t.Fatalf("event %d is %s, want %s", i, u, events[i].Uuid)
		}
	}
}

// An event too large for any message fails the publish before anything
// is stored, with an error naming it.
func TestOversizedEventStoresNothing(t *testing.T) {
	l, nc := startLog(t, eventlog.Config{})
	events := numbered(150, nil)
	events[120].Properties = blob(int(nc.MaxPayload()))
	err := l.Publish(context.Background(), "shop", events, nil)
	var tl *eventlimits.TooLargeError
	if !errors.As(err, &tl) || tl.Index != 120 || tl.Max > l.MaxEventBytes() {
		t.Fatalf("error %v, want a TooLargeError for event 120", err)
	}
	// The rest, sent again without it, is stored exactly once.
	rest := append(events[:120:120], events[121:]...)
	for range 2 {
		if err := l.Publish(context.Background(), "shop", rest, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := uuids(t, consumeAll(t, l, len(rest))); len(got) != len(rest) {
		t.Fatalf("%d events stored, want %d", len(got), len(rest))
	}
	// An event exactly as large as MaxEventBytes fits.
	big := numbered(1, nil)[0]
	big.Uuid = "0191f1a3-0000-7000-8000-999999999999"
	for n := l.MaxEventBytes() - 200; proto.Size(big) != l.MaxEventBytes(); n += l.MaxEventBytes() - proto.Size(big) {
		big.Properties = blob(n)
	}
	if err := l.Publish(context.Background(), "shop", []*hogwirev1.Event{big}, nil); err != nil {
		t.Fatalf("an event of MaxEventBytes: %v", err)
	}
}

// A different publish that happens to share events with a stored one is
// stored, not mistaken for a retry: nothing of it is lost.
func TestOverlappingPublishesAreNotDuplicates(t *testing.T) {
	l, _ := startLog(t, eventlog.Config{MaxEventsPerMessage: 100})
	events := numbered(150, nil)
	ctx := context.Background()
	if err := l.Publish(ctx, "shop", events[:100], nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Publish(ctx, "shop", events, nil); err != nil {
		t.Fatal(err)
	}
	got := uuids(t, consumeAll(t, l, 250))
	seen := map[string]int{}
	for _, u := range got {
		seen[u]++
	}
	for i, ev := range events {
		if want := 1 + btoi(i < 100); seen[ev.Uuid] != want {
			t.Errorf("event %d stored %d times, want %d", i, seen[ev.Uuid], want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A publish that would need more messages than one atomic write takes is
// grouped more densely instead.
func TestManyEventsRegrouped(t *testing.T) {
	l, _ := startLog(t, eventlog.Config{MaxEventsPerMessage: 1})
	events := numbered(eventlog.MaxMessagesPerWrite+500, nil)
	if err := l.Publish(context.Background(), "shop", events, nil); err != nil {
		t.Fatal(err)
	}
	msgs := consumeAll(t, l, len(events))
	if len(msgs) > eventlog.MaxMessagesPerWrite {
		t.Errorf("%d messages", len(msgs))
	}
	if got := uuids(t, msgs); len(got) != len(events) {
		t.Errorf("%d events stored, want %d", len(got), len(events))
	}
}

// BenchmarkPublish measures storing one request of 100 events (one
// message) and of 250 (three messages, an atomic batch), in memory.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{100, 250} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			l, _ := startLog(b, eventlog.Config{MaxEventsPerMessage: 100})
			events := numbered(n, func(int) *structpb.Struct { return blob(200) })
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// New uuids each time, so nothing is a duplicate.
				for _, ev := range events {
					ev.Uuid = fmt.Sprintf("0191f1a3-0000-7000-8000-%012d", i)
					i++
				}
				if err := l.Publish(ctx, "shop", events, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func encodings(t *testing.T, events []*hogwirev1.Event) ([]string, [][]byte) {
	t.Helper()
	ids, data := make([]string, len(events)), make([][]byte, len(events))
	for i, ev := range events {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		ids[i], data[i] = ev.Uuid, b
	}
	return ids, data
}

// PublishEncoded stores encoded events as Publish stores the Events: in
// the same messages, under the same request id (so a retry through either
// is dropped), refusing an oversized event with the same error.
func TestPublishEncodedAsPublish(t *testing.T) {
	l, nc := startLog(t, eventlog.Config{MaxEventsPerMessage: 100})
	ctx := context.Background()
	events := numbered(250, func(i int) *structpb.Struct { return blob(i) })
	ids, data := encodings(t, events)
	if err := l.PublishEncoded(ctx, "shop", ids, data, nats.Header{"Traceparent": {"x"}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Publish(ctx, "shop", events, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.PublishEncoded(ctx, "shop", ids, data, nil); err != nil {
		t.Fatal(err)
	}
	msgs := consumeAll(t, l, len(events))
	var sizes []int
	i := 0
	for _, m := range msgs {
		sizes = append(sizes, len(m.Data))
		if m.Project != "shop" || m.Header.Get("Traceparent") != "x" {
			t.Errorf("message %d: project %q, headers %v", m.Seq, m.Project, m.Header)
		}
		for j, ev := range decoded(t, m) {
			if !proto.Equal(ev, events[i]) || string(m.Data[j]) != string(data[i]) {
				t.Fatalf("event %d is %v, want %v", i, ev, events[i])
			}
			i++
		}
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Errorf("events per message %v, want [100 100 50] (and no duplicates)", sizes)
	}

	events[120].Properties = blob(int(nc.MaxPayload()))
	ids, data = encodings(t, events)
	want := l.Publish(ctx, "shop", events, nil)
	got := l.PublishEncoded(ctx, "shop", ids, data, nil)
	var tl *eventlimits.TooLargeError
	if !errors.As(got, &tl) || got.Error() != want.Error() {
		t.Fatalf("PublishEncoded: %v; Publish: %v", got, want)
	}
}
