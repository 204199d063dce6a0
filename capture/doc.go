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
//     posthog-js sends with compression=base64 and as older SDKs do.
//
// lz64 (lz-string) bodies are refused with 400 code "unsupported_compression":
// current posthog-js versions only send gzip-js, base64 or plain JSON, and an
// lz-string decoder would be a second decompression-bomb surface for a
// format no supported SDK produces.
//
// The project token is taken from the body (api_key, token or $token), from a
// form field, or from the events (token, $token, api_key or
// properties.token); the events of one request must agree on it. Each event
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
// # Responses and partial acceptance
//
// Success is 200 with {"status": 1}, the body PostHog returns (204 and no
// body for navigator.sendBeacon requests, which send beacon=1). Errors are
// JSON in PostHog's shape, {"type": …, "code": …, "detail": …, "attr": …}:
// 400 for a malformed body, 401 for a missing or unknown token, 405 for a
// wrong method, 413 for a body or decompressed body over the limit or too
// many events, 503 when the events could not be stored (SDKs retry).
//
// When some events of a batch are invalid and others are not, the valid ones
// are stored and the response is 200 with
//
//	{"status": 1, "rejected": [{"index": 3, "field": "distinct_id", "reason": "…"}]}
//
// listing every refused event by its zero-based index. PostHog SDKs only
// look at the status code, and posthog-go and posthog-js retry any non-2xx
// response: rejecting the whole batch would make them resend the valid
// events (or, after their retries, drop them) because of one bad event, and
// a retried bad event never becomes valid. The rejected events are also
// logged. When no event of a request is valid nothing is stored and the
// response is 400 with the same "rejected" list.
//
// # gRPC
//
// NewService implements hogwire.v1.EventService. The token comes from the
// request or from "authorization: Bearer" metadata; a bad one is
// UNAUTHENTICATED. A request without events or with more than MaxBatch is
// INVALID_ARGUMENT with a google.rpc.BadRequest detail. Invalid events are
// listed in the response's rejected field and the others are stored; an event
// counts as accepted only after Publisher.Publish has returned. Event.project
// is always set by the service.
//
// # Tracing
//
// The HTTP handler continues a W3C traceparent and starts a server span per
// request; Publisher.Publish runs in that span's context so the data plane
// can link the messages it writes to it.
package capture
