package capture_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hogwire/hogwire/capture"
)

// nodeScript sends 200 captures and an identify with posthog-node, which
// gzips its batches when the runtime can.
const nodeScript = `
const { PostHog } = require('posthog-node')
const client = new PostHog('phc_testtoken', { host: process.argv[2], flushAt: 50, flushInterval: 0, disableGeoip: true })
client.on('error', (err) => { console.error(err); process.exitCode = 1 })
for (let i = 0; i < 200; i++) {
  client.capture({ distinctId: 'node-' + i, event: 'node_event', properties: { i, $set: { name: 'N' + i } } })
}
client.identify({ distinctId: 'node-0', properties: { email: 'n0@example.com' } })
client.shutdown().then(() => process.exit())
`

// TestPostHogNodeSDK runs the real posthog-node against the handler. It
// needs Node.js and an npm install of posthog-node, so it runs only when
// HOGWIRE_POSTHOG_NODE_DIR names a directory holding
// node_modules/posthog-node (npm install posthog-node@5).
func TestPostHogNodeSDK(t *testing.T) {
	dir := os.Getenv("HOGWIRE_POSTHOG_NODE_DIR")
	if dir == "" {
		t.Skip("set HOGWIRE_POSTHOG_NODE_DIR to a directory with node_modules/posthog-node to run posthog-node against the handler")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	pub := &memPublisher{}
	h := capture.NewHandler(testConfig(pub))
	var gzipped atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") == "gzip" {
			gzipped.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	script := filepath.Join(t.TempDir(), "send.js")
	if err := os.WriteFile(script, []byte(nodeScript), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script, srv.URL)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("posthog-node: %v\n%s", err, out)
	}
	t.Logf("%d of %d batches were gzipped", gzipped.Load(), len(pub.calls()))
	evs := pub.all()
	if len(evs) != 201 {
		t.Fatalf("%d events arrived, want 201", len(evs))
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.Event == "$identify" {
			if ev.DistinctId != "node-0" || ev.GetSet().AsMap()["email"] != "n0@example.com" {
				t.Errorf("identify %v", ev)
			}
			continue
		}
		i := int(ev.GetProperties().AsMap()["i"].(float64))
		want := fmt.Sprintf("node-%d", i)
		if ev.Event != "node_event" || ev.DistinctId != want || ev.GetSet().AsMap()["name"] != fmt.Sprintf("N%d", i) || seen[want] {
			t.Errorf("event %v", ev)
		}
		seen[want] = true
	}
}
