// Package devstacktest starts a dev stack for a test: loopback ports, an
// in-memory event log, quiet logs, an admin connection, and everything
// closed when the test ends.
package devstacktest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/rpcclient"
)

// Start starts a stack; edit, when not nil, changes the configuration first
// (the defaults: memory storage, AckWait 10s, pulls of 20 events).
func Start(t testing.TB, edit func(*devstack.Config)) (*devstack.Stack, *grpc.ClientConn) {
	t.Helper()
	cfg := devstack.Config{
		DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		EventLog: eventlog.Config{Memory: true, AckWait: 10 * time.Second}, ConsumeBatch: 20,
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{Token: st.AdminToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st.Close(ctx)
	})
	return st, cc
}
