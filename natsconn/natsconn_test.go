package natsconn_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/hogwire/hogwire/natsconn"
	"github.com/hogwire/hogwire/testpki"
	"github.com/hogwire/hogwire/testport"
)

// startServer runs a real nats-server on a random loopback port with TLS
// that requires client certificates, plus whatever auth configure adds.
func startServer(t *testing.T, ca *testpki.CA, port int, configure func(*server.Options)) *server.Server {
	t.Helper()
	cert := ca.Server(t, "nats")
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cert.CertFile, KeyFile: cert.KeyFile, CaFile: ca.CertFile, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := &server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true,
		TLS: true, TLSVerify: true, TLSConfig: tc, TLSTimeout: 2}
	configure(opts)
	s, err := server.NewServer(opts)
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

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// roundTrip proves the connection works end to end.
func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.SubscribeSync("hogwire.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("hogwire.test", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "hi" {
		t.Fatalf("round trip: %v %v", m, err)
	}
}

func connect(t *testing.T, cfg natsconn.Config) (*nats.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return natsconn.Connect(ctx, cfg, slog.New(slog.DiscardHandler))
}

func TestTLSWithUserPasswordAndNKey(t *testing.T) {
	ca := testpki.New(t, "nats")
	userKP, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	userPub, _ := userKP.PublicKey()
	seed, _ := userKP.Seed()
	s := startServer(t, ca, -1, func(o *server.Options) {
		o.Users = []*server.User{{Username: "hogwire", Password: "s3cret"}}
		o.Nkeys = []*server.NkeyUser{{Nkey: userPub}}
	})
	client := ca.Client(t, "hogwire")
	base := natsconn.Config{URL: s.ClientURL(), CACert: ca.CertFile, Cert: client.CertFile, Key: client.KeyFile, Name: "test"}

	good := map[string]natsconn.Config{}
	pw := base
	pw.User, pw.PasswordFile = "hogwire", writeFile(t, "password", "s3cret\n")
	good["user and password file"] = pw
	nk := base
	nk.NKeyFile = writeFile(t, "user.nk", string(seed))
	good["nkey seed"] = nk
	t.Setenv(natsconn.PasswordEnv, "s3cret")
	env := base
	env.User = "hogwire"
	good["password from env"] = env
	for name, cfg := range good {
		t.Run(name, func(t *testing.T) {
			nc, err := connect(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if !nc.TLSRequired() {
				t.Error("connection is not TLS")
			}
			roundTrip(t, nc)
		})
	}

	refused := map[string]natsconn.Config{}
	wrong := base
	wrong.User, wrong.Password = "hogwire", "wrong"
	refused["wrong password"] = wrong
	noAuth := base
	refused["no credentials"] = noAuth
	noCert := pw
	noCert.Cert, noCert.Key = "", ""
	refused["no client certificate"] = noCert
	other := testpki.New(t, "other")
	noTrust := pw
	noTrust.CACert = other.CertFile
	refused["server not trusted"] = noTrust
	for name, cfg := range refused {
		t.Run(name, func(t *testing.T) {
			nc, err := connect(t, cfg)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "wrong") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// A credentials file (user JWT and seed) authenticates against a server in
// operator mode, NATS' decentralised auth.
func TestCredentialsFile(t *testing.T) {
	ca := testpki.New(t, "nats")
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	opClaims := jwt.NewOperatorClaims(opPub)
	acc, _ := nkeys.CreateAccount()
	accPub, _ := acc.PublicKey()
	accJWT, err := jwt.NewAccountClaims(accPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	userJWT, err := jwt.NewUserClaims(userPub).Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(accPub, accJWT); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, ca, -1, func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{opClaims}
		o.AccountResolver = resolver
	})
	client := ca.Client(t, "hogwire")
	cfg := natsconn.Config{URL: s.ClientURL(), CACert: ca.CertFile, Cert: client.CertFile, Key: client.KeyFile,
		CredsFile: writeFile(t, "user.creds", string(creds))}
	nc, err := connect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	roundTrip(t, nc)

	// A user signed by an account the server does not know is refused.
	stranger, _ := nkeys.CreateAccount()
	badJWT, _ := jwt.NewUserClaims(userPub).Encode(stranger)
	badCreds, _ := jwt.FormatUserConfig(badJWT, seed)
	cfg.CredsFile = writeFile(t, "bad.creds", string(badCreds))
	if nc, err := connect(t, cfg); err == nil {
		nc.Close()
		t.Fatal("connected with an unknown account's user")
	}
}

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// An outage is one warning however many reconnect attempts it takes, and
// the connection comes back by itself.
func TestOneWarningPerOutage(t *testing.T) {
	ca := testpki.New(t, "nats")
	auth := func(o *server.Options) { o.Users = []*server.User{{Username: "u", Password: "p"}} }
	port := testport.Port(t)
	s := startServer(t, ca, port, auth)
	client := ca.Client(t, "hogwire")
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := natsconn.Config{URL: s.ClientURL(), CACert: ca.CertFile, Cert: client.CertFile, Key: client.KeyFile, User: "u", Password: "p"}
	nc, err := natsconn.Connect(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	check := natsconn.Check(nc)
	if err := check(context.Background()); err != nil {
		t.Fatalf("check while connected: %v", err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	// Several reconnect attempts fail (ReconnectWait is about a second).
	deadline := time.Now().Add(30 * time.Second)
	for nc.Stats().Reconnects == 0 && strings.Count(logs.String(), "level=WARN") == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	if err := check(context.Background()); err == nil {
		t.Error("check passes while the server is down")
	}
	startServer(t, ca, port, auth)
	for !nc.IsConnected() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !nc.IsConnected() {
		t.Fatal("did not reconnect")
	}
	roundTrip(t, nc)
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "NATS connection restored") {
		t.Errorf("no log line for the reconnect:\n%s", out)
	}
}

func TestOptionsRejectConflicts(t *testing.T) {
	for name, cfg := range map[string]natsconn.Config{
		"cert without key":      {Cert: "c.pem"},
		"two auth methods":      {User: "u", Password: "p", NKeyFile: "/dev/null"},
		"password file no user": {PasswordFile: "/dev/null"},
		"user without password": {User: "u"},
		"missing creds file":    {CredsFile: "/nonexistent"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := cfg.Options(func(string) string { return "" }, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
