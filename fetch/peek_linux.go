package fetch

import (
	"net"
	"syscall"
)

// peeker tells whether the server has closed (or reset) an idle keep-alive
// connection, or sent on it unasked, by peeking at its socket without
// blocking: one system call before a connection is reused, where net/http
// keeps a goroutine reading every idle connection to learn the same.
type peeker struct {
	rc     syscall.RawConn // nil when the connection has no socket
	peek   func(fd uintptr) bool
	closed bool
}

func (p *peeker) init(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.rc = rc
	var buf [1]byte
	// Made once per connection: a closure per reuse would be an
	// allocation per request.
	p.peek = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing to read, idle as it should be. Data, EOF
		// (no error, nothing read) or an error: it cannot carry a
		// request.
		p.closed = err != syscall.EAGAIN
		return true
	}
}

func (p *peeker) closedByPeer() bool {
	if p.rc == nil {
		return false
	}
	if err := p.rc.Read(p.peek); err != nil {
		return true
	}
	return p.closed
}
