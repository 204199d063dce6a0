package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/bytesize"
)

// batchFlags set a destination's batch delivery; a flag left out keeps
// what the destination (or its template) has.
type batchFlags struct {
	maxEvents int32
	maxBytes  string
	maxWait   time.Duration
}

var batchFlagNames = []string{"batch-max-events", "batch-max-bytes", "batch-max-wait"}

func (b *batchFlags) register(fs *pflag.FlagSet) {
	fs.Int32Var(&b.maxEvents, "batch-max-events", 0, "batch delivery: events per batch at most (templates that deliver in batches set a default and a cap)")
	fs.StringVar(&b.maxBytes, "batch-max-bytes", "", "batch delivery: bytes of events per batch at most, e.g. 512KiB (0: 1MiB)")
	fs.DurationVar(&b.maxWait, "batch-max-wait", 0, "batch delivery: how long a partial batch waits for more events (0: 1s)")
}

// apply sets the batch fields given on the command line on base (a copy)
// and reports whether any was.
func (b *batchFlags) apply(c *adminCmd, base *hogwirev1.BatchDelivery) (*hogwirev1.BatchDelivery, bool, error) {
	out := &hogwirev1.BatchDelivery{}
	if base != nil {
		out = proto.CloneOf(base)
	}
	any := false
	for _, name := range batchFlagNames {
		if !c.given(name) {
			continue
		}
		any = true
		switch name {
		case "batch-max-events":
			out.MaxEvents = b.maxEvents
		case "batch-max-bytes":
			n, err := parseBytes(b.maxBytes)
			if err != nil {
				return nil, false, usagef("--batch-max-bytes: %v", err)
			}
			out.MaxBytes = n
		case "batch-max-wait":
			out.MaxWait = durationOrNil(b.maxWait)
		}
	}
	return out, any, nil
}

// batchText shows a destination's batch delivery, defaults spelt out.
func batchText(b *hogwirev1.BatchDelivery) string {
	bytes, wait := "1 MiB", "1s"
	if b.GetMaxBytes() > 0 {
		bytes = bytesize.Format(b.GetMaxBytes())
	}
	if b.GetMaxWait() != nil {
		wait = b.GetMaxWait().AsDuration().String()
	}
	return fmt.Sprintf("up to %d events or %s per request, waiting at most %s for a batch to fill", b.GetMaxEvents(), bytes, wait)
}

// batchCaps shows the most a destination may set of a template's batch.
func batchCaps(t *hogwirev1.TemplateBatch) string {
	var caps []string
	if t.GetMaxEvents() > 0 {
		caps = append(caps, fmt.Sprintf("%d events", t.GetMaxEvents()))
	}
	if t.GetMaxBytes() > 0 {
		caps = append(caps, bytesize.Format(t.GetMaxBytes()))
	}
	if len(caps) == 0 {
		return ""
	}
	return " (a destination may set at most " + strings.Join(caps, " and ") + ")"
}
