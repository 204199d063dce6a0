package testport_test

import (
	"net"
	"testing"

	"github.com/hogwire/hogwire/testport"
)

// Ports are distinct within a process and free to listen on.
func TestPortsDistinctAndFree(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := testport.Port(t)
		if p < 1024 || p >= 32768 {
			t.Fatalf("port %d outside the range below the ephemeral ports", p)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	l, err := net.Listen("tcp", testport.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
