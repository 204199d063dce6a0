package controlplane_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
	"github.com/hogwire/hogwire/rpcclient"
)

// TestRerun runs a whole stack: a destination whose input cannot be built
// fails on every event; after its input is fixed, a rerun by filter
// (counted first by a dry run) delivers every event, each rerun recorded
// with a link to the invocation it ran again. A second rerun of the same
// invocations is refused while the first runs; a rerun can be cancelled,
// after which its invocations can be rerun again; bad requests are refused
// field by field.
func TestRerun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, cc, token := rerunShop(t, ctx)
	sinkURL, counts := countingSink(t, func(r *http.Request) string { return r.URL.Query().Get("uuid") })
	deliveries := func() (total int, most int) {
		for _, n := range counts() {
			total += n
			most = max(most, n)
		}
		return total, most
	}

	dests := hogwirev1.NewDestinationServiceClient(cc)
	hook := &hogwirev1.Destination{DisplayName: "hook", Enabled: true,
		Hog:          `fetch(f'{inputs.url}?uuid={event.uuid}', {'method': 'POST', 'body': event})`,
		InputsSchema: []*hogwirev1.InputSchema{{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING}},
		Inputs:       map[string]*hogwirev1.InputValue{"url": {Value: structpb.NewStringValue("{jsonParse('not json')}")}}}
	created, err := dests.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: "hook", Destination: hook})
	if err != nil {
		t.Fatal(err)
	}
	// Another destination fails too, and is left out by the filter.
	other, err := dests.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: "other",
		Destination: &hogwirev1.Destination{DisplayName: "other", Enabled: true, Hog: `throw Error('boom')`}})
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, ctx, cc, max(created.GetDestination().GetRevision(), other.GetDestination().GetRevision()))

	const events = 5
	publishSignups(t, ctx, st, token, events)

	inv := hogwirev1.NewInvocationServiceClient(cc)
	list := func(parent string, f *hogwirev1.InvocationFilter) []*hogwirev1.Invocation {
		t.Helper()
		resp, err := inv.ListInvocations(ctx, &hogwirev1.ListInvocationsRequest{Parent: parent, Filter: f, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetInvocations()
	}
	inputsFailed := &hogwirev1.InvocationFilter{Statuses: []hogwirev1.InvocationStatus{hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED}, ErrorKind: "inputs"}
	var originals []*hogwirev1.Invocation
	waitFor(t, time.Minute, func() bool {
		originals = list("projects/shop/destinations/hook", inputsFailed)
		return len(originals) == events && len(list("projects/shop/destinations/other", nil)) == events
	})
	if n, _ := deliveries(); n != 0 {
		t.Fatalf("%d deliveries with a broken input", n)
	}

	// Bad requests: each says which field is wrong.
	hour := timestamppb.New(time.Now().Add(-time.Hour))
	for _, c := range []struct {
		name  string
		req   *hogwirev1.RerunInvocationsRequest
		field string
	}{
		{"nothing chosen", &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop"}, "invocation_ids"},
		{"unknown destination", &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop/destinations/nope",
			Filter: &hogwirev1.InvocationFilter{StartTime: hour}}, "parent"},
		{"over 30 days", &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop/destinations/hook",
			Filter: &hogwirev1.InvocationFilter{StartTime: timestamppb.New(time.Now().Add(-31 * 24 * time.Hour))}}, "filter.start_time"},
		{"parked", &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop",
			Filter: &hogwirev1.InvocationFilter{Statuses: []hogwirev1.InvocationStatus{hogwirev1.InvocationStatus_INVOCATION_STATUS_PARKED}}}, "filter.statuses[0]"},
		{"unknown id", &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop", InvocationIds: []string{"999999-0"}}, "invocation_ids[0]"},
		{"ids and filter", &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop", InvocationIds: []string{originals[0].GetId()},
			Filter: &hogwirev1.InvocationFilter{}}, "filter"},
	} {
		_, err := inv.RerunInvocations(ctx, c.req)
		if fields := badRequestFields(t, err); status.Code(err) != codes.InvalidArgument || !slices.Contains(fields, c.field) {
			t.Errorf("%s: %v (fields %v), want InvalidArgument on %s", c.name, err, fields, c.field)
		}
	}

	// A dry run counts the hook's input failures, and starts nothing.
	filter := &hogwirev1.InvocationFilter{StartTime: hour, ErrorKind: "inputs"}
	dry, err := inv.RerunInvocations(ctx, &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop/destinations/hook", Filter: filter, ValidateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := dry.GetRerun(); r.GetTotal() != events || r.GetName() != "" || r.GetMaxInvocations() != 10000 || r.GetTruncated() {
		t.Fatalf("dry run: %v, want %d invocations, no name, cap 10000", r, events)
	}
	if l, err := inv.ListReruns(ctx, &hogwirev1.ListRerunsRequest{Parent: "projects/shop"}); err != nil || len(l.GetReruns()) != 0 {
		t.Fatalf("a dry run stored a rerun: %v %v", l, err)
	}

	// The input is fixed; the rerun runs slowly enough to be seen running.
	hook.Inputs["url"] = &hogwirev1.InputValue{Value: structpb.NewStringValue(sinkURL + "/hook")}
	updated, err := dests.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{Destination: withName(hook, "projects/shop/destinations/hook"),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"inputs.url"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, ctx, cc, updated.GetDestination().GetRevision())
	started, err := inv.RerunInvocations(ctx, &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop/destinations/hook", Filter: filter, MaxPerSecond: 2})
	if err != nil {
		t.Fatal(err)
	}
	r := started.GetRerun()
	if r.GetTotal() != events || r.GetState() != hogwirev1.RerunState_RERUN_STATE_RUNNING || !strings.HasPrefix(r.GetName(), "projects/shop/reruns/") {
		t.Fatalf("rerun: %v", r)
	}

	// The same invocation again, while the rerun runs: refused, by name.
	_, err = inv.RerunInvocations(ctx, &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop", InvocationIds: []string{originals[2].GetId()}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), originals[2].GetId()) || !strings.Contains(err.Error(), r.GetName()) {
		t.Fatalf("a concurrent rerun of %s: %v, want FailedPrecondition naming it and %s", originals[2].GetId(), err, r.GetName())
	}

	waitFor(t, time.Minute, func() bool {
		g, err := inv.GetRerun(ctx, &hogwirev1.GetRerunRequest{Name: r.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		r = g.GetRerun()
		return r.GetState() != hogwirev1.RerunState_RERUN_STATE_RUNNING
	})
	if r.GetState() != hogwirev1.RerunState_RERUN_STATE_SUCCEEDED || r.GetSucceeded() != events || r.GetStarted() != events || r.GetFailed() != 0 {
		t.Fatalf("rerun ended: %v", r)
	}
	if n, most := deliveries(); n != events || most != 1 {
		t.Fatalf("the sink got %d requests (at most %d per event), want each of %d events once", n, most, events)
	}
	// Each rerun has its record, linked to the invocation it ran again.
	reruns := list("projects/shop", &hogwirev1.InvocationFilter{Rerun: r.GetName()})
	if len(reruns) != events {
		t.Fatalf("%d records of the rerun, want %d", len(reruns), events)
	}
	var ids []string
	for _, o := range originals {
		ids = append(ids, o.GetId())
	}
	for _, rec := range reruns {
		if rec.GetStatus() != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED || !slices.Contains(ids, rec.GetRerunOf()) ||
			rec.GetRerun() != r.GetName() || rec.GetDestination() != "projects/shop/destinations/hook" {
			t.Errorf("rerun record: %v", rec)
		}
	}
	got, err := inv.GetInvocation(ctx, &hogwirev1.GetInvocationRequest{Name: reruns[0].GetName()})
	if err != nil || got.GetInvocation().GetRerunOf() == "" || got.GetInvocation().GetRerun() != r.GetName() {
		t.Fatalf("get of a rerun: %v %v", got, err)
	}
	// The other destination was not rerun.
	if n := len(list("projects/shop/destinations/other", nil)); n != events {
		t.Errorf("other destination has %d records, want %d", n, events)
	}

	// A rerun does not get past a disabled destination: each is recorded
	// skipped, linked to what it ran again.
	off, err := dests.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
		Destination: &hogwirev1.Destination{Name: "projects/shop/destinations/other", Enabled: false},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, ctx, cc, off.GetDestination().GetRevision())
	skipped, err := inv.RerunInvocations(ctx, &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop/destinations/other",
		Filter: &hogwirev1.InvocationFilter{StartTime: hour}, MaxPerSecond: 100})
	if err != nil {
		t.Fatal(err)
	}
	sr := skipped.GetRerun()
	waitFor(t, time.Minute, func() bool {
		g, err := inv.GetRerun(ctx, &hogwirev1.GetRerunRequest{Name: sr.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		sr = g.GetRerun()
		return sr.GetState() != hogwirev1.RerunState_RERUN_STATE_RUNNING
	})
	if sr.GetTotal() != events || sr.GetSkipped() != events {
		t.Fatalf("rerun on a disabled destination: %v, want %d skipped", sr, events)
	}
	for _, rec := range list("projects/shop", &hogwirev1.InvocationFilter{Rerun: sr.GetName()}) {
		if rec.GetStatus() != hogwirev1.InvocationStatus_INVOCATION_STATUS_SKIPPED || rec.GetRerunOf() == "" {
			t.Errorf("rerun on a disabled destination: %v", rec)
		}
	}

	// Cancelled at once, a slow rerun of the same invocations (allowed:
	// the first one ended) starts no more of them.
	slow, err := inv.RerunInvocations(ctx, &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop", InvocationIds: ids, MaxPerSecond: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := inv.CancelRerun(ctx, &hogwirev1.CancelRerunRequest{Name: slow.GetRerun().GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if c.GetRerun().GetState() != hogwirev1.RerunState_RERUN_STATE_CANCELLED || c.GetRerun().GetEndTime() == nil {
		t.Fatalf("cancelled: %v", c.GetRerun())
	}
	// It stays cancelled, with what it started only.
	time.Sleep(3 * time.Second)
	g, err := inv.GetRerun(ctx, &hogwirev1.GetRerunRequest{Name: slow.GetRerun().GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if g.GetRerun().GetState() != hogwirev1.RerunState_RERUN_STATE_CANCELLED || g.GetRerun().GetStarted() >= events {
		t.Fatalf("after cancel: %v", g.GetRerun())
	}
	if n := len(list("projects/shop", &hogwirev1.InvocationFilter{Rerun: slow.GetRerun().GetName()})); n > int(g.GetRerun().GetStarted()) {
		t.Errorf("%d records of a cancelled rerun that started %d", n, g.GetRerun().GetStarted())
	}
	// Its locks are gone: the same invocations can be rerun again.
	again, err := inv.RerunInvocations(ctx, &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop", InvocationIds: ids[:1], ValidateOnly: false})
	if err != nil {
		t.Fatalf("rerun after a cancel: %v", err)
	}
	l, err := inv.ListReruns(ctx, &hogwirev1.ListRerunsRequest{Parent: "projects/shop"})
	if err != nil || len(l.GetReruns()) != 4 || l.GetReruns()[0].GetName() != again.GetRerun().GetName() {
		t.Fatalf("list reruns: %v %v", l, err)
	}
}

// rerunShop starts a stack with project shop, for the rerun tests; it
// returns the project's capture token.
func rerunShop(t *testing.T, ctx context.Context) (*devstack.Stack, *grpc.ClientConn, string) {
	t.Helper()
	st, cc := devstacktest.Start(t, func(c *devstack.Config) { c.EventLog.AckWait = 2 * time.Second })
	p, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
		ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"}})
	if err != nil {
		t.Fatal(err)
	}
	return st, cc, p.GetProject().GetCaptureToken()
}

// signupUUID is the uuid of publishSignups' event i.
func signupUUID(i int) string { return fmt.Sprintf("01900000-0000-7000-8000-%012d", i) }

// publishSignups publishes n signed_up events, of user-0 to user-{n-1}.
func publishSignups(t *testing.T, ctx context.Context, st *devstack.Stack, token string, n int) {
	t.Helper()
	pub, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var batch []*hogwirev1.Event
	for i := range n {
		batch = append(batch, &hogwirev1.Event{Event: "signed_up", DistinctId: fmt.Sprintf("user-%d", i), Uuid: signupUUID(i)})
	}
	if _, err := hogwirev1.NewEventServiceClient(pub).Publish(ctx, &hogwirev1.PublishRequest{Token: token, Events: batch}); err != nil {
		t.Fatal(err)
	}
}

// countingSink is an HTTP sink that counts its requests by key(r); counts
// returns a copy of the counts.
func countingSink(t *testing.T, key func(*http.Request) string) (url string, counts func() map[string]int) {
	var mu sync.Mutex
	seen := map[string]int{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[key(r)]++
		mu.Unlock()
	}))
	t.Cleanup(sink.Close)
	return sink.URL, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(seen)
	}
}

func withName(d *hogwirev1.Destination, name string) *hogwirev1.Destination {
	d.Name = name
	return d
}

// waitAcked waits for the data-plane node to run with revision.
func waitAcked(t *testing.T, ctx context.Context, cc grpc.ClientConnInterface, revision int64) {
	t.Helper()
	waitFor(t, time.Minute, func() bool {
		nodes, err := hogwirev1.NewNodeServiceClient(cc).ListNodes(ctx, &hogwirev1.ListNodesRequest{})
		return err == nil && len(nodes.GetNodes()) > 0 && nodes.GetNodes()[0].GetAckedRevision() >= revision
	})
}
