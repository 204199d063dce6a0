package controlplane_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
	"github.com/hogwire/hogwire/embednats"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/rpcserver"
)

// telemetryReplica is a control plane with telemetry storage, serving
// gRPC on loopback.
type telemetryReplica struct {
	admin, node *grpc.ClientConn
	stop        func()
}

func startNATS(t testing.TB, dir string) *embednats.Server {
	t.Helper()
	ns, err := embednats.Start(embednats.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns
}

func startTelemetryReplica(t testing.TB, etcdURL, natsURL string) *telemetryReplica {
	t.Helper()
	ec, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := controlplane.NewContext(ctxT(t), controlplane.Config{
		Etcd: ec, Logger: quiet(), Sealer: newTestSealer(t), CompileFilters: filters.Compile,
		Telemetry: controlplane.TelemetryConfig{Conn: nc},
	})
	if err != nil {
		t.Fatal(err)
	}
	gs := rpcserver.New(rpcserver.Options{Logger: quiet(), Policy: &auth.Policy{Services: controlplane.Roles(), AdminToken: adminToken, NodeToken: nodeToken}})
	srv.Register(gs)
	gs.SetServing(true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { gs.Serve(l); close(served) }()
	r := &telemetryReplica{}
	if r.admin, err = rpcclient.Dial(l.Addr().String(), rpcclient.Options{Token: adminToken}); err != nil {
		t.Fatal(err)
	}
	if r.node, err = rpcclient.Dial(l.Addr().String(), rpcclient.Options{Token: nodeToken}); err != nil {
		t.Fatal(err)
	}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		r.admin.Close()
		r.node.Close()
		gs.Stop()
		<-served
		nc.Close()
		ec.Close()
	}
	t.Cleanup(r.stop)
	return r
}

func (r *telemetryReplica) logs() hogwirev1.LogServiceClient {
	return hogwirev1.NewLogServiceClient(r.admin)
}
func (r *telemetryReplica) metrics() hogwirev1.MetricsServiceClient {
	return hogwirev1.NewMetricsServiceClient(r.admin)
}

// report sends one batch as node id through the real Report stream and
// waits for its acknowledgement.
func (r *telemetryReplica) report(t testing.TB, node string, logs []*hogwirev1.LogEntry, metrics []*hogwirev1.DestinationMetrics) {
	t.Helper()
	stream, err := hogwirev1.NewTelemetryServiceClient(r.node).Report(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&hogwirev1.ReportRequest{NodeId: node, Sequence: 1, Logs: logs, Metrics: metrics}); err != nil {
		t.Fatal(err)
	}
	ack, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ack.AckedSequence != 1 {
		t.Fatalf("acked %d, want 1", ack.AckedSequence)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of report stream: %v", err)
	}
}

var levels = []hogwirev1.LogLevel{hogwirev1.LogLevel_LOG_LEVEL_DEBUG, hogwirev1.LogLevel_LOG_LEVEL_INFO, hogwirev1.LogLevel_LOG_LEVEL_WARN, hogwirev1.LogLevel_LOG_LEVEL_ERROR}

// sampleLogs returns n entries of dest, one a second from base: levels
// cycle debug→error, invocations cycle over three, every fifth message
// mentions a fetch failure.
func sampleLogs(dest string, base time.Time, n int) []*hogwirev1.LogEntry {
	var out []*hogwirev1.LogEntry
	for i := range n {
		msg := fmt.Sprintf("line %d", i)
		if i%5 == 0 {
			msg = fmt.Sprintf("line %d: Fetch FAILED with 503", i)
		}
		out = append(out, &hogwirev1.LogEntry{
			Time: timestamppb.New(base.Add(time.Duration(i) * time.Second)), Level: levels[i%4], Message: msg,
			Destination: dest, InvocationId: fmt.Sprintf("inv-%d", i%3), EventUuid: fmt.Sprintf("ev-%d", i),
		})
	}
	return out
}

func messages(es []*hogwirev1.LogEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.GetMessage())
	}
	return out
}

// wantNewestFirst returns the messages of the entries that keep, newest
// first.
func wantNewestFirst(es []*hogwirev1.LogEntry, keep func(i int, e *hogwirev1.LogEntry) bool) []string {
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		if keep(i, es[i]) {
			out = append(out, es[i].GetMessage())
		}
	}
	return out
}

func TestListLogEntries(t *testing.T) {
	e := etcdtest.Start(t)
	ns := startNATS(t, t.TempDir())
	r := startTelemetryReplica(t, e.ClientURL(), ns.ClientURL())
	ctx := ctxT(t)
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	// Nothing stored yet.
	if resp, err := r.logs().ListLogEntries(ctx, &hogwirev1.ListLogEntriesRequest{Parent: "projects/p"}); err != nil || len(resp.Entries) != 0 || resp.NextPageToken != "" {
		t.Fatalf("an empty stream lists %v, %v", resp, err)
	}
	d1 := sampleLogs("projects/p/destinations/d1", base, 30)
	d2 := sampleLogs("projects/p/destinations/d2", base, 5)
	r.report(t, "n1", d1[:20], nil)
	r.report(t, "n2", append(slices.Clone(d1[20:]), d2...), nil)

	list := func(parent string, f *hogwirev1.LogFilter) []string {
		t.Helper()
		resp, err := r.logs().ListLogEntries(ctx, &hogwirev1.ListLogEntriesRequest{Parent: parent, Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		if resp.NextPageToken != "" {
			t.Fatalf("a short list has a next page token %q", resp.NextPageToken)
		}
		for _, e := range resp.Entries {
			if e.Id == "" || e.NodeId == "" {
				t.Fatalf("entry %v has no id or node id", e)
			}
		}
		return messages(resp.Entries)
	}
	cases := []struct {
		name   string
		parent string
		filter *hogwirev1.LogFilter
		want   []string
	}{
		{"all", "projects/p/destinations/d1", nil, wantNewestFirst(d1, func(int, *hogwirev1.LogEntry) bool { return true })},
		{"min level", "projects/p/destinations/d1", &hogwirev1.LogFilter{MinLevel: hogwirev1.LogLevel_LOG_LEVEL_WARN},
			wantNewestFirst(d1, func(i int, _ *hogwirev1.LogEntry) bool { return i%4 >= 2 })},
		{"search ignores case", "projects/p/destinations/d1", &hogwirev1.LogFilter{Search: "fetch failed"},
			wantNewestFirst(d1, func(i int, _ *hogwirev1.LogEntry) bool { return i%5 == 0 })},
		{"invocation", "projects/p/destinations/d1", &hogwirev1.LogFilter{InvocationId: "inv-1"},
			wantNewestFirst(d1, func(i int, _ *hogwirev1.LogEntry) bool { return i%3 == 1 })},
		{"event", "projects/p/destinations/d1", &hogwirev1.LogFilter{EventUuid: "ev-7"}, []string{"line 7"}},
		{"time range", "projects/p/destinations/d1", &hogwirev1.LogFilter{
			StartTime: timestamppb.New(base.Add(10 * time.Second)), EndTime: timestamppb.New(base.Add(15 * time.Second))},
			wantNewestFirst(d1, func(i int, _ *hogwirev1.LogEntry) bool { return i >= 10 && i < 15 })},
		{"combined", "projects/p/destinations/d1", &hogwirev1.LogFilter{MinLevel: hogwirev1.LogLevel_LOG_LEVEL_ERROR, InvocationId: "inv-0"},
			wantNewestFirst(d1, func(i int, _ *hogwirev1.LogEntry) bool { return i%4 == 3 && i%3 == 0 })},
		{"other destination", "projects/p/destinations/d2", nil, wantNewestFirst(d2, func(int, *hogwirev1.LogEntry) bool { return true })},
		{"no entries", "projects/p/destinations/none", nil, nil},
		{"other project", "projects/q", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := list(c.parent, c.filter); !slices.Equal(got, c.want) {
				t.Fatalf("got %q\nwant %q", got, c.want)
			}
		})
	}
	t.Run("project", func(t *testing.T) {
		// Stored as d1's 30, then d2's 5.
		want := wantNewestFirst(append(slices.Clone(d1), d2...), func(int, *hogwirev1.LogEntry) bool { return true })
		if got := list("projects/p", nil); !slices.Equal(got, want) {
			t.Fatalf("project lists %q\nwant %q", got, want)
		}
	})

	t.Run("pages", func(t *testing.T) {
		var got []string
		token := ""
		pages := 0
		for {
			resp, err := r.logs().ListLogEntries(ctx, &hogwirev1.ListLogEntriesRequest{Parent: "projects/p/destinations/d1", PageSize: 7, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Entries) > 7 {
				t.Fatalf("page of %d entries, asked for 7", len(resp.Entries))
			}
			got = append(got, messages(resp.Entries)...)
			pages++
			if token = resp.NextPageToken; token == "" {
				break
			}
			if pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		if want := wantNewestFirst(d1, func(int, *hogwirev1.LogEntry) bool { return true }); !slices.Equal(got, want) {
			t.Fatalf("pages gave %q\nwant %q", got, want)
		}
	})

	t.Run("project dash resolves the destination", func(t *testing.T) {
		admin := &replica{cc: r.admin}
		mustProject(t, admin, "p")
		if _, err := admin.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
			Parent: "projects/p", DestinationId: "d2", Destination: webhookDestination("d2")}); err != nil {
			t.Fatal(err)
		}
		if got, want := list("projects/-/destinations/d2", nil), wantNewestFirst(d2, func(int, *hogwirev1.LogEntry) bool { return true }); !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		_, err := r.logs().ListLogEntries(ctx, &hogwirev1.ListLogEntriesRequest{Parent: "projects/-/destinations/missing"})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("unknown destination in any project: %v, want NotFound", err)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, req := range []*hogwirev1.ListLogEntriesRequest{
			{Parent: "nope"},
			{Parent: "projects/p/destinations/d1/x"},
			{Parent: "projects/p", PageToken: "garbage"},
			{Parent: "projects/p", PageSize: -1},
			{Parent: "projects/p", Filter: &hogwirev1.LogFilter{StartTime: timestamppb.New(base), EndTime: timestamppb.New(base.Add(-time.Second))}},
			{Parent: "projects/p", Filter: &hogwirev1.LogFilter{MinLevel: 42}},
		} {
			_, err := r.logs().ListLogEntries(ctx, req)
			assertBadRequest(t, err)
		}
	})
}

func assertBadRequest(t *testing.T, err error) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 {
			return
		}
	}
	t.Fatalf("%v has no BadRequest field violations", err)
}

// Paging stays within the scan bound, and a page never repeats or skips an
// entry, across many destinations interleaved in the stream.
func TestListLogEntriesInterleaved(t *testing.T) {
	e := etcdtest.Start(t)
	ns := startNATS(t, t.TempDir())
	r := startTelemetryReplica(t, e.ClientURL(), ns.ClientURL())
	ctx := ctxT(t)
	base := time.Now().Add(-time.Hour)
	var batch, mine []*hogwirev1.LogEntry
	for i := range 3000 {
		dest := fmt.Sprintf("projects/p/destinations/noise%d", i%7)
		if i%100 == 0 {
			dest = "projects/p/destinations/rare"
		}
		batch = append(batch, &hogwirev1.LogEntry{Time: timestamppb.New(base.Add(time.Duration(i) * time.Millisecond)), Level: hogwirev1.LogLevel_LOG_LEVEL_INFO, Message: fmt.Sprint(i), Destination: dest})
		if dest == "projects/p/destinations/rare" {
			mine = append(mine, batch[len(batch)-1])
		}
	}
	r.report(t, "n1", batch, nil)
	var got []string
	token := ""
	for range 20 {
		resp, err := r.logs().ListLogEntries(ctx, &hogwirev1.ListLogEntriesRequest{Parent: "projects/p/destinations/rare", PageSize: 4, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, messages(resp.Entries)...)
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	if want := wantNewestFirst(mine, func(int, *hogwirev1.LogEntry) bool { return true }); !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestTailLogEntries(t *testing.T) {
	e := etcdtest.Start(t)
	ns := startNATS(t, t.TempDir())
	r := startTelemetryReplica(t, e.ClientURL(), ns.ClientURL())
	base := time.Now().Add(-time.Minute)
	old := sampleLogs("projects/p/destinations/d1", base, 4)
	r.report(t, "n1", old, nil)

	// From now: only what is written after the tail started.
	ctx, cancel := contextWithCancel(t)
	tail, err := r.logs().TailLogEntries(ctx, &hogwirev1.TailLogEntriesRequest{
		Parent: "projects/p/destinations/d1", Filter: &hogwirev1.LogFilter{MinLevel: hogwirev1.LogLevel_LOG_LEVEL_WARN}})
	if err != nil {
		t.Fatal(err)
	}
	// The server creates its consumer after the call returns to the
	// client; wait for it, so that the entries below are new to it.
	waitConsumers(t, ns.ClientURL(), 1)
	fresh := sampleLogs("projects/p/destinations/d1", time.Now(), 8)
	for _, e := range fresh {
		e.Message = "new " + e.Message
	}
	r.report(t, "n1", append(slices.Clone(fresh[:4]), sampleLogs("projects/p/destinations/other", time.Now(), 4)...), nil)
	r.report(t, "n2", fresh[4:], nil)
	var got []string
	want := []string{"new line 2", "new line 3", "new line 6", "new line 7"}
	for len(got) < len(want) {
		resp, err := tail.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, messages(resp.Entries)...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tail got %q, want %q", got, want)
	}
	cancel()
	// The server lets go of its consumer once the client has gone.
	waitConsumers(t, ns.ClientURL(), 0)

	// From a start time: the stored entries since then come first.
	ctx, cancel = contextWithCancel(t)
	defer cancel()
	tail, err = r.logs().TailLogEntries(ctx, &hogwirev1.TailLogEntriesRequest{
		Parent: "projects/p", Filter: &hogwirev1.LogFilter{StartTime: timestamppb.New(base.Add(2 * time.Second)), Search: "LINE 3"}})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	want = []string{"line 3", "new line 3", "line 3"} // d1's old and new, then the other destination's
	for len(got) < len(want) {
		resp, err := tail.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, messages(resp.Entries)...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tail from a start time got %q, want %q", got, want)
	}

	// A server stream reports its error on the first Recv.
	bad, err := r.logs().TailLogEntries(ctxT(t), &hogwirev1.TailLogEntriesRequest{Parent: "bad"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Recv()
	assertBadRequest(t, err)
}

// waitConsumers polls until the logs stream has n consumers.
func waitConsumers(t *testing.T, natsURL string, n int) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := js.Stream(ctx, "HOGWIRE_LOGS")
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Consumers == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs stream has %d consumers, want %d", info.State.Consumers, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctxT(t))
	t.Cleanup(cancel)
	return ctx, cancel
}

// BenchmarkListLogEntries lists the newest page of one destination whose
// 1,000 entries are interleaved with 9 other destinations' 9,000.
func BenchmarkListLogEntries(b *testing.B) {
	e := etcdtest.Start(b)
	ns := startNATS(b, b.TempDir())
	r := startTelemetryReplica(b, e.ClientURL(), ns.ClientURL())
	base := time.Now().Add(-time.Hour)
	for chunk := range 10 {
		var batch []*hogwirev1.LogEntry
		for i := range 1000 {
			n := chunk*1000 + i
			batch = append(batch, &hogwirev1.LogEntry{Time: timestamppb.New(base.Add(time.Duration(n) * time.Millisecond)), Level: levels[n%4],
				Message: fmt.Sprintf("entry %d", n), Destination: fmt.Sprintf("projects/p/destinations/d%d", n%10)})
		}
		r.report(b, "n", batch, nil)
	}
	ctx := ctxT(b)
	for _, bc := range []struct {
		name string
		req  *hogwirev1.ListLogEntriesRequest
	}{
		{"newest100", &hogwirev1.ListLogEntriesRequest{Parent: "projects/p/destinations/d3", PageSize: 100}},
		{"errors-search", &hogwirev1.ListLogEntriesRequest{Parent: "projects/p/destinations/d3", PageSize: 100,
			Filter: &hogwirev1.LogFilter{MinLevel: hogwirev1.LogLevel_LOG_LEVEL_ERROR, Search: "ENTRY 9"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := r.logs().ListLogEntries(ctx, bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
