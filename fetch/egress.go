package fetch

import (
	"context"
	"net/netip"
	"syscall"
)

// Loopback returns the ranges "hogwire dev" and tests pass as
// [Options.AllowCIDRs] so that a destination on the local machine can be
// reached.
func Loopback() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	}
}

type denyRule struct {
	prefix netip.Prefix
	reason string
}

// guard decides, per resolved address, whether the client may connect.
type guard struct {
	allow []netip.Prefix
	deny  []denyRule
	// Addresses in these IPv6 ranges carry an IPv4 address that is what is
	// really reached, so that address is checked too.
	nat64     netip.Prefix
	sixToFour netip.Prefix
}

func newGuard(allow []netip.Prefix) *guard {
	g := &guard{
		nat64:     netip.MustParsePrefix("64:ff9b::/96"),
		sixToFour: netip.MustParsePrefix("2002::/16"),
	}
	for _, p := range allow {
		g.allow = append(g.allow, p.Masked())
	}
	// Order matters only for the reason reported: specific entries come
	// before the ranges that contain them.
	for _, r := range []struct{ cidr, reason string }{
		{"0.0.0.0/8", "unspecified"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "shared (CGNAT)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.169.254/32", "cloud metadata"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignment"}, // includes Oracle Cloud's 192.0.0.192 metadata
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"}, // includes the limited broadcast address
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible"},
		{"64:ff9b:1::/48", "local-use NAT64"},
		{"fd00:ec2::254/128", "cloud metadata"},
		{"fc00::/7", "private"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	} {
		g.deny = append(g.deny, denyRule{netip.MustParsePrefix(r.cidr), r.reason})
	}
	return g
}

// check returns an *EgressError when a connection to a is not allowed.
func (g *guard) check(a netip.Addr) error {
	// Prefix.Contains never matches a zoned address, and an IPv4-mapped
	// IPv6 address reaches the IPv4 host.
	a = a.WithZone("").Unmap()
	if !a.IsValid() {
		return &EgressError{Addr: a, Reason: "invalid"}
	}
	for _, p := range g.allow {
		if p.Contains(a) {
			return nil
		}
	}
	for _, r := range g.deny {
		if r.prefix.Contains(a) {
			return &EgressError{Addr: a, Reason: r.reason}
		}
	}
	if a.Is6() {
		b := a.As16()
		var v4 netip.Addr
		switch {
		case g.nat64.Contains(a):
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		case g.sixToFour.Contains(a):
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if v4.IsValid() {
			if err := g.check(v4); err != nil {
				return &EgressError{Addr: a, Reason: err.(*EgressError).Reason}
			}
		}
	}
	return nil
}

// control is the dialer's Control hook. It runs once the address is
// resolved and the socket exists, but before connect(2), so a refused
// address never sees a packet.
func (g *guard) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address we cannot read is an address we cannot vet.
		return &EgressError{Reason: "unparseable"}
	}
	return g.check(ap.Addr())
}
