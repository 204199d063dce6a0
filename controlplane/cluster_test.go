package controlplane_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
	"github.com/hogwire/hogwire/testport"
)

// startCluster starts a 3-member etcd cluster on loopback.
func startCluster(t testing.TB) ([]*embedetcd.Server, []string) {
	t.Helper()
	var peers, clients, cluster []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d", testport.Port(t)))
		clients = append(clients, fmt.Sprintf("http://127.0.0.1:%d", testport.Port(t)))
		cluster = append(cluster, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	members := make([]*embedetcd.Server, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			members[i], errs[i] = embedetcd.Start(ctx, embedetcd.Config{
				Name: fmt.Sprintf("m%d", i), Dir: t.TempDir(), ClientURL: clients[i], PeerURL: peers[i],
				InitialCluster: strings.Join(cluster, ","), Logger: quiet(),
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
	}
	t.Cleanup(func() {
		for _, m := range members {
			if m != nil {
				m.Close()
			}
		}
	})
	return members, clients
}

func TestAPIKeepsWorkingWithOneEtcdMemberDown(t *testing.T) {
	members, clients := startCluster(t)
	r := startReplica(t, clients, replicaOpts{})
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")
	created, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: webhookDestination("hook")})
	if err != nil {
		t.Fatal(err)
	}

	// Stop the member the cluster elected leader, the hardest case.
	st, err := r.etcd.Status(ctx, clients[0])
	if err != nil {
		t.Fatal(err)
	}
	stopped := -1
	for i, c := range clients {
		s, err := r.etcd.Status(ctx, c)
		if err == nil && s.Header.MemberId == st.Leader {
			stopped = i
		}
	}
	if stopped < 0 {
		t.Fatal("no etcd leader found")
	}
	members[stopped].Close()
	members[stopped] = nil

	// Writes and reads go on (the client fails over; raft elects a new leader).
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < 5; {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := r.destinations().UpdateDestination(cctx, &hogwirev1.UpdateDestinationRequest{
			Destination: &hogwirev1.Destination{Name: created.Destination.Name, Description: fmt.Sprint("after ", i)},
		})
		cancel()
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("update %d with one member down: %v", i, err)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		i++
	}
	g, err := r.destinations().GetDestination(ctx, &hogwirev1.GetDestinationRequest{Name: created.Destination.Name})
	if err != nil || g.Destination.Description != "after 4" {
		t.Fatalf("get with one member down: %v %v", g, err)
	}
	mustProject(t, r, "more")
}

func TestLeaderFailover(t *testing.T) {
	e := etcdtest.Start(t)
	a := startReplica(t, []string{e.ClientURL()}, replicaOpts{id: "a"})
	b := startReplica(t, []string{e.ClientURL()}, replicaOpts{id: "b"})
	actx, acancel := context.WithCancel(context.Background())
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	var running sync.Map
	job := func(id string) func(context.Context) {
		return func(ctx context.Context) {
			running.Store(id, true)
			<-ctx.Done()
			running.Delete(id)
		}
	}
	adone := make(chan struct{})
	go func() { a.srv.RunElection(actx, job("a")); close(adone) }()
	waitFor(t, 10*time.Second, func() bool { return a.srv.IsLeader() })
	bdone := make(chan struct{})
	go func() { b.srv.RunElection(bctx, job("b")); close(bdone) }()
	time.Sleep(200 * time.Millisecond)
	if b.srv.IsLeader() {
		t.Fatal("two leaders")
	}
	if _, ok := running.Load("b"); ok {
		t.Fatal("a leader-only job runs on a follower")
	}
	if l, _ := b.srv.Leader(ctxT(t)); l != "a" {
		t.Errorf("Leader() = %q, want a", l)
	}

	// The leader dies without resigning: its etcd connection goes away.
	a.etcd.Close()
	killed := time.Now()
	waitFor(t, 10*time.Second, func() bool { return b.srv.IsLeader() })
	if took := time.Since(killed); took > 5*time.Second {
		t.Errorf("takeover took %v, want under 5s", took)
	}
	waitFor(t, 5*time.Second, func() bool { _, ok := running.Load("b"); return ok })
	acancel()
	<-adone
	bcancel()
	<-bdone
	if _, ok := running.Load("b"); ok {
		t.Error("the leader job kept running after the election ended")
	}
}

func waitFor(t testing.TB, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
