package etcdconn_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hogwire/hogwire/embedetcd"
	"github.com/hogwire/hogwire/etcdconn"
	"github.com/hogwire/hogwire/testpki"
	"github.com/hogwire/hogwire/testport"
)

// cluster starts three members that speak TLS to clients and to each
// other and require client certificates.
func cluster(t *testing.T, ca *testpki.CA) []*embedetcd.Server {
	t.Helper()
	srv := ca.Server(t, "etcd")
	tls := &embedetcd.TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, CAFile: ca.CertFile, ClientCertAuth: true}
	type member struct{ name, client, peer string }
	var members []member
	var initial []string
	for i := range 3 {
		m := member{fmt.Sprintf("m%d", i), fmt.Sprintf("https://127.0.0.1:%d", testport.Port(t)), fmt.Sprintf("https://127.0.0.1:%d", testport.Port(t))}
		members = append(members, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	servers := make([]*embedetcd.Server, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = embedetcd.Start(context.Background(), embedetcd.Config{
				Name: m.name, Dir: t.TempDir(), ClientURL: m.client, PeerURL: m.peer,
				InitialCluster: strings.Join(initial, ","), ClientTLS: tls, PeerTLS: tls,
				Logger: slog.New(slog.DiscardHandler), StartTimeout: time.Minute, BcryptCost: 4,
			})
		}()
	}
	wg.Wait()
	for i, s := range servers {
		if s != nil {
			t.Cleanup(s.Close)
		} else {
			t.Fatalf("member %d: %v", i, errs[i])
		}
	}
	return servers
}

func endpoints(servers []*embedetcd.Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.ClientURL())
	}
	return out
}

// enableAuth creates root and a "hogwire" user that may only touch keys
// under /hogwire/, then turns authentication on.
func enableAuth(t *testing.T, cfg etcdconn.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := etcdconn.Client(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "root-secret"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "hogwire"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "hogwire", "/hogwire/", clientv3.GetPrefixRangeEnd("/hogwire/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "hogwire", "s3cret pass"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "hogwire", "hogwire"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
}

// A client with the operator's TLS files and a password from a file works
// against a three-member TLS cluster with authentication, is refused
// without each of them, and keeps working when a member dies.
func TestTLSAndAuthAgainstThreeMemberCluster(t *testing.T) {
	ca := testpki.New(t, "etcd")
	servers := cluster(t, ca)
	client := ca.Client(t, "hogwire")
	base := etcdconn.Config{
		Endpoints: endpoints(servers), CACert: ca.CertFile, Cert: client.CertFile, Key: client.KeyFile,
		DialTimeout: 30 * time.Second,
	}
	enableAuth(t, base)

	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("s3cret pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := base
	good.User, good.PasswordFile = "hogwire", pwFile

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := etcdconn.Client(ctx, good, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "/hogwire/k", "v"); err != nil {
		t.Fatalf("put with good credentials: %v", err)
	}
	if _, err := cli.Put(ctx, "/elsewhere", "v"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("put outside the role's prefix: got %v, want permission denied", err)
	}

	refused := map[string]etcdconn.Config{}
	wrong := good
	wrong.PasswordFile, wrong.Password = "", "wrong"
	wrong.User = "hogwire"
	refused["wrong password"] = wrong
	noCert := good
	noCert.Cert, noCert.Key = "", ""
	refused["no client certificate"] = noCert
	otherCA := testpki.New(t, "other")
	noTrust := good
	noTrust.CACert = otherCA.CertFile
	refused["server not trusted"] = noTrust
	for name, cfg := range refused {
		t.Run(name, func(t *testing.T) {
			cfg.DialTimeout = 3 * time.Second
			c, err := etcdconn.Client(ctx, cfg, nil)
			if err == nil {
				// Without a login to fail, the first request must.
				rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
				_, err = c.Get(rctx, "/hogwire/k")
				rcancel()
				c.Close()
			}
			if err == nil {
				t.Fatal("connected")
			}
		})
	}

	// One member down: the client's other endpoints carry on.
	servers[0].Close()
	for i := range 3 {
		key := fmt.Sprintf("/hogwire/after-%d", i)
		if _, err := cli.Put(ctx, key, "v"); err != nil {
			t.Fatalf("put with a member down: %v", err)
		}
		r, err := cli.Get(ctx, key)
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("get with a member down: %v %v", r, err)
		}
	}
}

func TestClientConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	t.Run("password from env", func(t *testing.T) {
		c, err := etcdconn.Config{Endpoints: []string{"http://a:2379"}, User: "u"}.ClientConfig(env(map[string]string{etcdconn.PasswordEnv: "p"}))
		if err != nil || c.Username != "u" || c.Password != "p" {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("user:password as etcdctl takes it", func(t *testing.T) {
		c, err := etcdconn.Config{Endpoints: []string{"http://a:2379"}, User: "u:p:q"}.ClientConfig(env(nil))
		if err != nil || c.Username != "u" || c.Password != "p:q" {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("https endpoint uses TLS without files", func(t *testing.T) {
		c, err := etcdconn.Config{Endpoints: []string{"https://a:2379", "https://b:2379"}}.ClientConfig(env(nil))
		if err != nil || c.TLS == nil || len(c.Endpoints) != 2 {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("plain http stays plain", func(t *testing.T) {
		c, err := etcdconn.Config{Endpoints: []string{"http://a:2379"}}.ClientConfig(env(nil))
		if err != nil || c.TLS != nil {
			t.Fatalf("%+v %v", c, err)
		}
	})
	for name, cfg := range map[string]etcdconn.Config{
		"no endpoints":           {},
		"cert without key":       {Endpoints: []string{"https://a"}, Cert: "c.pem"},
		"user without password":  {Endpoints: []string{"https://a"}, User: "u"},
		"password file, no user": {Endpoints: []string{"https://a"}, PasswordFile: "/dev/null"},
		"missing password file":  {Endpoints: []string{"https://a"}, User: "u", PasswordFile: "/nonexistent"},
		"missing CA file":        {Endpoints: []string{"https://a"}, CACert: "/nonexistent"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := cfg.ClientConfig(env(nil)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// RegisterFlags reads the etcdctl names as well as the prefixed ones.
func TestFlags(t *testing.T) {
	var c etcdconn.Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs, "http://127.0.0.1:2379")
	if err := fs.Parse([]string{"--etcd-endpoints=https://a:2379, https://b:2379", "--cacert=ca.pem", "--etcd-user=u:p"}); err != nil {
		t.Fatal(err)
	}
	cc, err := c.ClientConfig(func(string) string { return "" })
	if err == nil {
		t.Fatalf("missing CA file accepted: %+v", cc)
	}
	c.CACert = ""
	cc, err = c.ClientConfig(func(string) string { return "" })
	if err != nil || strings.Join(cc.Endpoints, " ") != "https://a:2379 https://b:2379" || cc.Username != "u" {
		t.Fatalf("%+v %v", cc, err)
	}
}
