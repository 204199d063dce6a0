package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd"
	"github.com/hogwire/hogwire/embednats/natstest"
	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/secrets"
	"github.com/hogwire/hogwire/testport"
)

// The production roles run as separate processes would: a control plane
// against external etcd and NATS, and a data plane that reaches it over
// gRPC with the node token and ingests into NATS.
func TestControlPlaneAndDataPlaneRoles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	etcd, err := embedetcd.Start(ctx, embedetcd.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	ns := natstest.Start(t)

	dir := t.TempDir()
	key, _ := secrets.GenerateKey()
	keyFile := filepath.Join(dir, "secrets.key")
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	t.Setenv("HOGWIRE_ADMIN_TOKEN", "hwa_roles")
	t.Setenv("HOGWIRE_NODE_TOKEN", "hwn_roles")

	cpAddr, dpGRPC, dpHTTP := testport.Addr(t), testport.Addr(t), testport.Addr(t)
	rctx, stop := context.WithCancel(ctx)
	cpDone, dpDone := make(chan error, 1), make(chan error, 1)
	go func() {
		cpDone <- run(rctx, []string{"controlplane", "--grpc-addr", cpAddr, "--etcd-endpoints", etcd.ClientURL(),
			"--nats-url", ns.ClientURL(), "--secrets-key-file", keyFile, "--log-level", "error"}, io.Discard, io.Discard)
	}()
	go func() {
		dpDone <- run(rctx, []string{"dataplane", "--grpc-addr", dpGRPC, "--http-addr", dpHTTP, "--controlplane-addr", cpAddr,
			"--nats-url", ns.ClientURL(), "--node-id", "dp-1", "--event-storage", "memory", "--log-level", "error",
			"--ack-wait", "40s", "--duplicate-window", "45s", "--events-per-message", "2"}, io.Discard, io.Discard)
	}()
	defer func() {
		stop()
		for _, c := range []chan error{cpDone, dpDone} {
			select {
			case err := <-c:
				if err != nil {
					t.Errorf("role returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("a role did not stop")
			}
		}
	}()

	serving := func(addr string) {
		cc, err := rpcclient.Dial(addr, rpcclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		deadline := time.Now().Add(30 * time.Second)
		for {
			hr, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
			if err == nil && hr.Status == healthpb.HealthCheckResponse_SERVING {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not serving: %v %v", addr, hr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	serving(cpAddr)
	serving(dpGRPC)

	admin, err := rpcclient.Dial(cpAddr, rpcclient.Options{Token: "hwa_roles"})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	p, err := hogwirev1.NewProjectServiceClient(admin).CreateProject(ctx, &hogwirev1.CreateProjectRequest{ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"}})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := hogwirev1.NewNodeServiceClient(admin).ListNodes(ctx, &hogwirev1.ListNodesRequest{})
	if err != nil || len(nodes.Nodes) != 1 || nodes.Nodes[0].NodeId != "dp-1" {
		t.Fatalf("ListNodes = %v, %v; want the data plane dp-1", nodes, err)
	}
	ingest, err := rpcclient.Dial(dpGRPC, rpcclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ingest.Close()
	// The data plane learns the new project's token from the config stream.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hogwirev1.NewEventServiceClient(ingest).Publish(ctx, &hogwirev1.PublishRequest{
			Token: p.Project.CaptureToken, Events: []*hogwirev1.Event{{Event: "signed_up", DistinctId: "u1"}},
		})
		if err == nil && resp.Accepted == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprint("publish through the data plane: ", resp, err))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The event log has the flags' settings.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "HOGWIRE_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if d := stream.CachedInfo().Config.Duplicates; d != 45*time.Second {
		t.Errorf("duplicate window %v, want 45s from --duplicate-window", d)
	}
	cons, err := stream.Consumer(ctx, "dataplane")
	if err != nil {
		t.Fatal(err)
	}
	if w := cons.CachedInfo().Config.AckWait; w != 40*time.Second {
		t.Errorf("ack wait %v, want 40s from --ack-wait", w)
	}
	// A batch of 5 is stored as 3 messages with --events-per-message 2.
	before, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]*hogwirev1.Event, 5)
	for i := range batch {
		batch[i] = &hogwirev1.Event{Event: "viewed", DistinctId: "u1"}
	}
	if resp, err := hogwirev1.NewEventServiceClient(ingest).Publish(ctx, &hogwirev1.PublishRequest{
		Token: p.Project.CaptureToken, Events: batch}); err != nil || resp.Accepted != 5 {
		t.Fatal(fmt.Sprint("publish a batch: ", resp, err))
	}
	after, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := after.State.LastSeq - before.State.LastSeq; n != 3 {
		t.Errorf("a batch of 5 took %d messages, want 3 with --events-per-message 2", n)
	}
}
