package dataplane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/posthog/posthog-go"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
	"github.com/hogwire/hogwire/rpcclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type stack struct {
	*devstack.Stack
	admin *grpc.ClientConn
}

func startStack(t *testing.T) *stack {
	t.Helper()
	st, cc := devstacktest.Start(t, nil)
	return &stack{Stack: st, admin: cc}
}

// sink is a real HTTP endpoint that records what it receives.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	got    chan struct{}
}

func newSink(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *sink {
	s := &sink{got: make(chan struct{}, 100000)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if h != nil {
			h(w, r)
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, m)
		s.mu.Unlock()
		s.got <- struct{}{}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func (st *stack) project(t *testing.T, id string) *hogwirev1.Project {
	t.Helper()
	resp, err := hogwirev1.NewProjectServiceClient(st.admin).CreateProject(context.Background(), &hogwirev1.CreateProjectRequest{
		ProjectId: id, Project: &hogwirev1.Project{DisplayName: id},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Project
}

func (st *stack) webhook(t *testing.T, project, url string, filters *hogwirev1.Filters) *hogwirev1.Destination {
	t.Helper()
	return st.fromTemplate(t, project, "webhook", url, map[string]any{
		"event": "{event.event}", "user": "{event.distinct_id}", "plan": "{person.properties.plan}", "n": "{event.properties.n}",
	}, &hogwirev1.Destination{DisplayName: "sink", Filters: filters})
}

// fromTemplate creates an enabled destination from a template whose inputs
// are a url and a body, as the webhook templates' are; d holds the rest.
func (st *stack) fromTemplate(t *testing.T, project, template, url string, body map[string]any, d *hogwirev1.Destination) *hogwirev1.Destination {
	t.Helper()
	b, err := structpb.NewValue(body)
	if err != nil {
		t.Fatal(err)
	}
	d.Enabled = true
	d.Inputs = map[string]*hogwirev1.InputValue{
		"url":  {Value: structpb.NewStringValue(url)},
		"body": {Value: b},
	}
	resp, err := hogwirev1.NewDestinationServiceClient(st.admin).CreateDestination(context.Background(), &hogwirev1.CreateDestinationRequest{
		Parent: "projects/" + project, FromTemplate: "templates/" + template, Destination: d,
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Destination
}

// waitConfig waits until the node has applied the control plane's latest
// configuration.
func (st *stack) waitConfig(t *testing.T, destinations int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(st.Node.Syncer().Current().Destinations) < destinations {
		if time.Now().After(deadline) {
			t.Fatalf("node has %d destinations, want %d", len(st.Node.Syncer().Current().Destinations), destinations)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The PostHog Go SDK sends 1,000 events to the capture API; a destination
// whose filter matches half of them delivers exactly those to a sink, with
// the bodies its inputs describe.
func TestPostHogSDKToSink(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	s := newSink(t, nil)
	st.webhook(t, "shop", s.URL, &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "signed_up"}}})
	st.waitConfig(t, 1)

	client, err := posthog.NewWithConfig(p.CaptureToken, posthog.Config{
		Endpoint: "http://" + st.HTTPAddr, BatchSize: 100, Interval: 50 * time.Millisecond, Logger: posthog.StdLogger(log.New(io.Discard, "", 0)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		name := "$pageview"
		if i%2 == 0 {
			name = "signed_up"
		}
		if err := client.Enqueue(posthog.Capture{
			DistinctId: fmt.Sprintf("user-%d", i), Event: name,
			Properties: posthog.NewProperties().Set("n", i).Set("$set", map[string]any{"plan": "pro"}),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(60 * time.Second)
	for s.count() < 500 {
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("sink got %d events, want 500", s.count())
		}
	}
	time.Sleep(200 * time.Millisecond) // anything extra would arrive now
	if n := s.count(); n != 500 {
		t.Fatalf("sink got %d events, want exactly 500", n)
	}
	seen := map[string]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bodies {
		if b["event"] != "signed_up" {
			t.Fatalf("body %v: a filtered-out event was delivered", b)
		}
		user, _ := b["user"].(string)
		seen[user] = true
		if b["plan"] != "pro" {
			t.Errorf("body %v: person.properties.plan should come from $set", b)
		}
	}
	if len(seen) != 500 {
		t.Errorf("%d distinct users delivered, want 500", len(seen))
	}
}

// otherNode is a second data-plane node on the stack's control plane and
// NATS, as another process would run it.
type otherNode struct {
	*dataplane.Node
	cp   *grpc.ClientConn
	nc   *nats.Conn
	stop context.CancelFunc
	done chan error
}

// startNode starts node-2 with the stack's egress allowance, a memory
// event log and the given changes to its configuration; it runs with the
// given grace to drain on stop. The test's cleanup stops it if the test
// did not.
func (st *stack) startNode(t *testing.T, grace time.Duration, edit func(*dataplane.Config)) *otherNode {
	t.Helper()
	cp, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{Token: st.NodeToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg := dataplane.Config{
		NodeID: "node-2", ControlPlane: cp, NATS: nc, Logger: quiet(),
		AllowEgress: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		EventLog:    eventlog.Config{Memory: true, AckWait: 2 * time.Second}, ConsumeBatch: 20,
	}
	if edit != nil {
		edit(&cfg)
	}
	node, err := dataplane.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	n := &otherNode{Node: node, cp: cp, nc: nc, stop: stop, done: make(chan error, 1)}
	go func() { n.done <- node.Run(ctx, grace) }()
	t.Cleanup(func() { n.shutdown() })
	<-node.Ready()
	return n
}

// shutdown stops the node as an orderly exit does and returns what Run
// returned; later calls return nil.
func (n *otherNode) shutdown() error {
	n.stop()
	err, ok := <-n.done
	if ok {
		close(n.done)
	}
	return err
}

// kill stops the node without a goodbye: its NATS connection drops first.
func (n *otherNode) kill() {
	n.nc.Close()
	n.shutdown()
}
