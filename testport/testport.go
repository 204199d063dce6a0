// Package testport hands tests loopback TCP ports to give to servers that
// must be told their address before they start (etcd peers, a role's
// flags, a server restarted on the same port).
//
// A port found by listening on port 0 and closing the listener is taken
// from the kernel's ephemeral range, where every outgoing connection of
// every test process running beside this one also takes its source port,
// and a server given it later can find it gone ("address already in
// use"). The ports here come from below that range, so only another
// caller of this package can want the same one, and a process never hands
// out one port twice.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Below the usual ephemeral range (Linux's default is 32768–60999) and
// above the ports well-known services use.
const (
	low  = 20000
	high = 32767
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Port returns a port on 127.0.0.1 that nothing listened on a moment ago.
func Port(t testing.TB) int {
	t.Helper()
	lo, hi := bounds()
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := lo + rand.IntN(hi-lo+1)
		if given[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		given[p] = true
		return p
	}
	t.Fatalf("testport: no free port in %d-%d", lo, hi)
	return 0
}

// Addr returns "127.0.0.1:port" for a Port.
func Addr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", Port(t))
}

// bounds keeps below the kernel's ephemeral range when it was moved down.
func bounds() (int, int) {
	lo, hi := low, high
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	if start, err := strconv.Atoi(f[0]); err == nil && start-1 < hi && start-1 > lo+1000 {
		hi = start - 1
	}
	return lo, hi
}
