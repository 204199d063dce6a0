package capture_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/capture"
)

// grpcClient serves the service on 127.0.0.1 and returns a client; opts
// add dial options (credentials).
func grpcClient(t *testing.T, cfg capture.Config, opts ...grpc.DialOption) hogwirev1.EventServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hogwirev1.RegisterEventServiceServer(srv, capture.NewService(cfg))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return hogwirev1.NewEventServiceClient(conn)
}

func ev(name, distinctID string) *hogwirev1.Event {
	return &hogwirev1.Event{Event: name, DistinctId: distinctID}
}

func TestPublishUnary(t *testing.T) {
	pub := &memPublisher{}
	client := grpcClient(t, testConfig(pub))
	ctx := context.Background()
	props, _ := structpb.NewStruct(map[string]any{"plan": "pro"})
	when := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	good := func() []*hogwirev1.Event {
		return []*hogwirev1.Event{
			{Event: "a", DistinctId: "d1", Properties: props, Timestamp: when, Project: "someone-elses", Uuid: "0190E2F8-7A3B-7C3D-9E4F-0123456789AB"},
			{Event: "c", DistinctId: "d3"},
		}
	}
	// One invalid event refuses the request: every offending field is
	// named, and nothing is stored.
	bad := good()
	bad = append(bad[:1], &hogwirev1.Event{Event: "", DistinctId: "d2"}, bad[1], &hogwirev1.Event{Event: "d"}, &hogwirev1.Event{Event: "e", DistinctId: "d5", Uuid: "nope"})
	_, err := client.Publish(ctx, &hogwirev1.PublishRequest{Token: testToken, Events: bad})
	want := []string{"events[1].event:REQUIRED", "events[3].distinct_id:REQUIRED", "events[4].uuid:INVALID"}
	if got := violations(t, err, codes.InvalidArgument); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("violations %v, want %v", got, want)
	}
	if n := len(pub.all()); n != 0 {
		t.Fatalf("%d events stored by a refused request", n)
	}
	resp, err := client.Publish(ctx, &hogwirev1.PublishRequest{Token: testToken, Events: good()})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Accepted != 2 || len(resp.Rejected) != 0 {
		t.Fatalf("response %v", resp)
	}
	evs := pub.all()
	if len(evs) != 2 {
		t.Fatalf("%d stored", len(evs))
	}
	a, c := evs[0], evs[1]
	if a.Project != testProject || c.Project != testProject {
		t.Errorf("projects %q %q: the service must set them", a.Project, c.Project)
	}
	if a.Uuid != "0190e2f8-7a3b-7c3d-9e4f-0123456789ab" || !a.Timestamp.AsTime().Equal(when.AsTime()) || a.Properties.AsMap()["plan"] != "pro" {
		t.Errorf("event a changed: %v", a)
	}
	if c.Uuid == "" || !c.Timestamp.AsTime().Equal(fixedNow) {
		t.Errorf("event c: uuid %q timestamp %v, want generated and now", c.Uuid, c.Timestamp.AsTime())
	}
}

func TestPublishUnaryErrors(t *testing.T) {
	pub := &memPublisher{}
	cfg := testConfig(pub)
	cfg.Limits.MaxBatchEvents = 3
	client := grpcClient(t, cfg)
	ctx := context.Background()
	one := []*hogwirev1.Event{ev("e", "d")}
	cases := []struct {
		name  string
		req   *hogwirev1.PublishRequest
		code  codes.Code
		field string
	}{
		{"no token", &hogwirev1.PublishRequest{Events: one}, codes.Unauthenticated, ""},
		{"bad token", &hogwirev1.PublishRequest{Token: "phc_nope", Events: one}, codes.Unauthenticated, ""},
		{"no events", &hogwirev1.PublishRequest{Token: testToken}, codes.InvalidArgument, "events"},
		{"too many events", &hogwirev1.PublishRequest{Token: testToken, Events: []*hogwirev1.Event{ev("e", "d"), ev("e", "d"), ev("e", "d"), ev("e", "d")}}, codes.ResourceExhausted, "events"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Publish(ctx, tc.req)
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Fatalf("error %v, want %v", err, tc.code)
			}
			if tc.field != "" {
				var br *errdetails.BadRequest
				for _, d := range st.Details() {
					if b, ok := d.(*errdetails.BadRequest); ok {
						br = b
					}
				}
				if br == nil || len(br.FieldViolations) != 1 || br.FieldViolations[0].Field != tc.field {
					t.Errorf("details %v, want a BadRequest on %q", st.Details(), tc.field)
				}
			}
		})
	}
	if n := len(pub.all()); n != 0 {
		t.Errorf("%d events stored by failed calls", n)
	}

	pub.setFail(true)
	if _, err := client.Publish(ctx, &hogwirev1.PublishRequest{Token: testToken, Events: one}); status.Code(err) != codes.Unavailable {
		t.Errorf("publisher failure: %v, want Unavailable", err)
	}
}

func TestPublishBearerMetadata(t *testing.T) {
	pub := &memPublisher{}
	client := grpcClient(t, testConfig(pub), grpc.WithPerRPCCredentials(auth.Bearer{Token: "phc_other", Insecure: true}))
	resp, err := client.Publish(context.Background(), &hogwirev1.PublishRequest{Events: []*hogwirev1.Event{ev("e", "d")}})
	if err != nil || resp.Accepted != 1 {
		t.Fatalf("%v %v", resp, err)
	}
	if calls := pub.calls(); calls[0].project != "proj-2" {
		t.Errorf("project %q, want proj-2 from the bearer token", calls[0].project)
	}
	// A token in the request wins over the metadata.
	if _, err := client.Publish(context.Background(), &hogwirev1.PublishRequest{Token: testToken, Events: []*hogwirev1.Event{ev("e", "d")}}); err != nil {
		t.Fatal(err)
	}
	if calls := pub.calls(); calls[1].project != testProject {
		t.Errorf("project %q, want %s from the request token", calls[1].project, testProject)
	}
}

// A response means stored: while Publish has not returned, the client
// hears nothing.
func TestPublishAnswersOnlyAfterStored(t *testing.T) {
	pub := &memPublisher{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	client := grpcClient(t, testConfig(pub))
	done := make(chan error, 1)
	go func() {
		_, err := client.Publish(context.Background(), &hogwirev1.PublishRequest{Token: testToken, Events: []*hogwirev1.Event{ev("e", "d")}})
		done <- err
	}()
	<-pub.entered
	select {
	case err := <-done:
		t.Fatalf("Publish answered (%v) before the publisher returned", err)
	default:
	}
	close(pub.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(pub.all()) != 1 {
		t.Error("event not stored")
	}
}

func TestPublishStreamPipelined(t *testing.T) {
	const requests = 60
	pub := &memPublisher{
		// Batches finish out of order, so in-order answers are the
		// service's doing.
		delay: func(int) time.Duration { return time.Duration(rand.IntN(3)) * time.Millisecond },
	}
	cfg := testConfig(pub)
	cfg.StreamWindow = 8
	client := grpcClient(t, cfg)
	stream, err := client.PublishStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sendErr := make(chan error, 1)
	go func() {
		for i := range requests {
			r := &hogwirev1.PublishStreamRequest{Sequence: int64(1000 + i), Events: []*hogwirev1.Event{
				ev(fmt.Sprintf("e%d", i), "d"), ev(fmt.Sprintf("e%d", i), "d"),
			}}
			if i == 0 {
				r.Token = testToken
			}
			if err := stream.Send(r); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()
	for i := range requests {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if resp.Sequence != int64(1000+i) || resp.Accepted != 2 || len(resp.Rejected) != 0 {
			t.Fatalf("response %d = %v", i, resp)
		}
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last response: %v, want EOF", err)
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	evs := pub.all()
	if len(evs) != 2*requests {
		t.Fatalf("%d events stored, want %d", len(evs), 2*requests)
	}
	for _, e := range evs {
		if e.Project != testProject {
			t.Errorf("project %q", e.Project)
		}
	}
}

func TestPublishStreamBadTokenAfterGoodRequests(t *testing.T) {
	pub := &memPublisher{}
	client := grpcClient(t, testConfig(pub))
	stream, err := client.PublishStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range []string{testToken, "", "phc_nope", testToken} {
		if err := stream.Send(&hogwirev1.PublishStreamRequest{Token: tok, Sequence: int64(i), Events: []*hogwirev1.Event{ev("e", "d")}}); err != nil {
			// The server may already have ended the stream.
			break
		}
	}
	for i := range 2 {
		resp, err := stream.Recv()
		if err != nil || resp.Sequence != int64(i) || resp.Accepted != 1 {
			t.Fatalf("response %d: %v %v", i, resp, err)
		}
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("third response: %v, want Unauthenticated", err)
	}
	if n := len(pub.all()); n != 2 {
		t.Errorf("%d events stored, want the 2 before the bad token", n)
	}
}

func TestPublishStreamErrors(t *testing.T) {
	t.Run("no token", func(t *testing.T) {
		client := grpcClient(t, testConfig(&memPublisher{}))
		stream, err := client.PublishStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&hogwirev1.PublishStreamRequest{Events: []*hogwirev1.Event{ev("e", "d")}})
		if _, err := stream.Recv(); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%v, want Unauthenticated", err)
		}
	})
	t.Run("bearer metadata", func(t *testing.T) {
		pub := &memPublisher{}
		client := grpcClient(t, testConfig(pub), grpc.WithPerRPCCredentials(auth.Bearer{Token: testToken, Insecure: true}))
		stream, err := client.PublishStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&hogwirev1.PublishStreamRequest{Sequence: 7, Events: []*hogwirev1.Event{ev("e", "d")}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil || resp.Sequence != 7 || resp.Accepted != 1 {
			t.Fatalf("%v %v", resp, err)
		}
	})
	t.Run("empty request", func(t *testing.T) {
		client := grpcClient(t, testConfig(&memPublisher{}))
		stream, err := client.PublishStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&hogwirev1.PublishStreamRequest{Token: testToken})
		_, err = stream.Recv()
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || len(st.Details()) != 1 {
			t.Errorf("%v, want InvalidArgument with a BadRequest", err)
		}
	})
	t.Run("publisher failure", func(t *testing.T) {
		client := grpcClient(t, testConfig(&memPublisher{fail: true}))
		stream, err := client.PublishStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&hogwirev1.PublishStreamRequest{Token: testToken, Events: []*hogwirev1.Event{ev("e", "d")}})
		if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
			t.Errorf("%v, want Unavailable", err)
		}
	})
}

// With a window of one, batches are stored strictly in request order.
func TestPublishStreamWindowOneKeepsOrder(t *testing.T) {
	pub := &memPublisher{delay: func(batch int) time.Duration { return time.Duration(batch%3) * time.Millisecond }}
	cfg := testConfig(pub)
	cfg.StreamWindow = 1
	client := grpcClient(t, cfg)
	stream, err := client.PublishStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if err := stream.Send(&hogwirev1.PublishStreamRequest{Token: testToken, Sequence: int64(i), Events: []*hogwirev1.Event{ev(fmt.Sprint(i), "d")}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if resp, err := stream.Recv(); err != nil || resp.Sequence != int64(i) {
			t.Fatalf("response %d: %v %v", i, resp, err)
		}
	}
	for i, e := range pub.all() {
		if e.Event != fmt.Sprint(i) {
			t.Fatalf("stored order: event %d is %q", i, e.Event)
		}
	}
}

// A client that goes away cancels the publishes it started.
func TestPublishStreamCancelStopsPublishes(t *testing.T) {
	pub := &memPublisher{entered: make(chan struct{}, 4), gate: make(chan struct{}), canceled: make(chan struct{}, 4)}
	client := grpcClient(t, testConfig(pub))
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := client.PublishStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&hogwirev1.PublishStreamRequest{Token: testToken, Events: []*hogwirev1.Event{ev("e", "d")}}); err != nil {
		t.Fatal(err)
	}
	<-pub.entered
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("%v, want Canceled", err)
	}
	select {
	case <-pub.canceled:
	case <-time.After(30 * time.Second):
		t.Fatal("the publish still waits 30s after the client went away")
	}
	if n := len(pub.all()); n != 0 {
		t.Errorf("%d events stored after cancel", n)
	}
}

// violations returns the field violations of a status with code, as
// "field:REASON".
func violations(t *testing.T, err error, code codes.Code) []string {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("error %v, want %v", err, code)
	}
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				if v.Description == "" {
					t.Errorf("violation of %s without a description", v.Field)
				}
				out = append(out, v.Field+":"+v.Reason)
			}
		}
	}
	return out
}
