package controlplane_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// TestRerunOriginalRevision: invocations record the destination's
// revision they ran with; after the code changes, a rerun with
// original_revision runs them with the old code (and its secret input,
// which revisions never hold), its records saying which revision; once
// that revision is pruned from the history, they are not rerunnable, and
// the dry run says so.
func TestRerunOriginalRevision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, cc, token := rerunShop(t, ctx)
	sinkURL, counts := countingSink(t, func(r *http.Request) string { return r.URL.Query().Get("v") + " " + r.Header.Get("Authorization") })
	seen := func(key string) int { return counts()[key] }

	dests := hogwirev1.NewDestinationServiceClient(cc)
	code := func(v int) string {
		return fmt.Sprintf(`fetch(f'{inputs.url}?v=%d', {'method': 'POST', 'headers': {'Authorization': inputs.key}})`, v)
	}
	created, err := dests.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: "hook",
		Destination: &hogwirev1.Destination{DisplayName: "hook", Enabled: true, Hog: code(1),
			InputsSchema: []*hogwirev1.InputSchema{{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING},
				{Key: "key", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true}},
			Inputs: map[string]*hogwirev1.InputValue{"url": {Value: structpb.NewStringValue(sinkURL)},
				"key": {Value: structpb.NewStringValue("s3cret")}}}})
	if err != nil {
		t.Fatal(err)
	}
	rev1 := created.GetDestination().GetRevision()
	waitAcked(t, ctx, cc, rev1)

	const events = 2
	publishSignups(t, ctx, st, token, events)
	inv := hogwirev1.NewInvocationServiceClient(cc)
	list := func(f *hogwirev1.InvocationFilter) []*hogwirev1.Invocation {
		t.Helper()
		resp, err := inv.ListInvocations(ctx, &hogwirev1.ListInvocationsRequest{Parent: "projects/shop/destinations/hook", Filter: f, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetInvocations()
	}
	var originals []*hogwirev1.Invocation
	waitFor(t, time.Minute, func() bool {
		originals = list(nil)
		return len(originals) == events
	})
	var ids []string
	for _, o := range originals {
		if o.GetStatus() != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED || o.GetDestinationRevision() != rev1 {
			t.Fatalf("first run: %v, want SUCCEEDED at revision %d", o, rev1)
		}
		ids = append(ids, o.GetId())
	}

	// The code changes; the rerun with the original revision runs the old.
	upd, err := dests.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
		Destination: &hogwirev1.Destination{Name: "projects/shop/destinations/hook", Hog: code(2)},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"hog"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, ctx, cc, upd.GetDestination().GetRevision())
	req := &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop", InvocationIds: ids, OriginalRevision: true, ValidateOnly: true}
	dry, err := inv.RerunInvocations(ctx, req)
	if err != nil || dry.GetRerun().GetTotal() != events || dry.GetRerun().GetNotRerunnable() != 0 {
		t.Fatalf("dry run: %v %v", dry, err)
	}
	req.ValidateOnly = false
	started, err := inv.RerunInvocations(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r := waitRerun(t, ctx, inv, started.GetRerun().GetName())
	if r.GetState() != hogwirev1.RerunState_RERUN_STATE_SUCCEEDED || r.GetSucceeded() != events || !r.GetOriginalRevision() {
		t.Fatalf("rerun: %v", r)
	}
	if n, m := seen("1 s3cret"), seen("2 s3cret"); n != 2*events || m != 0 {
		t.Fatalf("the sink got %d requests of the first code with its secret (want %d) and %d of the new (want 0): %v", n, 2*events, m, counts())
	}
	for _, rec := range list(&hogwirev1.InvocationFilter{Rerun: r.GetName()}) {
		if rec.GetDestinationRevision() != rev1 || rec.GetStatus() != hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED {
			t.Errorf("rerun record: %v, want revision %d", rec, rev1)
		}
	}
	// Without the flag, the current code runs.
	cur, err := inv.RerunInvocations(ctx, &hogwirev1.RerunInvocationsRequest{Parent: "projects/shop", InvocationIds: ids[:1]})
	if err != nil {
		t.Fatal(err)
	}
	waitRerun(t, ctx, inv, cur.GetRerun().GetName())
	if seen("2 s3cret") != 1 {
		t.Fatalf("a rerun without the flag: %v", counts())
	}

	// Enough changes prune the first revision: not rerunnable, and why.
	for i := range 100 {
		if _, err := dests.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
			Destination: &hogwirev1.Destination{Name: "projects/shop/destinations/hook", Description: fmt.Sprint("change ", i)},
			UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"description"}}}); err != nil {
			t.Fatal(err)
		}
	}
	req.ValidateOnly = true
	dry, err = inv.RerunInvocations(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	d := dry.GetRerun()
	if d.GetTotal() != 0 || d.GetNotRerunnable() != events || len(d.GetNotRerunnableReasons()) != 1 ||
		!strings.Contains(d.GetNotRerunnableReasons()[0], fmt.Sprintf("revision %d of projects/shop/destinations/hook is no longer kept", rev1)) {
		t.Fatalf("dry run after pruning: %v", d)
	}
	req.ValidateOnly = false
	if none, err := inv.RerunInvocations(ctx, req); err != nil || none.GetRerun().GetName() != "" || none.GetRerun().GetNotRerunnable() != events {
		t.Fatalf("rerun after pruning: %v %v, want nothing run", none, err)
	}
}

// waitRerun waits for a rerun to end, and returns it.
func waitRerun(t *testing.T, ctx context.Context, inv hogwirev1.InvocationServiceClient, name string) *hogwirev1.Rerun {
	t.Helper()
	var r *hogwirev1.Rerun
	waitFor(t, time.Minute, func() bool {
		g, err := inv.GetRerun(ctx, &hogwirev1.GetRerunRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		r = g.GetRerun()
		return r.GetState() != hogwirev1.RerunState_RERUN_STATE_RUNNING
	})
	return r
}
