package rpcclient_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/hogwire/hogwire/rpcclient"
)

// countingHealth is a real health service that counts the calls it answers.
type countingHealth struct {
	*health.Server
	calls atomic.Int64
}

func (h *countingHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.calls.Add(1)
	return h.Server.Check(ctx, req)
}

func startServer(t *testing.T) (string, *countingHealth, *grpc.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	h := &countingHealth{Server: health.NewServer()}
	healthpb.RegisterHealthServer(gs, h)
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	return l.Addr().String(), h, gs
}

func check(ctx context.Context, cc *grpc.ClientConn) (string, error) {
	var p peer.Peer
	_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true), grpc.Peer(&p))
	if err != nil {
		return "", err
	}
	return p.Addr.String(), nil
}

// With several control planes listed, calls spread over all of them, and
// when one stops, calls keep succeeding on the others.
func TestFailoverBetweenListedServers(t *testing.T) {
	a, ha, gsA := startServer(t)
	b, hb, _ := startServer(t)
	cc, err := rpcclient.Dial(a+", "+b, rpcclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 20 {
		if _, err := check(ctx, cc); err != nil {
			t.Fatal(err)
		}
	}
	if ha.calls.Load() == 0 || hb.calls.Load() == 0 {
		t.Fatalf("calls not spread: %d on a, %d on b", ha.calls.Load(), hb.calls.Load())
	}

	gsA.Stop()
	for i := range 20 {
		addr, err := check(ctx, cc)
		if err != nil {
			// The call in flight on a stopping server may fail; the next
			// ones must not.
			if i < 2 {
				continue
			}
			t.Fatalf("call %d after a stopped: %v", i, err)
		}
		if i >= 2 && addr != b {
			t.Fatalf("call %d went to %s after a stopped", i, addr)
		}
	}
}

// A dns:/// target reaches the server through name resolution.
func TestDNSTarget(t *testing.T) {
	a, _, _ := startServer(t)
	_, port, _ := net.SplitHostPort(a)
	cc, err := rpcclient.Dial("dns:///localhost:"+port, rpcclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := check(ctx, cc); err != nil {
		t.Fatal(err)
	}
}

func TestDialRejectsEmptyTarget(t *testing.T) {
	if _, err := rpcclient.Dial(" , ", rpcclient.Options{}); err == nil {
		t.Fatal("accepted")
	}
}

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

// Keep retries a broken stream, and one outage, however many attempts it
// takes, is one warning and one line when it is back.
func TestKeepLogsOncePerOutage(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runs atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		rpcclient.Keep(ctx, log, "config stream", rpcclient.KeepOptions{Initial: time.Millisecond, Max: 5 * time.Millisecond},
			func(ctx context.Context, connected func()) error {
				n := runs.Add(1)
				switch {
				case n <= 10: // first outage: ten failed attempts
					return errors.New("connection refused")
				case n == 11: // back, then broken again
					connected()
					return errors.New("stream reset")
				case n <= 15: // second outage
					return errors.New("connection refused")
				default: // back for good
					connected()
					<-ctx.Done()
					return ctx.Err()
				}
			})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for runs.Load() < 16 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 2 {
		t.Errorf("%d warnings for two outages:\n%s", n, out)
	}
	if n := strings.Count(out, "config stream restored"); n != 2 {
		t.Errorf("%d recoveries logged for two outages:\n%s", n, out)
	}
	if !strings.Contains(out, "attempts=10") {
		t.Errorf("recovery line does not count the attempts:\n%s", out)
	}
}
