package capture_test

import (
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posthog/posthog-go"

	"github.com/hogwire/hogwire/capture"
)

type sdkCallback struct{ ok, failed atomic.Int64 }

func (c *sdkCallback) Success(posthog.APIMessage)        { c.ok.Add(1) }
func (c *sdkCallback) Failure(posthog.APIMessage, error) { c.failed.Add(1) }

type sdkLogger struct{ t *testing.T }

func (l sdkLogger) Logf(format string, args ...any)   { l.t.Logf("posthog-go: "+format, args...) }
func (l sdkLogger) Errorf(format string, args ...any) { l.t.Errorf("posthog-go: "+format, args...) }

// The real PostHog Go SDK, pointed at the handler, delivers every event
// with its name, distinct id, properties and $set.
func TestPostHogGoSDK(t *testing.T) {
	const n = 1000
	pub := &memPublisher{}
	srv := httptest.NewServer(capture.NewHandler(testConfig(pub)))
	defer srv.Close()

	cb := &sdkCallback{}
	client, err := posthog.NewWithConfig(testToken, posthog.Config{
		Endpoint:  srv.URL,
		BatchSize: 100,
		Interval:  50 * time.Millisecond,
		Callback:  cb,
		Logger:    sdkLogger{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		err := client.Enqueue(posthog.Capture{
			DistinctId: fmt.Sprintf("user-%d", i),
			Event:      fmt.Sprintf("event-%d", i%7),
			Properties: posthog.NewProperties().
				Set("i", i).
				Set("plan", "pro").
				Set("$set", map[string]any{"email": fmt.Sprintf("u%d@example.com", i)}),
			Groups: posthog.NewGroups().Set("company", fmt.Sprintf("c%d", i%3)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if cb.ok.Load() != n || cb.failed.Load() != 0 {
		t.Errorf("SDK callbacks: %d succeeded, %d failed", cb.ok.Load(), cb.failed.Load())
	}

	evs := pub.all()
	if len(evs) != n {
		t.Fatalf("%d events arrived, want %d", len(evs), n)
	}
	seen := make(map[int]bool, n)
	uuids := make(map[string]bool, n)
	for _, ev := range evs {
		props := ev.GetProperties().AsMap()
		fi, ok := props["i"].(float64)
		if !ok {
			t.Fatalf("event %v lacks property i", ev)
		}
		i := int(fi)
		if seen[i] {
			t.Errorf("event %d arrived twice", i)
		}
		seen[i] = true
		if ev.Event != fmt.Sprintf("event-%d", i%7) || ev.DistinctId != fmt.Sprintf("user-%d", i) || ev.Project != testProject {
			t.Errorf("event %d: %q/%q/%q", i, ev.Event, ev.DistinctId, ev.Project)
		}
		if props["plan"] != "pro" || props["$lib"] != "posthog-go" {
			t.Errorf("event %d properties %v", i, props)
		}
		if got := ev.GetSet().AsMap()["email"]; got != fmt.Sprintf("u%d@example.com", i) {
			t.Errorf("event %d $set email %v", i, got)
		}
		if ev.Groups["company"] != fmt.Sprintf("c%d", i%3) {
			t.Errorf("event %d groups %v", i, ev.Groups)
		}
		if ev.Timestamp == nil || ev.Uuid == "" || uuids[ev.Uuid] {
			t.Errorf("event %d timestamp %v uuid %q (duplicate: %v)", i, ev.Timestamp, ev.Uuid, uuids[ev.Uuid])
		}
		uuids[ev.Uuid] = true
	}
}
