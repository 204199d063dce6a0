package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/testport"
)

func TestFlagsFallBackToEnv(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	a := fs.String("nats-url", "default", "")
	b := fs.String("grpc-addr", "default", "")
	env := map[string]string{"HOGWIRE_NATS_URL": "nats://env:4222", "HOGWIRE_GRPC_ADDR": "env:1"}
	if err := fs.Parse([]string{"--grpc-addr", "flag:2"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs, func(k string) string { return env[k] }, nil); err != nil {
		t.Fatal(err)
	}
	if *a != "nats://env:4222" {
		t.Errorf("nats-url = %q, want the env value", *a)
	}
	if *b != "flag:2" {
		t.Errorf("grpc-addr = %q, want the flag to win over env", *b)
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"frobnicate"}, io.Discard, &stderr)
	var ue usageError
	if !errors.As(err, &ue) || exitCode(err) != 2 {
		t.Fatalf("err = %v, want a usage error with exit code 2", err)
	}
	if !strings.Contains(stderr.String(), "Run 'hogwire --help' for usage") {
		t.Errorf("no hint to the help: %q", stderr.String())
	}
}

func TestRolesRequireTokens(t *testing.T) {
	t.Setenv("HOGWIRE_ADMIN_TOKEN", "")
	err := run(context.Background(), []string{"controlplane", "--grpc-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--admin-token-file or HOGWIRE_ADMIN_TOKEN") {
		t.Fatalf("controlplane without admin token: %v", err)
	}
}

// syncBuffer is written by the command's goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDevCommandServesAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, logs syncBuffer
	done := make(chan error, 1)
	metricsAddr := testport.Addr(t)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", t.TempDir(), "--grpc-addr", "127.0.0.1:0",
			"--http-addr", "127.0.0.1:0", "--metrics-addr", metricsAddr, "--log-format", "json", "--health-off"}, &stdout, &logs)
	}()
	addrRE := regexp.MustCompile(`gRPC API and ingest:\s+(\S+)`)
	tokenRE := regexp.MustCompile(`admin token:\s+(hwa_\S+)`)
	var addr string
	deadline := time.Now().Add(time.Minute)
	for addr == "" {
		if m := addrRE.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("dev exited early: %v\n%s", err, stdout.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev printed no address:\n%s", stdout.String())
		}
	}
	if !tokenRE.MatchString(stdout.String()) {
		t.Errorf("dev did not print the admin token:\n%s", stdout.String())
	}
	cc, err := rpcclient.Dial(addr, rpcclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hr, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", hr, err)
	}
	res, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("GET /metrics = %d %.200s", res.StatusCode, body)
	}
	cancel() // what SIGINT does
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev returned %v after cancel, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop after cancel")
	}
	// Every JSON log line is an object without a repeated key (the roles'
	// loggers once added a second "component").
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("dev logged %d lines", len(lines))
	}
	for _, line := range lines {
		if key := repeatedKey(t, line); key != "" {
			t.Errorf("log line repeats %q: %s", key, line)
		}
	}
}

// repeatedKey returns a top-level key that occurs twice in a JSON object.
func repeatedKey(t *testing.T, line string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", line)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		key := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
	}
	return ""
}
