package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hogwire/hogwire/embedetcd"
	"github.com/hogwire/hogwire/etcdconn"
	"github.com/hogwire/hogwire/secrets"
	"github.com/hogwire/hogwire/testpki"
	"github.com/hogwire/hogwire/testport"
)

// securedEtcd starts an etcd member that speaks only TLS, requires client
// certificates, and has authentication on, with a "hogwire" user allowed
// the keys under /hogwire/ only.
func securedEtcd(t *testing.T, ca *testpki.CA, client testpki.Pair) *embedetcd.Server {
	t.Helper()
	cert := ca.Server(t, "etcd")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := embedetcd.Start(ctx, embedetcd.Config{Dir: t.TempDir(), ClientURL: "https://127.0.0.1:0",
		ClientTLS:  &embedetcd.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, CAFile: ca.CertFile, ClientCertAuth: true},
		Logger:     slog.New(slog.DiscardHandler),
		BcryptCost: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cli, err := etcdconn.Client(ctx, etcdconn.Config{Endpoints: []string{e.ClientURL()}, CACert: ca.CertFile,
		Cert: client.CertFile, Key: client.KeyFile}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for i, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "root-secret"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "hogwire"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "hogwire", "/hogwire/", clientv3.GetPrefixRangeEnd("/hogwire/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "hogwire", "etcd pass"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "hogwire", "hogwire"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("etcd auth setup step %d: %v", i, err)
		}
	}
	return e
}

// securedNATS starts a nats-server with JetStream that speaks only TLS,
// requires client certificates and a user and password.
func securedNATS(t *testing.T, ca *testpki.CA) *server.Server {
	t.Helper()
	cert := ca.Server(t, "nats")
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cert.CertFile, KeyFile: cert.KeyFile, CaFile: ca.CertFile, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(),
		TLS: true, TLSVerify: true, TLSConfig: tc, TLSTimeout: 2,
		Users: []*server.User{{Username: "hogwire", Password: "nats pass"}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type probe struct {
	code int
	body map[string]any
}

func getProbe(url string) (probe, error) {
	resp, err := http.Get(url)
	if err != nil {
		return probe{}, err
	}
	defer resp.Body.Close()
	p := probe{code: resp.StatusCode}
	b, _ := io.ReadAll(resp.Body)
	err = json.Unmarshal(b, &p.body)
	return p, err
}

// waitProbe polls url until ok says yes.
func waitProbe(t *testing.T, url string, within time.Duration, ok func(probe) bool) probe {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, err := getProbe(url)
		if err == nil && ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v %v", url, p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Both roles reach etcd and NATS over TLS with client certificates and
// passwords, given as the flags (and environment variables) an operator
// sets; their probes on the metrics port say ready, and when etcd goes
// away the control plane turns unready but stays alive.
func TestRolesWithSecuredStores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ca := testpki.New(t, "stores")
	client := ca.Client(t, "hogwire")
	etcd := securedEtcd(t, ca, client)
	ns := securedNATS(t, ca)

	key, _ := secrets.GenerateKey()
	keyFile := writeTemp(t, "secrets.key", key+"\n")
	t.Setenv("HOGWIRE_ADMIN_TOKEN", "hwa_stores")
	t.Setenv("HOGWIRE_NODE_TOKEN", "hwn_stores")
	// The NATS password from the environment, as a Kubernetes Secret
	// would give it; the etcd password from a file.
	t.Setenv("HOGWIRE_NATS_PASSWORD", "nats pass")
	etcdPassword := writeTemp(t, "etcd-password", "etcd pass\n")
	natsTLS := []string{"--nats-url", ns.ClientURL(), "--nats-tlsca", ca.CertFile, "--nats-tlscert", client.CertFile,
		"--nats-tlskey", client.KeyFile, "--nats-user", "hogwire"}

	cpAddr, cpHTTP, cpMetrics := testport.Addr(t), testport.Addr(t), testport.Addr(t)
	dpGRPC, dpHTTP, dpMetrics := testport.Addr(t), testport.Addr(t), testport.Addr(t)
	rctx, stop := context.WithCancel(ctx)
	cpDone, dpDone := make(chan error, 1), make(chan error, 1)
	go func() {
		cpDone <- run(rctx, append([]string{"controlplane", "--grpc-addr", cpAddr, "--http-addr", cpHTTP, "--metrics-addr", cpMetrics,
			"--etcd-endpoints", etcd.ClientURL(), "--etcd-cacert", ca.CertFile, "--etcd-cert", client.CertFile,
			"--etcd-key", client.KeyFile, "--etcd-user", "hogwire", "--etcd-password-file", etcdPassword,
			"--secrets-key-file", keyFile, "--log-level", "error"}, natsTLS...), io.Discard, io.Discard)
	}()
	go func() {
		dpDone <- run(rctx, append([]string{"dataplane", "--grpc-addr", dpGRPC, "--http-addr", dpHTTP, "--metrics-addr", dpMetrics,
			"--controlplane-addr", cpAddr, "--node-id", "dp-secure", "--event-storage", "memory", "--log-level", "error"},
			natsTLS...), io.Discard, io.Discard)
	}()
	defer func() {
		stop()
		for _, c := range []chan error{cpDone, dpDone} {
			select {
			case err := <-c:
				if err != nil {
					t.Errorf("role returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("a role did not stop")
			}
		}
	}()

	ready := func(p probe) bool { return p.code == http.StatusOK && p.body["status"] == "ready" }
	for _, base := range []string{"http://" + cpMetrics, "http://" + cpHTTP, "http://" + dpMetrics} {
		p := waitProbe(t, base+"/readyz", time.Minute, ready)
		t.Logf("%s/readyz: %v", base, p.body)
		if p, err := getProbe(base + "/livez"); err != nil || p.code != http.StatusOK {
			t.Errorf("%s/livez: %+v %v", base, p, err)
		}
	}
	if p, _ := getProbe("http://" + dpMetrics + "/readyz"); p.body["checks"].(map[string]any)["config"] != "ok" {
		t.Errorf("data plane ready without its configuration: %v", p.body)
	}

	// etcd goes away: the control plane cannot serve, but a restart would
	// not help, so it stays alive.
	etcd.Close()
	unready := func(p probe) bool {
		checks, _ := p.body["checks"].(map[string]any)
		return p.code == http.StatusServiceUnavailable && checks != nil && checks["etcd"] != "ok" && checks["nats"] == "ok"
	}
	for _, base := range []string{"http://" + cpMetrics, "http://" + cpHTTP} {
		p := waitProbe(t, base+"/readyz", time.Minute, unready)
		t.Logf("%s/readyz with etcd down: %v", base, p.body)
		if p, err := getProbe(base + "/livez"); err != nil || p.code != http.StatusOK {
			t.Errorf("%s/livez with etcd down: %+v %v", base, p, err)
		}
	}
}
