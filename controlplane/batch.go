package controlplane

import (
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// The server's caps on batch delivery, whatever a template allows.
const (
	maxBatchEvents = 1000
	maxBatchBytes  = 16 << 20
	maxBatchWait   = 60 * time.Second
)

// applyTemplateBatch gives a destination created from t the template's
// batch, where it did not set its own fields.
func applyTemplateBatch(d *hogwirev1.Destination, t *hogwirev1.Template) {
	def := t.GetBatch().GetDefaults()
	switch {
	case def == nil:
	case d.Batch == nil:
		d.Batch = proto.CloneOf(def)
	default:
		if d.Batch.MaxEvents == 0 {
			d.Batch.MaxEvents = def.MaxEvents
		}
		if d.Batch.MaxBytes == 0 {
			d.Batch.MaxBytes = def.MaxBytes
		}
		if d.Batch.MaxWait == nil {
			d.Batch.MaxWait = proto.CloneOf(def.MaxWait)
		}
	}
}

// checkBatch validates d's batch delivery against the server's caps and
// those of its template: a template's code that reads events needs a
// batch, and the vendor's caps per request bound it.
func (s *destinationServer) checkBatch(d *hogwirev1.Destination, v *violations) {
	const p = "destination.batch"
	var tb *hogwirev1.TemplateBatch
	if s.templates != nil && d.Template != "" {
		if t, ok := s.templates.Get(strings.TrimPrefix(d.Template, "templates/")); ok && d.Hog == t.Hog {
			// Only while the destination runs the template's code: code
			// of its own may read event or events as it likes.
			tb = t.Batch
		}
	}
	b := d.Batch
	if b == nil {
		if tb != nil {
			v.add(p, "is required: %s delivers events in batches", d.Template)
		}
		return
	}
	maxEvents, maxBytes := int32(maxBatchEvents), int64(maxBatchBytes)
	if tb != nil && tb.MaxEvents > 0 {
		maxEvents = min(maxEvents, tb.MaxEvents)
	}
	if tb != nil && tb.MaxBytes > 0 {
		maxBytes = min(maxBytes, tb.MaxBytes)
	}
	if b.MaxEvents < 1 || b.MaxEvents > maxEvents {
		v.add(p+".max_events", "must be between 1 and %d", maxEvents)
	}
	if b.MaxBytes < 0 || b.MaxBytes > maxBytes {
		v.add(p+".max_bytes", "must be between 0 (1 MiB) and %d", maxBytes)
	}
	if w := b.MaxWait.AsDuration(); w < 0 || w > maxBatchWait {
		v.add(p+".max_wait", "must be between 0 (1s) and %s", maxBatchWait)
	}
}
