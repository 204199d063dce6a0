// Package capture ingests product-analytics events: over HTTP in the shape
// PostHog's capture endpoints accept, so PostHog SDKs work unchanged when
// pointed at a hogwire data plane, and over gRPC through
// hogwire.v1.EventService.
//
// # HTTP
//
// NewHandler serves POST (and GET with a data= query) on /batch, /capture,
// /e, /i/v0/e and /track, each with and without a trailing slash. A body is
// one of:
//
//   - JSON: a single event, an array of events (posthog-js), or
//     {"api_key": …, "batch": [...]} (server SDKs);
//   - gzip, announced by Content-Encoding: gzip, by ?compression=gzip-js
//     (posthog-js sends the raw gzip bytes as text/plain), or recognised by
//     its magic bytes;
//   - application/x-www-form-urlencoded with data=<JSON, or base64 of JSON or
//     of gzip> and optional compression=, api_key= and sent_at= fields, as
//     posthog-js sends with compression=base64 and as older SDKs do;
//   - lz64 (lz-string, older posthog-js), announced by compression=lz64 or
//     lz-string in the query or the form, and decoded under the same limits
//     as gzip.
//
// The endpoints SDKs read their settings from are served beside capture:
// feature flags (/flags v1 and v2, /decide; none are set), posthog-js's
// remote config (/array/<token>/config and config.js), and a 404 that
// says why for posthog-js's lazily loaded scripts (/static/...). Every
// endpoint answers CORS preflights and carries CORS headers.
//
// The project token is taken from the body (api_key, token or $token), from a
// form field, or from the events (token, $token, api_key or
// properties.token), or else from the query (token or api_key) or an
// "Authorization: Bearer" header; the events of one request must agree on
// it, and with a token outside the body. Each event
// needs a name ("event") and a distinct id ("distinct_id", "$distinct_id" or
// properties.distinct_id; non-string ids are JSON-encoded and ids are cut to
// 200 characters, as PostHog does). Its uuid is kept when valid and a UUIDv7
// is generated when absent. $set and $set_once, at the top level or in
// properties, become Event.set and Event.set_once (top level wins per key);
// properties.$groups becomes Event.groups. Event.person is left empty: the
// data plane builds it from distinct_id and $set.
//
// Timestamps follow PostHog's ingestion: with both a timestamp and a sent_at
// (the event's sent_at, posthog-js's _=<ms> query parameter, or the body's
// sent_at), the timestamp is corrected for the client's clock skew to
// now + (timestamp − sent_at); an offset (milliseconds before sending) gives
// now − offset; a timestamp more than 23 hours in the future becomes now; a
// missing or unparsable timestamp becomes now. properties.$ignore_sent_at
// disables the skew correction.
//
// An HTTP event without an $ip property gets the sender's address, the
// first X-Forwarded-For address or else the connection's peer, as PostHog's
// ingestion records it; Config.AnonymizeIPs leaves it out. gRPC ingest is
// server to server and adds none: the sender sets $ip when it knows it.
//
// # Limits and responses
//
// A request is stored whole or not at all. Every event is checked against
// Config.Limits, the eventlimits shared with the executor, and for its
// shape (a name and a distinct id, fields of the right types); when one
// event fails, nothing of the request is stored. Success is 200 with
// {"status": 1}, the body PostHog returns (204 and no body for
// navigator.sendBeacon requests, which send beacon=1). Errors are JSON in
// PostHog's shape, {"type": …, "code": …, "detail": …, "attr": …}, and
// refused events are listed by their zero-based index:
//
//	{…, "rejected": [{"index": 3, "field": "properties.a", "rule": "max_depth", "reason": "…"}]}
//
// 400 for a malformed body or events, 401 for a missing or unknown token,
// 405 for a wrong method, 408 for a stalled body, 413 for a size limit
// (body, decompressed body, decompression ratio, event, string, events per
// request, or memory beyond what one request may hold), 415 for a content
// type that is no payload, 503 with Retry-After when the memory budget is
// spent or the events could not be stored (SDKs retry; a retry within the
// event log's duplicate window stores nothing twice).
//
// Memory is bounded: bodies are read in steps as bytes arrive, never into
// a buffer sized by Content-Length; each step of reading, inflating and
// parsing reserves its memory from a budget (Config.MemoryBytes) before
// allocating. A token carried outside the body (?token=, ?api_key=,
// Authorization: Bearer), the content type and a declared size are
// checked before the body is read. NewServer returns the HTTP server with
// header, body-stall, read and idle timeouts and a keep-alive limit.
// docs/capture.md lists every limit, its default and its flag.
//
// # gRPC
//
// NewService implements hogwire.v1.EventService. The token comes from the
// request or from "authorization: Bearer" metadata; a bad one is
// UNAUTHENTICATED. A request breaking a rule is refused whole with
// INVALID_ARGUMENT (RESOURCE_EXHAUSTED for size rules) and a
// google.rpc.BadRequest naming each refused event's field
// ("events[3].properties.a") and rule (reason "MAX_DEPTH"). A store
// failure is UNAVAILABLE with a google.rpc.RetryInfo. An answer means every
// event is stored. Event.project is always set by the service.
//
// # Tracing
//
// The HTTP handler continues a W3C traceparent and starts a server span per
// request; Publisher.Publish runs in that span's context so the data plane
// can link the messages it writes to it.
package capture
