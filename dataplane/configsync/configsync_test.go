package configsync_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/dataplane/configsync"
	"github.com/hogwire/hogwire/embedetcd"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/rpcserver"
	"github.com/hogwire/hogwire/secrets"
)

const adminToken, nodeToken = "hwa_test", "hwn_test"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// env is a real control plane on embedded etcd, served on an address that
// survives restarts of the replica.
type env struct {
	t      *testing.T
	etcd   *embedetcd.Server
	sealer controlplane.Sealer
	addr   string
	gs     *rpcserver.Server
	served chan struct{}
	admin  *grpc.ClientConn
}

func startEnv(t *testing.T) *env {
	t.Helper()
	e := etcdtest.Start(t)
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.ParseKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	en := &env{t: t, etcd: e, sealer: kr, addr: l.Addr().String()}
	en.serve(l)
	t.Cleanup(en.stop)
	if en.admin, err = rpcclient.Dial(en.addr, rpcclient.Options{Token: adminToken}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { en.admin.Close() })
	return en
}

// serve starts a control-plane replica on l.
func (en *env) serve(l net.Listener) {
	en.t.Helper()
	cli, err := en.etcd.Client()
	if err != nil {
		en.t.Fatal(err)
	}
	srv, err := controlplane.NewContext(context.Background(), controlplane.Config{Etcd: cli, Sealer: en.sealer, CompileFilters: filters.Compile, Logger: quiet()})
	if err != nil {
		en.t.Fatal(err)
	}
	en.gs = rpcserver.New(rpcserver.Options{Logger: quiet(), Policy: &auth.Policy{Services: controlplane.Roles(), AdminToken: adminToken, NodeToken: nodeToken}})
	srv.Register(en.gs)
	en.served = make(chan struct{})
	go func() {
		defer close(en.served)
		defer cli.Close()
		en.gs.Serve(l)
	}()
}

// stop stops the replica, breaking every stream.
func (en *env) stop() {
	if en.gs != nil {
		en.gs.Stop()
		<-en.served
		en.gs = nil
	}
}

// restart starts a new replica on the same address.
func (en *env) restart() {
	en.t.Helper()
	en.stop()
	var l net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if l, err = net.Listen("tcp", en.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		en.t.Fatal(err)
	}
	en.serve(l)
}

func (en *env) destination(id, hog string) *hogwirev1.Destination {
	en.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := hogwirev1.NewDestinationServiceClient(en.admin).CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent: "projects/shop", DestinationId: id, Destination: &hogwirev1.Destination{DisplayName: id, Hog: hog, Enabled: true}},
		grpc.WaitForReady(true)) // the admin connection may still be reconnecting after restart
	if err != nil {
		en.t.Fatal(err)
	}
	return resp.Destination
}

func (en *env) setHog(name, hog string) {
	en.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := hogwirev1.NewDestinationServiceClient(en.admin).UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
		Destination: &hogwirev1.Destination{Name: name, Hog: hog}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"hog"}}}, grpc.WaitForReady(true)); err != nil {
		en.t.Fatal(err)
	}
}

// node is a Syncer on its own connection, which counts the snapshots it is
// sent.
type node struct {
	sync      *configsync.Syncer
	snapshots atomic.Int32
	stop      func()
}

func (en *env) startNode(check func(*hogwirev1.Destination) error) *node {
	en.t.Helper()
	n := &node{}
	count := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		return countingStream{s, n}, err
	}
	cc, err := rpcclient.Dial(en.addr, rpcclient.Options{Token: nodeToken, More: []grpc.DialOption{grpc.WithStreamInterceptor(count)}})
	if err != nil {
		en.t.Fatal(err)
	}
	n.sync = configsync.New(configsync.Config{Conn: cc, NodeID: "node-1", Logger: quiet(), Check: check, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.sync.Run(ctx)
	}()
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			cc.Close()
		})
	}
	en.t.Cleanup(n.stop)
	return n
}

type countingStream struct {
	grpc.ClientStream
	n *node
}

func (s countingStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if r, ok := m.(*hogwirev1.WatchResponse); ok && err == nil && r.Snapshot && !r.More {
		s.n.snapshots.Add(1)
	}
	return err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func createProject(t *testing.T, en *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := hogwirev1.NewProjectServiceClient(en.admin).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
		ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"}}); err != nil {
		t.Fatal(err)
	}
}

// A node keeps its configuration while the control plane is away, and on
// reconnecting resumes at its revision: it gets what changed, not a second
// snapshot.
func TestReconnectResumesAtRevision(t *testing.T) {
	en := startEnv(t)
	createProject(t, en)
	a := en.destination("a", "return 1")
	n := en.startNode(nil)
	select {
	case <-n.sync.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("no first snapshot")
	}
	if cur := n.sync.Current(); cur.Destinations[a.Name] == nil || len(cur.Tokens) != 1 {
		t.Fatalf("first snapshot %+v", cur)
	}

	en.stop()
	rev := n.sync.Current().Revision
	time.Sleep(300 * time.Millisecond) // the node notices and retries meanwhile
	if cur := n.sync.Current(); cur.Revision != rev || cur.Destinations[a.Name] == nil {
		t.Fatalf("the node lost its configuration while the control plane was away: %+v", cur)
	}
	en.restart()
	b := en.destination("b", "return 2")
	waitFor(t, "b after the reconnect", func() bool { return n.sync.Current().Destinations[b.Name] != nil })
	if got := n.snapshots.Load(); got != 1 {
		t.Errorf("%d snapshots, want 1: the reconnect should resume at revision %d", got, rev)
	}
	if cur := n.sync.Current(); cur.Revision <= rev || cur.Destinations[a.Name] == nil {
		t.Errorf("after resuming: revision %d (was %d), a present %v", cur.Revision, rev, cur.Destinations[a.Name] != nil)
	}
}

// A destination the node cannot run is rejected: the node keeps its
// previous version, the control plane shows the NACK, and a fixed version
// is taken again.
func TestNackOfABadDestination(t *testing.T) {
	en := startEnv(t)
	createProject(t, en)
	good := en.destination("hook", "return 'v1'")
	var checks atomic.Int32
	n := en.startNode(func(d *hogwirev1.Destination) error {
		checks.Add(1)
		if strings.Contains(d.Hog, "unsupported") {
			return errors.New("bytecode uses an opcode this node does not know")
		}
		return nil
	})
	<-n.sync.Ready()

	en.setHog(good.Name, "return 'unsupported'")
	nodes := hogwirev1.NewNodeServiceClient(en.admin)
	var rejected *hogwirev1.Node
	waitFor(t, "the NACK in ListNodes", func() bool {
		resp, err := nodes.ListNodes(context.Background(), &hogwirev1.ListNodesRequest{})
		if err != nil || len(resp.Nodes) != 1 || resp.Nodes[0].Rejected == nil {
			return false
		}
		rejected = resp.Nodes[0]
		return true
	})
	if cur := n.sync.Current(); cur.Destinations[good.Name].GetHog() != "return 'v1'" || cur.Revision != rejected.AckedRevision {
		t.Errorf("node runs %q at revision %d (acked %d), want the previous version at the new revision",
			cur.Destinations[good.Name].GetHog(), cur.Revision, rejected.AckedRevision)
	}
	st := rejected.Rejected
	if !strings.Contains(st.Message, "opcode") || len(st.Details) != 1 {
		t.Fatalf("rejection %v", st)
	}
	ri := &errdetails.ResourceInfo{}
	if err := st.Details[0].UnmarshalTo(ri); err != nil || ri.ResourceName != good.Name || !strings.Contains(ri.Description, "opcode") {
		t.Errorf("detail %v (%v), want a ResourceInfo naming %s", ri, err, good.Name)
	}

	// A new destination that cannot run is not run at all; a fixed
	// version of the first is taken and the NACK goes away with both.
	bad := en.destination("bad", "return 'unsupported'")
	time.Sleep(200 * time.Millisecond)
	if n.sync.Current().Destinations[bad.Name] != nil {
		t.Error("a rejected new destination is in the configuration")
	}
	en.setHog(good.Name, "return 'v2'")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := hogwirev1.NewDestinationServiceClient(en.admin).DeleteDestination(ctx, &hogwirev1.DeleteDestinationRequest{Name: bad.Name}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the NACK to clear", func() bool {
		resp, err := nodes.ListNodes(context.Background(), &hogwirev1.ListNodesRequest{})
		return err == nil && len(resp.Nodes) == 1 && resp.Nodes[0].Rejected == nil
	})
	if got := n.sync.Current().Destinations[good.Name].GetHog(); got != "return 'v2'" {
		t.Errorf("node runs %q, want the fixed version", got)
	}
}
