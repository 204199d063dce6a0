package controlplane

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embednats/natstest"
)

// Stored logs are bounded per destination, and a node cannot write outside
// the destination namespace.
func TestTelemetryStoreBoundsLogs(t *testing.T) {
	nc := natstest.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := openTelemetry(ctx, TelemetryConfig{Conn: nc, MaxLogsPerDestination: 5})
	if err != nil {
		t.Fatal(err)
	}
	req := &hogwirev1.ReportRequest{NodeId: "n1"}
	for i := range 8 {
		req.Logs = append(req.Logs, &hogwirev1.LogEntry{Time: timestamppb.Now(), Message: string(rune('a' + i)), Destination: "projects/p/destinations/d"})
	}
	req.Logs = append(req.Logs, &hogwirev1.LogEntry{Message: "evil", Destination: "projects/p/destinations/d.x>"})
	if err := st.store(ctx, req); err != nil {
		t.Fatal(err)
	}
	logs, err := st.readLogs(ctx, "projects/p/destinations/d")
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 5 || logs[0].Message != "d" || logs[4].Message != "h" || logs[0].NodeId != "n1" {
		var got []string
		for _, l := range logs {
			got = append(got, l.Message)
		}
		t.Fatalf("stored %v, want the newest 5 (d…h) with the node id", got)
	}
}
