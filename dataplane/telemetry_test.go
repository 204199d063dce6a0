package dataplane_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// What the code prints reaches the control plane's shared log storage.
func TestPrintedLinesAreStored(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	resp, err := hogwirev1.NewDestinationServiceClient(st.admin).CreateDestination(context.Background(), &hogwirev1.CreateDestinationRequest{
		Parent: p.Name, DestinationId: "printer",
		Destination: &hogwirev1.Destination{DisplayName: "printer", Enabled: true, Hog: "print(f'hello {event.distinct_id}')"},
	})
	if err != nil {
		t.Fatal(err)
	}
	st.waitConfig(t, 1)
	st.publish(t, p.CaptureToken, ev("signed_up", "u42"))
	waitStat(t, st, resp.Destination.Name, "succeeded", 1)

	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		c, err := js.OrderedConsumer(ctx, "HOGWIRE_LOGS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"hogwire.logs.shop.printer"}})
		if err == nil {
			batch, err := c.FetchNoWait(100)
			if err == nil {
				var found *hogwirev1.LogEntry
				// Read the whole batch: the fetch goroutine ends only when
				// every message was taken.
				for m := range batch.Messages() {
					e := &hogwirev1.LogEntry{}
					if err := proto.Unmarshal(m.Data(), e); err != nil {
						t.Fatal(err)
					}
					if strings.Contains(e.Message, "hello u42") {
						found = e
					}
				}
				if e := found; e != nil {
					if e.InvocationId == "" || e.EventUuid == "" || e.NodeId != "dev" || e.Level != hogwirev1.LogLevel_LOG_LEVEL_INFO {
						t.Fatalf("stored %v", e)
					}
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the printed line never reached the log storage")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
