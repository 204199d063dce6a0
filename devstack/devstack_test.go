package devstack

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/rpcclient"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, dir string) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := Start(ctx, Config{
		DataDir:  dir,
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func stop(t *testing.T, st *Stack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func dial(t *testing.T, addr, token string) *grpc.ClientConn {
	t.Helper()
	cc, err := rpcclient.Dial(addr, rpcclient.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestDevStackServes(t *testing.T) {
	st := start(t, t.TempDir())
	defer stop(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	anon := dial(t, st.GRPCAddr, "")
	hr, err := healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, want SERVING", hr.Status)
	}
	hr, err = healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{Service: "hogwire.v1.DestinationService"})
	if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("DestinationService health = %v, %v; want SERVING", hr.GetStatus(), err)
	}

	// Reflection, as `grpcurl list` uses it, needs no token.
	rs, err := reflectionpb.NewServerReflectionClient(anon).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	rs.CloseSend()
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	for _, want := range []string{
		"grpc.health.v1.Health",
		"hogwire.v1.ProjectService", "hogwire.v1.DestinationService", "hogwire.v1.TemplateService",
		"hogwire.v1.TestService", "hogwire.v1.LogService", "hogwire.v1.MetricsService",
		"hogwire.v1.ConfigService", "hogwire.v1.TelemetryService", "hogwire.v1.EventService",
		"hogwire.v1.NodeService",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}

	// The admin API refuses callers without the admin token.
	_, err = hogwirev1.NewProjectServiceClient(anon).ListProjects(ctx, &hogwirev1.ListProjectsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListProjects without token: %v, want Unauthenticated", err)
	}
	_, err = hogwirev1.NewProjectServiceClient(dial(t, st.GRPCAddr, "hwa_wrong")).ListProjects(ctx, &hogwirev1.ListProjectsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListProjects with a wrong token: %v, want Unauthenticated", err)
	}
	// The node token is not an admin token.
	_, err = hogwirev1.NewProjectServiceClient(dial(t, st.GRPCAddr, st.NodeToken)).ListProjects(ctx, &hogwirev1.ListProjectsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListProjects with the node token: %v, want Unauthenticated", err)
	}
	_, err = hogwirev1.NewProjectServiceClient(dial(t, st.GRPCAddr, st.AdminToken)).ListProjects(ctx, &hogwirev1.ListProjectsRequest{})
	if code := status.Code(err); code == codes.Unauthenticated {
		t.Errorf("ListProjects with the admin token: %v", err)
	}

	res, err := http.Get("http://" + st.HTTPAddr + "/_health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /_health = %d, want 200", res.StatusCode)
	}
}

func TestDevStackRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	st := start(t, dir)
	token := st.AdminToken
	c, err := st.etcd.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "/hogwire/test/key", "kept"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	stop(t, st)

	st = start(t, dir)
	defer stop(t, st)
	if st.AdminToken != token {
		t.Errorf("admin token changed across restart: %q then %q", token, st.AdminToken)
	}
	c, err = st.etcd.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Get(ctx, "/hogwire/test/key")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "kept" {
		t.Fatalf("after restart: %v, want the key written before", got.Kvs)
	}
}
