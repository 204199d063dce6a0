package controlplane_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/filters"
)

// TestRerunSurvivesLeaderChange: the leader running a rerun stops leading
// half-way; another replica, on the same etcd and NATS, takes over and
// runs the rest: every invocation runs again exactly once. A rerun
// cancelled before the change stays cancelled under the new leader.
func TestRerunSurvivesLeaderChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, cc, token := rerunShop(t, ctx)
	sinkURL, counts := countingSink(t, func(r *http.Request) string { return r.URL.Query().Get("d") + " " + r.URL.Query().Get("uuid") })

	dests := hogwirev1.NewDestinationServiceClient(cc)
	var rev int64
	for _, id := range []string{"hook", "other"} {
		d, err := dests.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: id,
			Destination: &hogwirev1.Destination{DisplayName: id, Enabled: true,
				Hog: fmt.Sprintf(`fetch(f'%s?d=%s&uuid={event.uuid}', {'method': 'POST'})`, sinkURL, id)}})
		if err != nil {
			t.Fatal(err)
		}
		rev = max(rev, d.GetDestination().GetRevision())
	}
	waitAcked(t, ctx, cc, rev)
	const events = 12
	publishSignups(t, ctx, st, token, events)
	inv := hogwirev1.NewInvocationServiceClient(cc)
	succeeded := &hogwirev1.InvocationFilter{Statuses: []hogwirev1.InvocationStatus{hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED}}
	waitFor(t, time.Minute, func() bool {
		resp, err := inv.ListInvocations(ctx, &hogwirev1.ListInvocationsRequest{Parent: "projects/shop", Filter: succeeded, PageSize: 1000})
		return err == nil && len(resp.GetInvocations()) == 2*events
	})

	// A rerun of other's invocations, cancelled at once; and a slow one of
	// hook's, which the leader starts.
	slow, err := inv.RerunInvocations(ctx, &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop/destinations/other", Filter: succeeded, MaxPerSecond: 1})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := inv.CancelRerun(ctx, &hogwirev1.CancelRerunRequest{Name: slow.GetRerun().GetName()})
	if err != nil {
		t.Fatal(err)
	}
	started, err := inv.RerunInvocations(ctx, &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop/destinations/hook", Filter: succeeded, MaxPerSecond: 4})
	if err != nil {
		t.Fatal(err)
	}
	name := started.GetRerun().GetName()
	waitFor(t, time.Minute, func() bool {
		g, err := inv.GetRerun(ctx, &hogwirev1.GetRerunRequest{Name: name})
		return err == nil && g.GetRerun().GetStarted() >= 3
	})

	// The leader stops leading (its API goes on); a second replica leads.
	st.ControlPlane().Stop()
	g, err := inv.GetRerun(ctx, &hogwirev1.GetRerunRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if s := g.GetRerun().GetStarted(); s >= events {
		t.Fatalf("the rerun ended before the leader changed (started %d): slow it down", s)
	}
	etcd, err := clientv3.New(clientv3.Config{Endpoints: []string{st.EtcdURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcd.Close() })
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	next, err := controlplane.NewContext(ctx, controlplane.Config{Etcd: etcd, Logger: quiet(), ReplicaID: "next",
		Sealer: newTestSealer(t), CompileFilters: filters.Compile, LeaderTTL: time.Second,
		Telemetry: controlplane.TelemetryConfig{Conn: nc, Memory: true}})
	if err != nil {
		t.Fatal(err)
	}
	lctx, stopLeading := context.WithCancel(ctx)
	led := make(chan struct{})
	go func() {
		defer close(led)
		_ = next.RunElection(lctx, next.RerunJob)
	}()
	t.Cleanup(func() { stopLeading(); <-led })

	r := waitRerun(t, ctx, inv, name)
	if r.GetState() != hogwirev1.RerunState_RERUN_STATE_SUCCEEDED || r.GetStarted() != events || r.GetSucceeded() != events {
		t.Fatalf("after the leader changed: %v", r)
	}
	if !next.IsLeader() {
		t.Fatal("the second replica does not lead")
	}
	delivered := counts()
	for i := range events {
		if n := delivered["hook "+signupUUID(i)]; n != 2 {
			t.Errorf("event %d reached hook %d times, want 2 (its first run and one rerun)", i, n)
		}
	}
	recs, err := inv.ListInvocations(ctx, &hogwirev1.ListInvocationsRequest{Parent: "projects/shop",
		Filter: &hogwirev1.InvocationFilter{Rerun: name}, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	of := map[string]bool{}
	for _, rec := range recs.GetInvocations() {
		of[rec.GetRerunOf()] = true
	}
	if len(recs.GetInvocations()) != events || len(of) != events {
		t.Errorf("%d records of the rerun, of %d invocations; want %d of %d", len(recs.GetInvocations()), len(of), events, events)
	}
	// The cancelled rerun stayed so: the new leader started nothing of it.
	c, err := inv.GetRerun(ctx, &hogwirev1.GetRerunRequest{Name: cancelled.GetRerun().GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if c.GetRerun().GetState() != hogwirev1.RerunState_RERUN_STATE_CANCELLED || c.GetRerun().GetStarted() != cancelled.GetRerun().GetStarted() {
		t.Fatalf("cancelled rerun under the new leader: %v (was %v)", c.GetRerun(), cancelled.GetRerun())
	}
}
