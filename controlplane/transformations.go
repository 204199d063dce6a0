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
	// maxWebhookTimeout bounds a source webhook's VM time: its sender
	// waits for the answer.
	maxWebhookTimeout = 5 * time.Second
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
	switch functionKind(k) {
	case hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION:
		return "a transformation"
	case hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK:
		return "a source webhook"
	}
	return "a destination"
}

// codeKind is the Hog kind d's code compiles as.
func codeKind(d *hogwirev1.Destination) kind.Kind {
	switch functionKind(d.Kind) {
	case hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION:
		return kind.Transformation()
	case hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK:
		return kind.SourceWebhook()
	}
	return kind.Destination()
}

// checkKind validates what depends on d's kind: order, and the fields a
// transformation or a source webhook has no use for (neither delivers, so
// neither batches, masks nor fetches; a webhook runs on requests, not on
// events, so it has no filters and no order).
func checkKind(d *hogwirev1.Destination, v *violations) {
	const p = "destination."
	what, maxTimeout, defTimeout := "a transformation", maxTransformTimeout, executor.DefaultTransformTimeout
	switch functionKind(d.Kind) {
	case hogwirev1.FunctionKind_FUNCTION_KIND_DESTINATION:
		if d.Order != 0 {
			v.add(p+"order", "is for transformations only; a destination's must be 0")
		}
		return
	case hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION:
		if d.Order < 0 || d.Order > maxTransformOrder {
			v.add(p+"order", "must be between 0 and %d", maxTransformOrder)
		}
	case hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK:
		what, maxTimeout, defTimeout = "a source webhook", maxWebhookTimeout, executor.DefaultWebhookTimeout
		if d.Order != 0 {
			v.add(p+"order", "is for transformations only; a source webhook's must be 0")
		}
		if f := d.Filters; f != nil && (len(f.Events) > 0 || len(f.Properties) > 0 || f.Expression != "") {
			v.add(p+"filters", "a source webhook runs on every request to its URL: filters must be unset")
		}
	default:
		v.add(p+"kind", "must be FUNCTION_KIND_DESTINATION, FUNCTION_KIND_TRANSFORMATION or FUNCTION_KIND_SOURCE_WEBHOOK")
		return
	}
	if d.Batch != nil {
		v.add(p+"batch", "%s does not deliver events: batch must be unset", what)
	}
	if len(d.Mappings) > 0 {
		v.add(p+"mappings", "%s runs once: mappings must be unset", what)
	}
	if d.Masking != nil {
		v.add(p+"masking", "%s cannot be masked", what)
	}
	//lint:ignore SA1019 a deprecated field is still validated when set
	if d.NotificationDestination != "" {
		v.add(p+"notification_destination", "must be unset for %s", what)
	}
	l := d.Limits
	if l == nil {
		return
	}
	if t := l.Timeout.AsDuration(); t > maxTimeout {
		v.add(p+"limits.timeout", "must be between 0 (the default, %s) and %s for %s", defTimeout, maxTimeout, what)
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
			v.add(p+"limits."+f.field, "is for destinations: %s does not fetch or deliver", what)
		}
	}
}
