package controlplane

import (
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/hogvm/kind"
)

// A transformation is a destination of kind FUNCTION_KIND_TRANSFORMATION:
// the same resource, API, storage, config stream, compile, inputs,
// secrets, filters, logs and metrics, with its own code kind and checks.

// Limits of a transformation: it runs on every event of its project
// before any destination, so its budget is far smaller.
const (
	maxTransformTimeout = time.Second
	maxTransformOrder   = 1_000_000
)

// functionKind is k, with the kind of what was stored before kinds
// existed: a destination.
func functionKind(k hogwirev1.FunctionKind) hogwirev1.FunctionKind {
	if k == hogwirev1.FunctionKind_FUNCTION_KIND_UNSPECIFIED {
		return hogwirev1.FunctionKind_FUNCTION_KIND_DESTINATION
	}
	return k
}

// kindWord names a kind in messages.
func kindWord(k hogwirev1.FunctionKind) string {
	if functionKind(k) == hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION {
		return "a transformation"
	}
	return "a destination"
}

// codeKind is the Hog kind d's code compiles as.
func codeKind(d *hogwirev1.Destination) kind.Kind {
	if functionKind(d.Kind) == hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION {
		return kind.Transformation()
	}
	return kind.Destination()
}

// checkKind validates what depends on d's kind: order, and the fields a
// transformation has no use for (it delivers nothing, so it neither
// batches, masks nor fetches).
func checkKind(d *hogwirev1.Destination, v *violations) {
	const p = "destination."
	switch functionKind(d.Kind) {
	case hogwirev1.FunctionKind_FUNCTION_KIND_DESTINATION:
		if d.Order != 0 {
			v.add(p+"order", "is for transformations only; a destination's must be 0")
		}
		return
	case hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION:
	default:
		v.add(p+"kind", "must be FUNCTION_KIND_DESTINATION or FUNCTION_KIND_TRANSFORMATION")
		return
	}
	if d.Order < 0 || d.Order > maxTransformOrder {
		v.add(p+"order", "must be between 0 and %d", maxTransformOrder)
	}
	if d.Batch != nil {
		v.add(p+"batch", "a transformation runs on one event at a time: batch must be unset")
	}
	if len(d.Mappings) > 0 {
		v.add(p+"mappings", "a transformation runs once per event: mappings must be unset")
	}
	if d.Masking != nil {
		v.add(p+"masking", "a transformation cannot be masked: it runs on every matching event")
	}
	//lint:ignore SA1019 a deprecated field is still validated when set
	if d.NotificationDestination != "" {
		v.add(p+"notification_destination", "must be unset for a transformation")
	}
	l := d.Limits
	if l == nil {
		return
	}
	if t := l.Timeout.AsDuration(); t > maxTransformTimeout {
		v.add(p+"limits.timeout", "must be between 0 (the default, %s) and %s for a transformation", executor.DefaultTransformTimeout, maxTransformTimeout)
	}
	for _, f := range [...]struct {
		field string
		set   bool
	}{
		{"fetch_timeout", l.FetchTimeout != nil}, {"max_fetches", l.MaxFetches != 0}, {"max_concurrency", l.MaxConcurrency != 0},
		{"retry_base", l.RetryBase != nil}, {"retry_max", l.RetryMax != nil}, {"retry_give_up", l.RetryGiveUp != nil},
		{"max_rate", l.MaxRate != 0}, {"max_requests_in_flight", l.MaxRequestsInFlight != 0}, {"max_backlog", l.MaxBacklog != 0},
		{"max_backlog_bytes", l.MaxBacklogBytes != 0}, {"max_backlog_age", l.MaxBacklogAge != nil},
	} {
		if f.set {
			v.add(p+"limits."+f.field, "is for destinations: a transformation does not fetch or deliver")
		}
	}
}
