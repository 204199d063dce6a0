package eventlog_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/embednats"
)

// A publish repeated with the same uuid (a sender retrying) is stored once;
// a consumed event that is not acknowledged comes back after AckWait.
func TestDuplicatesDroppedAndUnackedRedelivered(t *testing.T) {
	ns, err := embednats.Start(embednats.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := eventlog.Open(ctx, eventlog.Config{Conn: nc, Memory: true, AckWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
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
	if first.Project != "shop" || first.Event.Uuid != ev.Uuid || first.Redelivered != 0 {
		t.Fatalf("first delivery %+v", first)
	}
	// Not acknowledged: redelivered after AckWait, and nothing else came.
	select {
	case again := <-got:
		if again.Event.Uuid != ev.Uuid || again.Redelivered != 1 {
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
