package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/telemetry"
	"github.com/hogwire/hogwire/delivery"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
)

// deliverer performs one destination's fetches through the shared client:
// the retry policy and egress guard come from package fetch, and every
// attempt is counted and, when retried or failed, logged on the destination.
type deliverer struct {
	n      *Node
	policy fetch.Policy
	// dest and event name the destination and the event's uuid in
	// telemetry; id is the invocation's id, made for its first log entry.
	dest, event, id string
	// ctx (the invocation's) gives each attempt a child span.
	ctx    context.Context
	method string
	// metrics gathers the invocation's counts, recorded together when it
	// ends (see Node.invoke).
	metrics []telemetry.Metric
	buf     [6]telemetry.Metric
}

// count adds k to one of the destination's counters.
func (d *deliverer) count(metric string, k int64) {
	if d.metrics == nil {
		d.metrics = d.buf[:0]
	}
	d.metrics = append(d.metrics, telemetry.Metric{Name: metric, N: k})
}

// logf records a log entry on the destination for this invocation.
func (d *deliverer) logf(level hogwirev1.LogLevel, format string, args ...any) {
	d.log(time.Now(), level, fmt.Sprintf(format, args...))
}

func (d *deliverer) log(t time.Time, level hogwirev1.LogLevel, msg string) {
	if d.id == "" {
		// Most invocations log nothing: the id is made only when needed.
		d.id = newInvocationID()
	}
	d.n.tel.Log(&hogwirev1.LogEntry{Time: timestamppb.New(t), Level: level, Message: msg,
		Destination: d.dest, InvocationId: d.id, EventUuid: d.event, NodeId: d.n.cfg.NodeID})
}

func (d *deliverer) Fetch(ctx context.Context, req *executor.FetchRequest) (*executor.FetchResponse, error) {
	d.method = req.Method
	f := delivery.Fetcher{Client: d.n.fetcher, Policy: d.policy, Observe: d.observe}
	return f.Fetch(ctx, req)
}

// observe counts each attempt by outcome, logs retries and records the
// attempt as a span under the invocation's.
func (d *deliverer) observe(a fetch.Attempt) {
	d.count("fetch_attempts", 1)
	// Without a recording invocation span (tracing off or not sampled) a
	// child span would record nothing: skip building it.
	if trace.SpanFromContext(d.ctx).IsRecording() {
		end := time.Now()
		_, span := d.n.tracer.Start(d.ctx, "fetch "+d.method, trace.WithTimestamp(end.Add(-a.Duration)),
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.Int("hogwire.fetch.attempt", a.N), attribute.Int("http.response.status_code", a.Status)))
		if a.Err != nil {
			span.SetStatus(codes.Error, a.Err.Error())
		}
		span.End(trace.WithTimestamp(end))
	}
	var outcome string
	switch {
	case errors.Is(a.Err, fetch.ErrTimeout):
		d.count("fetch_timeouts", 1)
		outcome = "a timeout"
	case a.Err != nil:
		d.count("fetch_errors", 1)
		outcome = "a connection error"
	case a.Status >= 500:
		d.count("fetch_failed_5xx", 1)
		outcome = fmt.Sprintf("HTTP %d", a.Status)
	case a.Status >= 400:
		d.count("fetch_failed_4xx", 1)
		outcome = fmt.Sprintf("HTTP %d", a.Status)
	}
	if outcome == "" {
		return
	}
	if a.WillRetry {
		d.logf(hogwirev1.LogLevel_LOG_LEVEL_WARN, "retrying after %s, retry %d/%d in %s", outcome, a.N, a.Max-1, a.RetryIn.Round(time.Millisecond))
	} else if a.Err != nil || a.Status >= 500 || a.Status == 429 || a.Status == 408 {
		d.logf(hogwirev1.LogLevel_LOG_LEVEL_WARN, "fetch failed with %s after %d attempt(s)", outcome, a.N)
	}
}
