// Package etcdtest starts embedded etcd members for tests, so that each
// test's member and client are made, and closed, one way.
package etcdtest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hogwire/hogwire/embedetcd"
)

// Start starts a single member that keeps its data in the test's
// temporary directory, logging nothing, and closes it when the test ends.
func Start(t testing.TB) *embedetcd.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := embedetcd.Start(ctx, embedetcd.Config{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// Client starts a member as Start does and returns a client of it, closed
// when the test ends (before the member is).
func Client(t testing.TB) *clientv3.Client {
	t.Helper()
	c, err := Start(t).Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
