package fetch

import (
	"context"
	"net/http/httptrace"
	"sync/atomic"
)

// Phases in the order an attempt goes through them. Pool wait shares the
// connect phase: from the caller's side both mean "no connection yet".
const (
	stepConnect int32 = iota
	stepDNS
	stepDial
	stepTLS
	stepResponse
	stepBody
)

// phaseTracker records how far an attempt got, so a timeout can say where
// the time went. It only moves forward: a background dial that the
// transport hands to another request may still fire hooks late.
type phaseTracker struct {
	step atomic.Int32
}

func (t *phaseTracker) advance(s int32) {
	for {
		cur := t.step.Load()
		if s <= cur || t.step.CompareAndSwap(cur, s) {
			return
		}
	}
}

func (t *phaseTracker) phase() string {
	switch t.step.Load() {
	case stepDNS:
		return PhaseDNS
	case stepTLS:
		return PhaseTLS
	case stepResponse:
		return PhaseResponse
	case stepBody:
		return PhaseBody
	default:
		return PhaseConnect
	}
}

// hook sets the hooks of trace that net/http calls for the attempt's own
// steps. The DNS and connect steps are learnt by the client's dialer (see
// [Client.dial]), from the attempt's context: httptrace's DNS and connect
// hooks would cost four allocations more, net/http wrapping them for
// package net.
func (t *phaseTracker) hook(trace *httptrace.ClientTrace) {
	trace.TLSHandshakeStart = func() { t.advance(stepTLS) }
	trace.GotConn = func(httptrace.GotConnInfo) { t.advance(stepResponse) }
}

// trackerKey is the context key of an attempt's *phaseTracker, for the
// dialer, which sees the context of the attempt that asked for the
// connection.
type trackerKey struct{}

func trackerFrom(ctx context.Context) *phaseTracker {
	t, _ := ctx.Value(trackerKey{}).(*phaseTracker)
	return t
}
