package controlplane_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/rpcserver"
)

const (
	adminToken = "hwa_test_admin"
	nodeToken  = "hwn_test_node"
)

// testSealer is AES-256-GCM with a fixed key and the aad checked.
type testSealer struct{ aead cipher.AEAD }

func newTestSealer(t testing.TB) *testSealer {
	key := make([]byte, 32)
	rand.Read(key)
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return &testSealer{g}
}

func (s *testSealer) Seal(p, aad []byte) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return "test:" + base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, p, aad)), nil
}

func (s *testSealer) Open(v string, aad []byte) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "test:"))
	if err != nil || len(b) < s.aead.NonceSize() {
		return nil, errors.New("corrupt")
	}
	return s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], aad)
}

type templates map[string]*hogwirev1.Template

func (t templates) List() []*hogwirev1.Template {
	var out []*hogwirev1.Template
	for _, v := range t {
		out = append(out, v)
	}
	return out
}

func (t templates) Get(id string) (*hogwirev1.Template, bool) { v, ok := t[id]; return v, ok }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// replica is one control plane serving gRPC on loopback.
type replica struct {
	srv  *controlplane.Server
	gs   *rpcserver.Server
	addr string
	cc   *grpc.ClientConn // admin
	node *grpc.ClientConn
	etcd *clientv3.Client
	stop func()
}

type replicaOpts struct {
	sealer    controlplane.Sealer
	templates controlplane.Templates
	id        string
	addr      string
}

func startReplica(t testing.TB, endpoints []string, o replicaOpts) *replica {
	t.Helper()
	if o.sealer == nil {
		o.sealer = newTestSealer(t)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := controlplane.NewContext(context.Background(), controlplane.Config{
		Etcd: c, Logger: quiet(), Sealer: o.sealer, Templates: o.templates,
		CompileFilters: filters.Compile, ReplicaID: o.id, LeaderTTL: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	roles := controlplane.Roles()
	gs := rpcserver.New(rpcserver.Options{Logger: quiet(), Policy: &auth.Policy{Services: roles, AdminToken: adminToken, NodeToken: nodeToken}})
	srv.Register(gs)
	gs.SetServing(true)
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { gs.Serve(l); close(served) }()
	r := &replica{srv: srv, gs: gs, addr: l.Addr().String(), etcd: c}
	if r.cc, err = rpcclient.Dial(r.addr, rpcclient.Options{Token: adminToken}); err != nil {
		t.Fatal(err)
	}
	if r.node, err = rpcclient.Dial(r.addr, rpcclient.Options{Token: nodeToken}); err != nil {
		t.Fatal(err)
	}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		r.cc.Close()
		r.node.Close()
		gs.Stop()
		<-served
		c.Close()
	}
	t.Cleanup(r.stop)
	return r
}

func (r *replica) projects() hogwirev1.ProjectServiceClient {
	return hogwirev1.NewProjectServiceClient(r.cc)
}
func (r *replica) destinations() hogwirev1.DestinationServiceClient {
	return hogwirev1.NewDestinationServiceClient(r.cc)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustProject(t testing.TB, r *replica, id string) *hogwirev1.Project {
	t.Helper()
	resp, err := r.projects().CreateProject(ctxT(t), &hogwirev1.CreateProjectRequest{
		ProjectId: id, Project: &hogwirev1.Project{DisplayName: "Project " + id},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Project
}

const webhookHog = `let res := fetch(inputs.url, {'method': 'POST', 'body': inputs.body})
if (res.status >= 400) {
  throw Error(f'HTTP {res.status}')
}`

func webhookDestination(name string) *hogwirev1.Destination {
	return &hogwirev1.Destination{
		DisplayName: name,
		Enabled:     true,
		Hog:         webhookHog,
		InputsSchema: []*hogwirev1.InputSchema{
			{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Required: true},
			{Key: "body", Type: hogwirev1.InputType_INPUT_TYPE_JSON},
			{Key: "api_key", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true},
		},
		Inputs: map[string]*hogwirev1.InputValue{
			"url": {Value: strValue("https://example.invalid/hook")},
		},
	}
}

func writeHealth(t testing.TB, r *replica, project, id string, st hogwirev1.HealthState) {
	t.Helper()
	b, err := proto.Marshal(&hogwirev1.DestinationHealth{State: st, Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.etcd.Put(ctxT(t), "/hogwire/config/health/"+project+"/"+id, string(b)); err != nil {
		t.Fatal(err)
	}
}
