package fetch

import (
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

func (t *phaseTracker) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { t.advance(stepDNS) },
		DNSDone:           func(httptrace.DNSDoneInfo) { t.advance(stepDial) },
		ConnectStart:      func(string, string) { t.advance(stepDial) },
		TLSHandshakeStart: func() { t.advance(stepTLS) },
		GotConn:           func(httptrace.GotConnInfo) { t.advance(stepResponse) },
	}
}
