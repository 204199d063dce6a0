package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Sentinel errors for errors.Is. The typed errors below match them.
var (
	ErrTimeout        = errors.New("fetch: timeout")
	ErrConnection     = errors.New("fetch: connection error")
	ErrEgressDenied   = errors.New("fetch: egress denied")
	ErrInvalidRequest = errors.New("fetch: invalid request")
)

// Phases of an attempt, as reported by [TimeoutError].
const (
	PhaseDNS      = "dns"
	PhaseConnect  = "connect" // also covers waiting for a pooled connection
	PhaseTLS      = "tls"
	PhaseResponse = "response" // request sent, waiting for the response headers
	PhaseBody     = "body"
)

// TimeoutError reports that an attempt ran out of time. It is not a status
// code: the destination never answered.
type TimeoutError struct {
	Phase string        // one of the Phase constants
	After time.Duration // time spent in the attempt
	err   error         // the caller's context error, when its deadline was the one that fired
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("timed out in %s phase after %s", e.Phase, e.After.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// Unwrap exposes context.DeadlineExceeded when the caller's own deadline
// ended the attempt.
func (e *TimeoutError) Unwrap() error { return e.err }

// Timeout reports true, as net.Error does for timeouts.
func (e *TimeoutError) Timeout() bool { return true }

// Kinds of [ConnError]. All are retried except ConnTLS.
const (
	ConnRefused  = "refused"
	ConnReset    = "reset"
	ConnDNS      = "dns"
	ConnTLS      = "tls"      // certificate or handshake failure; not retried
	ConnProtocol = "protocol" // anything else that broke the exchange, e.g. a malformed response
)

// ConnError reports a failure to connect or to keep talking to the
// destination.
type ConnError struct {
	Kind string // one of the Conn constants
	Addr string // host:port from the URL, without credentials
	Err  error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("connection error (%s) to %s: %v", e.Kind, e.Addr, e.Err)
}

// Is makes errors.Is(err, ErrConnection) true.
func (e *ConnError) Is(target error) bool { return target == ErrConnection }

func (e *ConnError) Unwrap() error { return e.Err }

// EgressError reports that the egress guard refused to connect to Addr.
type EgressError struct {
	Addr   netip.Addr
	Reason string // e.g. "private", "loopback", "cloud metadata"
}

func (e *EgressError) Error() string {
	return fmt.Sprintf("egress to %s denied (%s address)", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrEgressDenied) true.
func (e *EgressError) Is(target error) bool { return target == ErrEgressDenied }

// retriable reports whether a failed attempt that produced no response is
// worth another try.
func retriable(err error) bool {
	var te *TimeoutError
	if errors.As(err, &te) {
		return true
	}
	var ce *ConnError
	if errors.As(err, &ce) {
		// A certificate that failed verification will fail again.
		return ce.Kind != ConnTLS
	}
	return false
}

// classify turns a transport error into one of the package's typed errors.
// ctx is the caller's context; expired says the attempt's own timeout
// fired.
func classify(ctx context.Context, expired bool, err error, phase string, elapsed time.Duration, addr string) error {
	var eg *EgressError
	if errors.As(err, &eg) {
		return eg
	}
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(cause, context.DeadlineExceeded) {
			return &TimeoutError{Phase: phase, After: elapsed, err: cause}
		}
		return cause
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) && isTimeout(err) {
		// A connection deadline set to the caller's fired just before the
		// context's own timer: the caller's deadline all the same.
		return &TimeoutError{Phase: phase, After: elapsed, err: context.DeadlineExceeded}
	}
	if expired || isTimeout(err) {
		return &TimeoutError{Phase: phase, After: elapsed}
	}
	kind := ConnProtocol
	var (
		dnsErr    *net.DNSError
		verifyErr *tls.CertificateVerificationError
		authErr   x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invErr    x509.CertificateInvalidError
		recErr    tls.RecordHeaderError
		alertErr  tls.AlertError
	)
	switch {
	case errors.As(err, &dnsErr):
		kind = ConnDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = ConnRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		kind = ConnReset
	case errors.As(err, &verifyErr), errors.As(err, &authErr), errors.As(err, &hostErr),
		errors.As(err, &invErr), errors.As(err, &recErr), errors.As(err, &alertErr):
		kind = ConnTLS
	}
	return &ConnError{Kind: kind, Addr: addr, Err: err}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
