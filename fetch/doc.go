// Package fetch is the outbound HTTP client that destinations deliver
// through.
//
// One [Client] is shared by the whole process. It keeps connections alive
// across destinations, never follows redirects (a 3xx is handed back as the
// response), and retries what is worth retrying: 5xx, 408, 429, timeouts and
// connection errors, with exponential backoff and full jitter, honouring
// Retry-After up to a clamp. Everything else, including every other 4xx,
// goes straight back to the caller.
//
// Plain http:// requests go over the package's own HTTP/1.1 client (see
// plain), which does the exchange on the caller's goroutine; https:// and
// the few requests it does not take go through net/http, which adds HTTP/2.
// The two keep one contract, pinned by the same tests.
//
// Failures that produced no response are typed, so a caller never has to
// invent a status code for them:
//
//   - [*TimeoutError] (matches [ErrTimeout]) names the phase that was in
//     progress when the per-attempt timeout fired: dns, connect, tls,
//     response or body.
//   - [*ConnError] (matches [ErrConnection]) covers refused and reset
//     connections, DNS failures and TLS verification failures.
//   - [*EgressError] (matches [ErrEgressDenied]) means the egress guard
//     refused the destination address.
//   - [ErrInvalidRequest] marks a request that could never be sent.
//
// # Egress guard
//
// Destinations are user-controlled URLs, so the client refuses to connect to
// private, loopback, link-local, CGNAT, multicast, unspecified and cloud
// metadata addresses. The check runs in the dialer's Control hook, after DNS
// resolution and before the socket connects, for every connection the
// client opens. A hostname that resolves (or later re-resolves) to an
// internal address is therefore refused the same way as a literal IP, and no
// packet is sent to it. [Options.AllowCIDRs] opens specific ranges; tests
// and "hogwire dev" pass [Loopback]. Proxy settings from the environment are
// ignored on purpose: a proxy would let a destination reach the proxy's
// network and would hide the real address from the guard.
//
// # Signing
//
// A [Request] may carry a [Signing], which Do applies before every attempt,
// on a copy of the header: [AWSSigV4] (AWS Signature Version 4, with the AWS
// SDK's signer) or [StandardWebhooks] (the Standard Webhooks
// specification's HMAC-SHA256 and ed25519 schemes, several keys during a
// rotation). Signing per attempt keeps a retry's signature and timestamp
// fresh, as AWS and webhook receivers require. A Signing is data, so a
// request stored for a later retry keeps it (and its webhook-id);
// [SignedHeader] shows what a request sends, for fetchers that only record
// it.
//
// Credentials in a URL's userinfo are sent as HTTP basic auth and never
// appear in errors; errors name only the host.
package fetch
