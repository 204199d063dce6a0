package controlplane_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
	"github.com/hogwire/hogwire/invocations"
)

// TestInvocationService serves records a node's writer stored, with the
// log entries of the same invocation, and refuses bad requests field by
// field.
func TestInvocationService(t *testing.T) {
	e := etcdtest.Start(t)
	ns := startNATS(t, t.TempDir())
	r := startTelemetryReplica(t, e.ClientURL(), ns.ClientURL())
	ctx := ctxT(t)
	if _, err := hogwirev1.NewProjectServiceClient(r.admin).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
		ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"}}); err != nil {
		t.Fatal(err)
	}

	// A node writes records as the data plane does.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	st, err := invocations.Open(ctx, invocations.Config{Conn: nc, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	w := st.NewWriter(invocations.WriterConfig{})
	start := time.Now().Add(-10 * time.Second)
	for i := range 5 {
		rec := &invocations.Record{Destination: "projects/shop/destinations/hook", Status: hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED,
			EventUUID: fmt.Sprintf("e%d", i), DistinctID: "ada", Start: start.Add(time.Duration(i) * time.Second), Duration: time.Millisecond}
		if i == 3 {
			rec.Status, rec.ErrorKind, rec.Error, rec.LogInvocationID = hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED, "hog_error", "Error('boom')", "inv-3"
		}
		w.Record(rec)
	}
	// The event of e0, kept for reruns and tests.
	props, _ := structpb.NewStruct(map[string]any{"plan": "pro"})
	stored, err := proto.Marshal(&hogwirev1.Event{Uuid: "e0", Event: "signed_up", DistinctId: "ada", Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	w.Event("shop", "e0", stored)
	w.Flush(ctx)
	r.report(t, "n1", []*hogwirev1.LogEntry{
		{Time: timestamppb.New(start.Add(3 * time.Second)), Level: hogwirev1.LogLevel_LOG_LEVEL_INFO, Message: "about to fail",
			Destination: "projects/shop/destinations/hook", InvocationId: "inv-3", EventUuid: "e3"},
		{Time: timestamppb.New(start.Add(3 * time.Second)), Level: hogwirev1.LogLevel_LOG_LEVEL_ERROR, Message: "boom",
			Destination: "projects/shop/destinations/hook", InvocationId: "inv-3", EventUuid: "e3"},
		{Time: timestamppb.New(start.Add(4 * time.Second)), Level: hogwirev1.LogLevel_LOG_LEVEL_INFO, Message: "another invocation",
			Destination: "projects/shop/destinations/hook", InvocationId: "inv-4", EventUuid: "e4"},
	}, nil)

	client := hogwirev1.NewInvocationServiceClient(r.admin)
	// Pages of two, by the token.
	var all []*hogwirev1.Invocation
	token := ""
	for range 10 {
		resp, err := client.ListInvocations(ctx, &hogwirev1.ListInvocationsRequest{Parent: "projects/shop/destinations/hook", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetInvocations()) > 2 {
			t.Fatalf("a page of %d", len(resp.GetInvocations()))
		}
		all = append(all, resp.GetInvocations()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(all) != 5 {
		t.Fatalf("paged %d records, want 5", len(all))
	}
	// Stored order: a batch's records are packed by status.
	byEvent := map[string]*hogwirev1.Invocation{}
	for _, rec := range all {
		byEvent[rec.GetEventUuid()] = rec
	}
	if len(byEvent) != 5 || byEvent["e3"].GetStatus() != hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED {
		t.Fatalf("records %v", all)
	}
	// A destination given as projects/-/destinations/ID is not looked up
	// here (it does not exist in etcd): NOT_FOUND.
	if _, err := client.ListInvocations(ctx, &hogwirev1.ListInvocationsRequest{Parent: "projects/-/destinations/hook"}); status.Code(err) != codes.NotFound {
		t.Errorf("an unknown destination under projects/-: %v", err)
	}
	if _, err := client.ListInvocations(ctx, &hogwirev1.ListInvocationsRequest{Parent: "projects/nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("an unknown project: %v", err)
	}

	// Get: the record and its own log entries, oldest first.
	got, err := client.GetInvocation(ctx, &hogwirev1.GetInvocationRequest{Name: byEvent["e3"].GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetInvocation().GetErrorKind() != "hog_error" || len(got.GetLogs()) != 2 ||
		got.GetLogs()[0].GetMessage() != "about to fail" || got.GetLogs()[1].GetMessage() != "boom" {
		t.Fatalf("get: %v", got)
	}

	for name, req := range map[string]*hogwirev1.ListInvocationsRequest{
		"filter.statuses": {Parent: "projects/shop", Filter: &hogwirev1.InvocationFilter{Statuses: []hogwirev1.InvocationStatus{hogwirev1.InvocationStatus_INVOCATION_STATUS_FILTERED}}},
		"page_size":       {Parent: "projects/shop", PageSize: -1},
		"page_token":      {Parent: "projects/shop", PageToken: "s12"},
		"filter.end_time": {Parent: "projects/shop", Filter: &hogwirev1.InvocationFilter{StartTime: timestamppb.Now(), EndTime: timestamppb.New(time.Now().Add(-time.Hour))}},
		"parent":          {Parent: "nope"},
	} {
		_, err := client.ListInvocations(ctx, req)
		if v := badRequest(t, err); v[name] == "" {
			t.Errorf("%s: violations %v", name, v)
		}
	}
	for _, name := range []string{"", "projects/shop", "projects/shop/invocations/", "projects/Shop/invocations/1-0"} {
		if _, err := client.GetInvocation(ctx, &hogwirev1.GetInvocationRequest{Name: name}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("get %q: %v, want INVALID_ARGUMENT", name, err)
		}
	}
	for _, name := range []string{"projects/shop/invocations/999999-0", "projects/shop/invocations/x", "projects/other/invocations/" + all[0].GetId()} {
		if _, err := client.GetInvocation(ctx, &hogwirev1.GetInvocationRequest{Name: name}); status.Code(err) != codes.NotFound {
			t.Errorf("get %q: %v, want NOT_FOUND", name, err)
		}
	}

	// TestService runs on a stored event, given its uuid.
	tests := hogwirev1.NewTestServiceClient(r.admin)
	cfg := &hogwirev1.Destination{Name: "projects/shop", DisplayName: "Plan", Hog: "return f'{event.event} {event.properties.plan}'"}
	resp, err := tests.Test(ctx, &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: cfg}, EventUuid: "e0", SkipFilters: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetResult().GetStringValue() != "signed_up pro" || resp.GetEvent().GetUuid() != "e0" {
		t.Errorf("test on the stored event: result %v, event %v", resp.GetResult(), resp.GetEvent())
	}
	if _, err := tests.Test(ctx, &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: cfg}, EventUuid: "e1"}); status.Code(err) != codes.NotFound {
		t.Errorf("test on an event not kept: %v, want NOT_FOUND", err)
	}
	cfg.Name = "projects/other"
	if _, err := tests.Test(ctx, &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: cfg}, EventUuid: "e0"}); status.Code(err) != codes.NotFound {
		t.Errorf("test on another project's event: %v, want NOT_FOUND", err)
	}
	cfg.Name = "projects/shop"
	_, err = tests.Test(ctx, &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: cfg}, EventUuid: "e0", Event: &hogwirev1.Event{Event: "x", DistinctId: "y"}})
	if v := badRequest(t, err); v["event_uuid"] == "" {
		t.Errorf("event and event_uuid: violations %v", v)
	}

	// An event delivered a moment ago is found though its index entry
	// is still waiting (a second, see invocations.WriterConfig).
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	running := st.NewWriter(invocations.WriterConfig{Interval: 10 * time.Millisecond})
	go func() { defer close(done); running.Run(wctx) }()
	defer func() { stop(); <-done }()
	fresh, _ := proto.Marshal(&hogwirev1.Event{Uuid: "e9", Event: "signed_up", DistinctId: "bo", Properties: props})
	running.Event("shop", "e9", fresh)
	running.Record(&invocations.Record{Destination: "projects/shop/destinations/hook", Status: hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED,
		EventUUID: "e9", DistinctID: "bo", Start: time.Now()})
	time.Sleep(50 * time.Millisecond) // stored, not yet indexed
	resp, err = tests.Test(ctx, &hogwirev1.TestRequest{Target: &hogwirev1.TestRequest_Config{Config: cfg}, EventUuid: "e9", SkipFilters: true})
	if err != nil || resp.GetEvent().GetUuid() != "e9" {
		t.Errorf("test on an event stored a moment ago: %v, %v", resp.GetEvent(), err)
	}
}
