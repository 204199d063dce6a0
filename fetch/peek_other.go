//go:build !linux

package fetch

import "net"

// peeker cannot tell without a read on this system; a request that finds
// its connection closed is replayed as net/http would (see
// [Client.attemptPlain]).
type peeker struct{}

func (*peeker) init(net.Conn)      {}
func (*peeker) closedByPeer() bool { return false }
