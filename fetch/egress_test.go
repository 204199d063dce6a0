package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	g := newGuard(nil)
	for _, tc := range []struct {
		addr   string
		reason string // "" means allowed
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"2606:4700:4700::1111", ""},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"172.31.255.255", "private"},
		{"172.32.0.1", ""},
		{"192.168.1.1", "private"},
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.10.10", "link-local"},
		{"100.64.0.1", "shared (CGNAT)"},
		{"100.100.100.200", "shared (CGNAT)"}, // Alibaba Cloud metadata
		{"100.128.0.1", ""},
		{"192.0.0.192", "IETF protocol assignment"},
		{"0.0.0.0", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fd00:ec2::254", "cloud metadata"},
		{"fd12:3456::1", "private"},
		{"fc00::1", "private"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"ff02::1", "multicast"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::a00:1", "private"},          // NAT64 of 10.0.0.1
		{"64:ff9b::808:808", ""},               // NAT64 of 8.8.8.8
		{"2002:7f00:1::", "loopback"},          // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::", "cloud metadata"}, // 6to4 of 169.254.169.254
		{"::7f00:1", "IPv4-compatible"},
	} {
		err := g.check(netip.MustParseAddr(tc.addr))
		if tc.reason == "" {
			if err != nil {
				t.Errorf("%s: refused (%v), want allowed", tc.addr, err)
			}
			continue
		}
		var eg *EgressError
		if !errors.As(err, &eg) || eg.Reason != tc.reason || !errors.Is(err, ErrEgressDenied) {
			t.Errorf("%s: got %v, want refused as %s", tc.addr, err, tc.reason)
		}
	}
}

func TestGuardAllowList(t *testing.T) {
	g := newGuard(append(Loopback(), netip.MustParsePrefix("10.1.2.3/16")))
	for addr, allowed := range map[string]bool{
		"127.0.0.1":        true,
		"::1":              true,
		"::ffff:127.0.0.1": true,
		"10.1.99.99":       true, // the prefix is masked to 10.1.0.0/16
		"10.2.0.1":         false,
		"169.254.169.254":  false,
		"192.168.0.1":      false,
	} {
		if err := g.check(netip.MustParseAddr(addr)); (err == nil) != allowed {
			t.Errorf("%s: err %v, want allowed=%v", addr, err, allowed)
		}
	}
}

func TestGuardControlFailsClosed(t *testing.T) {
	g := newGuard(nil)
	if err := g.control(context.Background(), "tcp", "not-an-address", nil); !errors.Is(err, ErrEgressDenied) {
		t.Fatalf("got %v, want ErrEgressDenied for an unparseable address", err)
	}
	if err := g.control(context.Background(), "tcp4", "93.184.215.14:443", nil); err != nil {
		t.Fatalf("public address refused: %v", err)
	}
}

// The requests below target addresses that must never be dialled. The
// guard runs before connect(2), so they fail at once with *EgressError and
// no packet leaves the machine.
func TestEgressRefusedBeforeConnecting(t *testing.T) {
	c, fs := newTestClient(t) // allows loopback only
	for _, tc := range []struct{ url, addr string }{
		{"http://10.0.0.1/hook", "10.0.0.1"},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254"},
		{"https://192.168.0.10:8443/", "192.168.0.10"},
		{"http://[fd00:ec2::254]/", "fd00:ec2::254"},
		{"http://[::ffff:10.0.0.1]/", "10.0.0.1"},
		{"http://0.0.0.0:1/", "0.0.0.0"},
	} {
		var obs attempts
		resp, err := c.Do(context.Background(), Request{Method: "POST", URL: tc.url}, Policy{}, obs.observe)
		var eg *EgressError
		if resp != nil || !errors.As(err, &eg) || !errors.Is(err, ErrEgressDenied) {
			t.Errorf("%s: got %v (%T), want *EgressError", tc.url, err, err)
			continue
		}
		if eg.Addr.String() != tc.addr {
			t.Errorf("%s: refused address %s, want %s", tc.url, eg.Addr, tc.addr)
		}
		if a := obs.list(); len(a) != 1 || a[0].WillRetry {
			t.Errorf("%s: observed %+v; an egress refusal must not be retried", tc.url, a)
		}
	}
	if w := fs.recorded(); len(w) != 0 {
		t.Fatalf("waited %v between attempts, want no retries", w)
	}
}

func TestLoopbackRefusedUnlessAllowed(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	strict := New(Options{})
	t.Cleanup(strict.CloseIdleConnections)
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/"} {
		_, err := strict.Do(context.Background(), Request{URL: u}, Policy{}, nil)
		var eg *EgressError
		if !errors.As(err, &eg) || eg.Reason != "loopback" {
			t.Errorf("%s: got %v, want loopback refused", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("server reached %d times through a client that does not allow loopback", hits.Load())
	}

	allowed, _ := newTestClient(t)
	resp, err := allowed.Do(context.Background(), Request{URL: "http://localhost:" + port + "/"}, Policy{}, nil)
	if err != nil || resp.Status != 200 || hits.Load() != 1 {
		t.Fatalf("with loopback allowed: %v, hits %d", err, hits.Load())
	}
}
