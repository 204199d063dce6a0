package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/rpcclient"
)

// telemetryStack is a dev stack with a project "shop" and a destination
// "greeter" that prints a line per event (and a warning for "oops").
type telemetryStack struct {
	*adminStack
	captureToken string
	ctx          context.Context
}

const greeterHog = `print(f'hello {event.event}')
if (event.event == 'oops') {
  throw Error('something broke')
}`

func startTelemetryStack(t *testing.T) *telemetryStack {
	t.Helper()
	for _, k := range []string{"HOGWIRE_TOKEN", "HOGWIRE_SERVER", "HOGWIRE_DATA_DIR", "HOGWIRE_OUTPUT", "HOGWIRE_PROJECT", "HOGWIRE_TLS", "HOGWIRE_CA_FILE", "HOGWIRE_TIMEOUT"} {
		t.Setenv(k, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	st, err := devstack.Start(ctx, devstack.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), EventLog: eventlog.Config{Memory: true, AckWait: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st.Close(ctx)
	})
	cc, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{Token: st.AdminToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	p, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hogwirev1.NewDestinationServiceClient(cc).CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent: "projects/shop", DestinationId: "greeter",
		Destination: &hogwirev1.Destination{DisplayName: "Greeter", Enabled: true, Hog: greeterHog},
	}); err != nil {
		t.Fatal(err)
	}
	// The node must know the capture token and the destination before
	// events are sent.
	poll(t, func() bool {
		cur := st.Node.Syncer().Current()
		return len(cur.Tokens) > 0 && len(cur.Destinations) > 0
	})
	return &telemetryStack{
		adminStack:   &adminStack{t: t, server: st.GRPCAddr, dataDir: dir, token: st.AdminToken},
		captureToken: p.Project.CaptureToken, ctx: ctx,
	}
}

func (s *telemetryStack) send(events ...string) {
	s.t.Helper()
	for _, e := range events {
		var out, errb bytes.Buffer
		if err := run(s.ctx, []string{"events", "send", "--server", s.server, "--capture-token", s.captureToken, "--event", e, "--distinct-id", "u1"}, &out, &errb); err != nil {
			s.t.Fatalf("sending %s: %v %s", e, err, errb.String())
		}
	}
}

// poll waits up to 30 s for cond.
func poll(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLogsCommand(t *testing.T) {
	s := startTelemetryStack(t)
	s.send("signed_up", "oops", "paid")
	var out string
	poll(t, func() bool {
		out = s.ok("logs", "greeter")
		return strings.Contains(out, "hello signed_up") && strings.Contains(out, "hello paid") && strings.Contains(out, "something broke")
	})
	// Oldest first, one "time level invocation message" line per entry.
	// (Events sent one after another may still run concurrently on the
	// node, so only the times are ordered, not the events.)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	prev := ""
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 4 {
			t.Fatalf("line %q is not time, level, invocation, message", l)
		}
		if f[0] < prev {
			t.Errorf("entries are not oldest first:\n%s", out)
		}
		prev = f[0]
		if strings.Contains(l, "hello signed_up") && f[1] != "INFO" {
			t.Errorf("a print should be INFO: %q", l)
		}
	}

	errs := s.ok("logs", "projects/shop/destinations/greeter", "--level", "error")
	if !strings.Contains(errs, "something broke") || strings.Contains(errs, "hello") {
		t.Errorf("--level error:\n%s", errs)
	}
	if got := s.ok("logs", "greeter", "--search", "PAID", "--since", "1h"); strings.Count(strings.TrimSpace(got), "\n") != 0 || !strings.Contains(got, "hello paid") {
		t.Errorf("--search PAID:\n%s", got)
	}
	resp := &hogwirev1.ListLogEntriesResponse{}
	decodeJSON(t, s.ok("logs", "greeter", "-o", "json", "--limit", "2"), resp)
	if len(resp.Entries) != 2 || resp.Entries[0].InvocationId == "" || resp.Entries[0].EventUuid == "" {
		t.Errorf("-o json --limit 2: %v", resp.Entries)
	}
	inv := resp.Entries[0].InvocationId
	if got := s.ok("logs", "greeter", "--invocation", inv); !strings.Contains(got, inv) || strings.Count(got, "\n") >= len(lines) {
		t.Errorf("--invocation %s:\n%s", inv, got)
	}
	s.fails(codes.NotFound, "logs", "nosuch")
	if _, err := s.run("logs", "greeter", "--level", "loud"); err == nil || exitCode(err) != 2 {
		t.Errorf("a bad level: %v", err)
	}

	// --follow prints the recent entries, then new ones, until cancelled.
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	var follow syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"logs", "greeter", "--follow", "--server", s.server, "--data-dir", s.dataDir}, &follow, io.Discard)
	}()
	poll(t, func() bool { return strings.Contains(follow.String(), "hello paid") })
	s.send("refunded")
	poll(t, func() bool { return strings.Contains(follow.String(), "hello refunded") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("--follow ended with %v", err)
	}
	if n := strings.Count(follow.String(), "hello paid"); n != 1 {
		t.Errorf("--follow printed an entry %d times:\n%s", n, follow.String())
	}
}
