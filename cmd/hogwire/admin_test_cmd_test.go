package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

const testCmdSecret = "sk_live_CLI_7a6b5c"

// keyHook sends the event to an API with a secret key in a header.
const keyHookYAML = `displayName: Key hook
hog: |
  let res := fetch(inputs.url, {
    'method': 'POST',
    'headers': {'Authorization': f'Bearer {inputs.api_key}', 'Content-Type': 'application/json'},
    'body': {'event': event.event, 'user': event.distinct_id}
  })
  print('status', res.status)
  return res.status
inputsSchema:
  - {key: url, type: INPUT_TYPE_STRING, required: true}
  - {key: api_key, type: INPUT_TYPE_STRING, secret: true, required: true}
filters:
  events: [{event: signup}]
`

const signupEventJSON = `{"uuid": "0190e4b2-5c2a-7a55-9d1e-0000000000aa", "event": "signup", "distinctId": "ann",
 "properties": {"plan": "pro"}, "timestamp": "2026-03-01T12:00:00Z"}`

func TestAdminDestinationsTest(t *testing.T) {
	s := startAdminStack(t)
	var mu sync.Mutex
	var gotAuth []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Sink", "yes")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"queued":true}`)
	}))
	defer sink.Close()

	s.ok("projects", "create", "shop", "--name", "Shop")
	s.ok("destinations", "create", "--project", "shop", "--id", "keyhook", "-f", writeFile(t, "keyhook.yaml", keyHookYAML),
		"--input", "url="+sink.URL+"/in", "--input", "api_key="+testCmdSecret)
	event := writeFile(t, "signup.json", signupEventJSON)

	// Mocked by default: the exact request, secret redacted, nothing sent.
	out := s.ok("destinations", "test", "keyhook", "--event", event)
	for _, want := range []string{
		`(?m)^Status:\s+succeeded$`, `(?m)^Result:\s+200$`,
		`(?m)^Event:\s+signup 0190e4b2-5c2a-7a55-9d1e-0000000000aa \(distinct id ann\)$`,
		`(?m)^Logs:\n  \d\d:\d\d:\d\d\.\d{3} info\s+status, 200$`,
		`(?m)^Request 1 of 1 \(mocked: nothing was sent\):\n  POST ` + regexp.QuoteMeta(sink.URL) + `/in\n  Authorization: Bearer <redacted>\n  Content-Type: application/json\n\n  \{\n    "event": "signup",\n    "user": "ann"\n  \}\n`,
		`(?m)^Response after \S+ \(attempt 1\):\n  HTTP 200\n  Content-Type: application/json\n\n  \{\}$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("test output does not match %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, testCmdSecret) {
		t.Errorf("test printed the secret:\n%s", out)
	}
	mu.Lock()
	if len(gotAuth) != 0 {
		t.Errorf("a mocked test sent %d requests", len(gotAuth))
	}
	mu.Unlock()

	// The sample event is built to pass the filters (a signup here); an
	// event they exclude says which filter did, and --skip-filters runs it
	// anyway.
	if out := s.ok("destinations", "test", "keyhook"); !regexp.MustCompile(`(?m)^Status:\s+succeeded$`).MatchString(out) ||
		!strings.Contains(out, "Event:    signup ") {
		t.Errorf("test on the sample event:\n%s", out)
	}
	pageview := filepath.Join(t.TempDir(), "pageview.yaml")
	if err := os.WriteFile(pageview, []byte("event: $pageview\ndistinct_id: ann\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := s.ok("destinations", "test", "keyhook", "--event", pageview); !regexp.MustCompile(`(?m)^Status:\s+filtered\nFiltered: filters.events: the event is "\$pageview", not one of "signup"$`).MatchString(out) ||
		!strings.Contains(out, "No requests.") {
		t.Errorf("test on a $pageview:\n%s", out)
	}
	if out := s.ok("destinations", "test", "keyhook", "--event", pageview, "--skip-filters"); !regexp.MustCompile(`(?m)^Status:\s+succeeded$`).MatchString(out) {
		t.Errorf("test with --skip-filters:\n%s", out)
	}

	// --real sends the request with the real secret and shows the sink's
	// answer; -o json is the TestResponse.
	resp := &hogwirev1.TestResponse{}
	decodeJSON(t, s.ok("destinations", "test", "projects/shop/destinations/keyhook", "--event", event, "--real", "-o", "json"), resp)
	if resp.Status != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED || resp.Result.GetNumberValue() != 202 {
		t.Errorf("real test: status %v result %v (%s), want succeeded with 202", resp.Status, resp.Result, resp.Error)
	}
	if len(resp.Requests) != 1 || resp.Requests[0].Headers["Authorization"] != "Bearer <redacted>" ||
		resp.Requests[0].Status != 202 || resp.Requests[0].ResponseBody != `{"queued":true}` || resp.Requests[0].ResponseHeaders["X-Sink"] != "yes" {
		t.Errorf("real test requests: %v", resp.Requests)
	}
	mu.Lock()
	if len(gotAuth) != 1 || gotAuth[0] != "Bearer "+testCmdSecret {
		t.Errorf("the sink got Authorization %q, want the secret once", gotAuth)
	}
	mu.Unlock()
	if out := s.ok("destinations", "test", "keyhook", "--event", event, "--real"); !strings.Contains(out, "Request 1 of 1 (sent):") ||
		!strings.Contains(out, "  HTTP 202\n") || !strings.Contains(out, "  X-Sink: yes\n") || !strings.Contains(out, `    "queued": true`) {
		t.Errorf("real test table:\n%s", out)
	}

	// Errors: a missing destination, a malformed event file.
	s.fails(codes.NotFound, "destinations", "test", "nope")
	if _, err := s.run("destinations", "test", "keyhook", "--event", writeFile(t, "bad.json", `{"event": 1`)); err == nil || exitCode(err) != 2 {
		t.Errorf("a malformed event file: %v, want a usage error", err)
	}
}

func TestAdminDestinationsReenable(t *testing.T) {
	s := startAdminStack(t)
	s.ok("projects", "create", "shop", "--name", "Shop")
	s.ok("destinations", "create", "--project", "shop", "--id", "hook", "-f", writeFile(t, "hook.yaml", hookYAML), "--enabled=false")
	if s.getDestination("hook").Enabled {
		t.Fatal("created enabled")
	}
	if out := s.ok("destinations", "reenable", "hook"); out != "Re-enabled projects/shop/destinations/hook: health reset to healthy.\n" {
		t.Errorf("reenable printed %q", out)
	}
	if d := s.getDestination("hook"); !d.Enabled || d.Health.GetState() != hogwirev1.HealthState_HEALTH_STATE_HEALTHY {
		t.Errorf("after reenable: enabled %v health %v", d.Enabled, d.Health)
	}
	s.fails(codes.NotFound, "destinations", "reenable", "nope")
}
