package controlplane_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
)

// watcher is a minimal data-plane config client: it applies responses and
// acknowledges them.
type watcher struct {
	stream hogwirev1.ConfigService_WatchClient
	cancel context.CancelFunc
}

func watch(t testing.TB, r *replica, nodeID string, rev int64) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := hogwirev1.NewConfigServiceClient(r.node).Watch(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := s.Send(&hogwirev1.WatchRequest{Kind: &hogwirev1.WatchRequest_Subscribe_{Subscribe: &hogwirev1.WatchRequest_Subscribe{
		NodeId: nodeID, Address: "127.0.0.1:1", Revision: rev,
	}}}); err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &watcher{stream: s, cancel: cancel}
	t.Cleanup(cancel)
	return w
}

func (w *watcher) ack(rev int64) error {
	return w.stream.Send(&hogwirev1.WatchRequest{Kind: &hogwirev1.WatchRequest_Ack_{Ack: &hogwirev1.WatchRequest_Ack{Revision: rev}}})
}

func TestWatchSnapshotThenChanges(t *testing.T) {
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")
	d := webhookDestination("hook")
	d.Inputs["api_key"] = &hogwirev1.InputValue{Value: strValue("sk_secret")}
	created, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, DestinationId: "hook", Destination: d})
	if err != nil {
		t.Fatal(err)
	}

	w := watch(t, r, "node-1", 0)
	snap, err := w.stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Snapshot || snap.More || len(snap.Projects) != 1 || len(snap.Destinations) != 1 {
		t.Fatalf("snapshot = %v", snap)
	}
	got := snap.Destinations[0]
	if got.Inputs["api_key"].GetValue().GetStringValue() != "sk_secret" {
		t.Errorf("nodes need the secret in the clear; got %v", got.Inputs["api_key"])
	}
	if snap.Projects[0].CaptureToken != p.CaptureToken {
		t.Error("nodes need capture tokens to authenticate ingest")
	}
	if err := w.ack(snap.Revision); err != nil {
		t.Fatal(err)
	}

	writeHealth(t, r, "shop", "hook", hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY)
	m, err := w.stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.Snapshot || m.Revision <= snap.Revision || len(m.Destinations) != 1 ||
		m.Destinations[0].Health.GetState() != hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY {
		t.Fatalf("health change arrived as %v", m)
	}
	if m.Destinations[0].Inputs["url"] == nil {
		t.Error("a health change must carry the whole destination")
	}
	if err := w.ack(m.Revision); err != nil {
		t.Fatal(err)
	}

	if _, err := r.destinations().DeleteDestination(ctx, &hogwirev1.DeleteDestinationRequest{Name: created.Destination.Name}); err != nil {
		t.Fatal(err)
	}
	m, err = w.stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Deleted) != 1 || m.Deleted[0] != created.Destination.Name {
		t.Fatalf("delete arrived as %v", m)
	}
	if err := w.ack(m.Revision); err != nil {
		t.Fatal(err)
	}

	// The node is listed with the revision it acknowledged.
	deadline := time.Now().Add(10 * time.Second)
	for {
		nodes, err := hogwirev1.NewNodeServiceClient(r.cc).ListNodes(ctx, &hogwirev1.ListNodesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes.Nodes) == 1 && nodes.Nodes[0].NodeId == "node-1" && nodes.Nodes[0].AckedRevision == m.Revision {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListNodes = %v, want node-1 at revision %d", nodes.Nodes, m.Revision)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// It leaves the list when its stream ends.
	w.cancel()
	for {
		nodes, err := hogwirev1.NewNodeServiceClient(r.cc).ListNodes(ctx, &hogwirev1.ListNodesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes.Nodes) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node still listed after disconnecting: %v", nodes.Nodes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node that reconnects after many changes, across a control-plane
// restart, sees every change exactly once and in order.
func TestWatchEveryChangeExactlyOnceAcrossRestart(t *testing.T) {
	const changes = 1000
	e := etcdtest.Start(t)
	sealer := newTestSealer(t)
	writer := startReplica(t, []string{e.ClientURL()}, replicaOpts{sealer: sealer})
	served := startReplica(t, []string{e.ClientURL()}, replicaOpts{sealer: sealer})
	ctx := ctxT(t)
	p := mustProject(t, writer, "shop")
	created, err := writer.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, DestinationId: "hook", Destination: webhookDestination("hook")})
	if err != nil {
		t.Fatal(err)
	}

	var rev int64
	next := 0
	restarted := false
	w := watch(t, served, "node-1", 0)
	snap, err := w.stream.Recv()
	if err != nil || !snap.Snapshot {
		t.Fatalf("first message %v, %v; want the snapshot", snap, err)
	}
	rev = snap.Revision
	done := make(chan error, 1)
	// A writer that fails ends the watcher's stream, so that the loop below
	// reports it instead of waiting for changes that will never come.
	var wMu sync.Mutex
	var writeErr error
	go func() {
		for i := range changes {
			_, err := writer.destinations().UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
				Destination: &hogwirev1.Destination{Name: created.Destination.Name, Description: fmt.Sprint(i)},
				UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"description"}},
			})
			if err != nil {
				wMu.Lock()
				writeErr = err
				w.cancel()
				wMu.Unlock()
				done <- err
				return
			}
		}
		done <- nil
	}()

	for next < changes {
		wMu.Lock()
		cur := w
		wMu.Unlock()
		m, err := cur.stream.Recv()
		if err != nil {
			wMu.Lock()
			failed := writeErr
			wMu.Unlock()
			if failed != nil {
				t.Fatalf("writing change %d: %v", next, failed)
			}
			if !restarted {
				t.Fatalf("stream broke before the restart: %v", err)
			}
			// Reconnect to the new replica, resuming from our revision.
			nw := watch(t, served, "node-1", rev)
			wMu.Lock()
			w = nw
			wMu.Unlock()
			continue
		}
		if m.Revision <= rev {
			t.Fatalf("revision went from %d to %d", rev, m.Revision)
		}
		if m.Snapshot {
			t.Fatalf("got a second snapshot at %d after resuming from %d", m.Revision, rev)
		}
		rev = m.Revision
		for _, d := range m.Destinations {
			if d.Description != fmt.Sprint(next) {
				t.Fatalf("change %q arrived when %d was expected", d.Description, next)
			}
			next++
		}
		if next == changes/2 && !restarted {
			// Restart the replica the node is connected to.
			restarted = true
			served.stop()
			served = startReplica(t, []string{e.ClientURL()}, replicaOpts{sealer: sealer})
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !restarted {
		t.Fatal("the replica was never restarted")
	}
}

func TestWatchAfterCompactionSendsSnapshot(t *testing.T) {
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")
	if _, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: webhookDestination("hook")}); err != nil {
		t.Fatal(err)
	}
	first, err := r.etcd.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	old := first.Header.Revision
	mustProject(t, r, "later")
	cur, _ := r.etcd.Get(ctx, "x")
	if _, err := r.etcd.Compact(ctx, cur.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	w := watch(t, r, "node-1", old-1)
	m, err := w.stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !m.Snapshot || len(m.Projects) != 2 || len(m.Destinations) != 1 {
		t.Fatalf("after compaction got %v, want a full snapshot", m)
	}
}
