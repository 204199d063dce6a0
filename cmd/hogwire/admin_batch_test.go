package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// Batch flags set a destination's batch delivery on create and update
// (keeping the fields not given); get and templates show print it; the
// server refuses values past the template's caps.
func TestAdminBatchDelivery(t *testing.T) {
	s := startAdminStack(t)
	s.ok("projects", "create", "shop", "--name", "Shop")

	if out := s.ok("templates", "show", "braze"); !strings.Contains(out, "Batch:         up to 75 events or 1.0 MiB per request, waiting at most 1s for a batch to fill (a destination may set at most 75 events)") {
		t.Errorf("templates show braze:\n%s", out)
	}
	s.ok("destinations", "create", "--project", "shop", "--id", "bulk", "--template", "webhook-batch",
		"--input", "url=https://example.invalid/in", "--batch-max-wait", "250ms")
	d := s.getDestination("bulk")
	if b := d.GetBatch(); b.GetMaxEvents() != 100 || b.GetMaxBytes() != 1<<20 || b.GetMaxWait().AsDuration() != 250*time.Millisecond {
		t.Errorf("created batch %v: want the template's with max_wait 250ms", b)
	}
	s.ok("destinations", "update", "bulk", "--batch-max-events", "500", "--batch-max-bytes", "512KiB")
	d = s.getDestination("bulk")
	if b := d.GetBatch(); b.GetMaxEvents() != 500 || b.GetMaxBytes() != 512<<10 || b.GetMaxWait().AsDuration() != 250*time.Millisecond {
		t.Errorf("updated batch %v", b)
	}
	if out := s.ok("destinations", "get", "bulk"); !strings.Contains(out, "Batch: up to 500 events or 512 KiB per request, waiting at most 250ms for a batch to fill") {
		t.Errorf("get:\n%s", out)
	}
	out := s.fails(codes.InvalidArgument, "destinations", "update", "bulk", "--batch-max-events", "1001")
	if !strings.Contains(out, "destination.batch.max_events") {
		t.Errorf("a batch too big:\n%s", out)
	}
}
