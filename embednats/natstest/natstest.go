// Package natstest starts embedded NATS servers for tests, so that each
// test's server and connection are made, and closed, one way.
package natstest

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/hogwire/hogwire/embednats"
)

// Start starts an embedded JetStream server that keeps its data in the
// test's temporary directory, and shuts it down when the test ends.
func Start(t testing.TB) *embednats.Server {
	t.Helper()
	ns, err := embednats.Start(embednats.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns
}

// Connect starts a server as Start does and returns a connection to it,
// closed when the test ends (before the server is).
func Connect(t testing.TB) *nats.Conn {
	t.Helper()
	ns := Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
