package health_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hogwire/hogwire/health"
)

func get(t *testing.T, srv *httptest.Server, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// A failing dependency makes the process unready but never dead, and the
// change is logged once, not at every check.
func TestOutageIsUnreadyNotDead(t *testing.T) {
	var logs bytes.Buffer
	c := health.New(slog.New(slog.NewTextHandler(&logs, nil)), time.Second)
	var etcdDown atomic.Bool
	c.Add("etcd", func(context.Context) error {
		if etcdDown.Load() {
			return errors.New("etcd: context deadline exceeded")
		}
		return nil
	})
	c.Add("config", func(context.Context) error { return nil })
	var changes []bool
	c.OnChange(func(ready bool) { changes = append(changes, ready) })
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	if code, body := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable || body["status"] != "not ready" {
		t.Fatalf("before any check: %d %v", code, body)
	}
	if !c.CheckNow(context.Background()) {
		t.Fatal("not ready with every check passing")
	}
	if code, _ := get(t, srv, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d while ready", code)
	}

	etcdDown.Store(true)
	for range 3 {
		c.CheckNow(context.Background())
	}
	code, body := get(t, srv, "/readyz")
	checks, _ := body["checks"].(map[string]any)
	if code != http.StatusServiceUnavailable || checks["etcd"] != "etcd: context deadline exceeded" || checks["config"] != "ok" {
		t.Fatalf("/readyz during outage: %d %v", code, body)
	}
	if code, _ := get(t, srv, "/livez"); code != http.StatusOK {
		t.Fatalf("/livez %d during a store outage: the process would be restarted", code)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for one outage:\n%s", n, logs.String())
	}

	etcdDown.Store(false)
	c.CheckNow(context.Background())
	if !c.Ready() {
		t.Fatal("not ready after the outage")
	}
	if want := []bool{true, false, true}; len(changes) != 3 || changes[0] != want[0] || changes[1] != want[1] || changes[2] != want[2] {
		t.Errorf("OnChange saw %v, want %v", changes, want)
	}
}

// A check that hangs is cut off by the timeout and counts as failing.
func TestHangingCheckTimesOut(t *testing.T) {
	c := health.New(slog.New(slog.DiscardHandler), 50*time.Millisecond)
	c.Add("nats", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if c.CheckNow(context.Background()) {
		t.Fatal("ready with a hanging check")
	}
}

func TestRunStopsWithContext(t *testing.T) {
	c := health.New(slog.New(slog.DiscardHandler), time.Second)
	var n atomic.Int32
	c.Add("x", func(context.Context) error { n.Add(1); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, 10*time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for n.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if n.Load() < 3 {
		t.Fatalf("ran %d times", n.Load())
	}
}
