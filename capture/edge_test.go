package capture_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/embednats/natstest"
)

// logPublisher stores in a real event log.
type logPublisher struct{ l *eventlog.Log }

func (p logPublisher) Publish(ctx context.Context, project string, events []*hogwirev1.Event) error {
	return p.l.Publish(ctx, project, events, nil)
}

// PublishEncoded makes the edge store as a data-plane node does.
func (p logPublisher) PublishEncoded(ctx context.Context, project string, uuids []string, events [][]byte) error {
	return p.l.PublishEncoded(ctx, project, uuids, events, nil)
}

// edge is a capture server on 127.0.0.1, built by NewServer, storing in
// an event log on an embedded NATS server.
type edge struct {
	url string
	log *eventlog.Log
}

func startEdge(t *testing.T, edit func(*capture.Config), logCfg eventlog.Config) *edge {
	t.Helper()
	nc := natstest.Connect(t)
	logCfg.Conn, logCfg.Memory = nc, true
	logCfg.Logger = slog.New(slog.DiscardHandler)
	l, err := eventlog.Open(context.Background(), logCfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := capture.Config{
		Tokens: tokens{testToken: testProject}, Publisher: logPublisher{l},
		Logger: slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := capture.NewServer(capture.NewHandler(cfg), cfg.Server)
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	return &edge{url: "http://" + lis.Addr().String(), log: l}
}

// stored consumes the log until want events came, then a little longer
// for any extra, and returns the uuids of all of them.
func (e *edge) stored(t *testing.T, want int) []string {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	got := make(chan *eventlog.Message, 1000)
	done := make(chan error, 1)
	go func() { done <- e.log.Consume(ctx, 50, func(m *eventlog.Message) { _ = m.Ack(); got <- m }) }()
	var uuids []string
	collect := func(m *eventlog.Message) {
		evs, err := m.Events()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			uuids = append(uuids, ev.Uuid)
		}
	}
	deadline := time.After(20 * time.Second)
	for len(uuids) < want {
		select {
		case m := <-got:
			collect(m)
		case <-deadline:
			t.Fatalf("%d of %d events stored", len(uuids), want)
		}
	}
	quiet := time.After(500 * time.Millisecond)
wait:
	for {
		select {
		case m := <-got:
			collect(m)
		case <-quiet:
			break wait
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return uuids
}

// jsEvent is a posthog-js-like event with a uuid made from i.
func jsEvent(i int, props map[string]any) map[string]any {
	p := map[string]any{"$current_url": "https://example.com/", "$browser": "Chrome"}
	for k, v := range props {
		p[k] = v
	}
	return map[string]any{
		"event": "$pageview", "distinct_id": fmt.Sprintf("user-%d", i%7),
		"uuid": fmt.Sprintf("0190e2f8-7a3b-7c3d-9e4f-%012d", i), "properties": p,
	}
}

func post(t *testing.T, url string, body any) (int, errBody) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e errBody
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("status %d with body %q", resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, e
}

func batch(events []map[string]any) map[string]any {
	return map[string]any{"api_key": testToken, "batch": events}
}

func uuidsOf(events []map[string]any) map[string]bool {
	m := map[string]bool{}
	for _, e := range events {
		m[e["uuid"].(string)] = true
	}
	return m
}

// exactlyOnce fails unless got holds every uuid of want once and nothing
// else.
func exactlyOnce(t *testing.T, got []string, want map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	for _, u := range got {
		seen[u]++
		if !want[u] {
			t.Errorf("event %s stored but never sent in an accepted request", u)
		}
	}
	for u := range want {
		if seen[u] != 1 {
			t.Errorf("event %s stored %d times", u, seen[u])
		}
	}
}

// An event too large for the pipeline refuses its whole batch (413,
// naming it): nothing of the batch is stored. The rest of the batch, sent
// without it and retried as clients do, is stored exactly once, across
// the several JetStream messages it takes.
func TestOversizedEventInBatch(t *testing.T) {
	e := startEdge(t, nil, eventlog.Config{MaxEventsPerMessage: 100})
	events := make([]map[string]any, 150)
	for i := range events {
		events[i] = jsEvent(i, nil)
	}
	// Five strings under the string limit make an event over the event
	// size limit.
	huge := map[string]any{}
	for k := range 5 {
		huge[fmt.Sprint("part", k)] = strings.Repeat("x", 250_000)
	}
	events[120] = jsEvent(120, huge)

	status, body := post(t, e.url+"/batch/", batch(events))
	if status != http.StatusRequestEntityTooLarge || len(body.Rejected) != 1 ||
		body.Rejected[0].Index != 120 || body.Rejected[0].Rule != "max_event_bytes" {
		t.Fatalf("status %d, body %+v", status, body)
	}
	rest := append(events[:120:120], events[121:]...)
	for range 3 {
		if status, body := post(t, e.url+"/batch/", batch(rest)); status != http.StatusOK {
			t.Fatalf("the rest: status %d, body %+v", status, body)
		}
	}
	exactlyOnce(t, e.stored(t, len(rest)), uuidsOf(rest))
}

// When the stream's messages are smaller than capture's event limit
// allows (a NATS server with a small max_payload), the event log refuses
// the event before storing anything, and the client gets 413 naming it,
// not a 503 it would retry forever.
func TestEventTooLargeForTheStream(t *testing.T) {
	e := startEdge(t, func(c *capture.Config) {
		c.Limits.MaxEventBytes, c.Limits.MaxStringBytes = 4<<20, 4<<20
	}, eventlog.Config{})
	events := []map[string]any{jsEvent(0, nil), jsEvent(1, map[string]any{"blob": strings.Repeat("x", 1_500_000)}), jsEvent(2, nil)}
	status, body := post(t, e.url+"/batch/", batch(events))
	if status != http.StatusRequestEntityTooLarge || len(body.Rejected) != 1 || body.Rejected[0].Index != 1 || body.Rejected[0].Rule != "max_event_bytes" {
		t.Fatalf("status %d, body %+v", status, body)
	}
	ok := []map[string]any{events[0], events[2]}
	if status, body := post(t, e.url+"/batch/", batch(ok)); status != http.StatusOK {
		t.Fatalf("status %d, body %+v", status, body)
	}
	exactlyOnce(t, e.stored(t, 2), uuidsOf(ok))
}

// A client retrying a stored request within the duplicate window stores
// nothing new; once the window has passed, the same request is new again.
func TestRetryWithinDuplicateWindow(t *testing.T) {
	const window = time.Second
	e := startEdge(t, nil, eventlog.Config{DuplicateWindow: window, MaxEventsPerMessage: 50})
	events := make([]map[string]any, 120)
	for i := range events {
		events[i] = jsEvent(i, nil)
	}
	for range 3 {
		if status, body := post(t, e.url+"/batch/", batch(events)); status != http.StatusOK {
			t.Fatalf("status %d, body %+v", status, body)
		}
	}
	exactlyOnce(t, e.stored(t, len(events)), uuidsOf(events))

	// JetStream forgets ids some time after the window; send until the
	// request is stored again, and check it was stored once more only.
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(window)
		if status, body := post(t, e.url+"/batch/", batch(events[:1])); status != http.StatusOK {
			t.Fatalf("status %d, body %+v", status, body)
		}
		if got := e.stored(t, 0); len(got) > 0 {
			exactlyOnce(t, got, uuidsOf(events[:1]))
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a request past the duplicate window was never stored again")
		}
	}
}
