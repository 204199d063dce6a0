package dataplane

import (
	"errors"
	"net/url"
	"strings"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/invocations"
)

// The record kept of every invocation (package invocations) is made here,
// from what the Observer saw: one per event and destination for every
// outcome but "filtered" — an event a destination's filters leave out is
// counted (MetricsService), not recorded one by one: most events are
// filtered out by most destinations, and a record each would multiply the
// store by the number of destinations for nothing anyone looks up.

const (
	statusSucceeded = hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED
	statusFailed    = hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED
	statusSkipped   = hogwirev1.InvocationStatus_INVOCATION_STATUS_SKIPPED
	statusMasked    = hogwirev1.InvocationStatus_INVOCATION_STATUS_MASKED
	statusParked    = hogwirev1.InvocationStatus_INVOCATION_STATUS_PARKED
)

// attempt is one try of a fetch, as Observer.Attempt reported it.
type attempt struct {
	n      int
	status int
	dur    time.Duration
	err    string
}

// attemptError names why an attempt got no response.
func attemptError(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, fetch.ErrEgressDenied):
		return "egress_refused"
	case errors.Is(err, fetch.ErrTimeout):
		return "timeout"
	}
	return "connection"
}

// recordSkip records an event that did not run: its destination was
// quarantined, disabled or deleted. g is nil where the event was not
// decoded, and then nothing is recorded.
func (n *Node) recordSkip(dest, reason string, g *executor.Globals) {
	if n.records == nil || g == nil {
		return
	}
	n.records.Record(&invocations.Record{Destination: dest, Status: statusSkipped, ErrorKind: reason,
		EventUUID: g.UUID(), EventName: g.Event(), DistinctID: g.DistinctID(), PersonID: g.PersonID(),
		Start: time.Now(), NodeID: n.cfg.NodeID, Revision: n.revisionOf(dest)})
}

// revisionOf is the revision of dest the node runs now; 0 when it has
// none.
func (n *Node) revisionOf(dest string) int64 {
	if r := n.routes.Load().prepared[dest]; r != nil {
		return r.d.GetRevision()
	}
	return 0
}

// revision is the destination's revision inv runs with: the one it ran
// first when it resumes from a park, else its route's.
func (inv *invocation) revision() int64 {
	switch {
	case inv.parked != nil && inv.parked.Revision != 0 && (inv.parked.Suspended != nil || inv.pin != nil):
		return inv.parked.Revision
	case inv.route != nil:
		return inv.route.d.GetRevision()
	case inv.pin != nil:
		return inv.pin.d.GetRevision()
	}
	return inv.n.revisionOf(inv.dest.name)
}

// recordFilterError records an event whose destination's filters failed.
func (n *Node) recordFilterError(r *route, g *executor.Globals, err error, logID string) {
	if n.records == nil {
		return
	}
	n.records.Record(&invocations.Record{Destination: r.dest.name, Status: statusFailed, ErrorKind: string(executor.KindFilter), Error: err.Error(),
		EventUUID: g.UUID(), EventName: g.Event(), DistinctID: g.DistinctID(), PersonID: g.PersonID(),
		Start: time.Now(), LogInvocationID: logID, NodeID: n.cfg.NodeID, Revision: r.d.GetRevision()})
}

// record records how inv ended; res is nil when it never ran (a pause or
// a quarantine parked it). For a batch invocation, each event gets its
// record, with the status the batch gave it.
func (inv *invocation) record(status hogwirev1.InvocationStatus, kind string, res *executor.Result, due time.Time) {
	n := inv.n
	if n.records == nil {
		return
	}
	r := invocations.Record{Destination: inv.dest.name, Status: status, ErrorKind: kind, RetryTime: due,
		LogInvocationID: inv.id, NodeID: n.cfg.NodeID, Mapping: inv.mapping, Revision: inv.revision()}
	if inv.parked != nil {
		r.Retries = inv.parked.Retries
	}
	switch {
	case res == nil:
		r.Start = time.Now()
	case !res.Start.IsZero():
		// The executor read the clock when the invocation began: reading
		// it again here, to subtract the duration, cost a clock read per
		// delivery.
		r.Start = res.Start
	default:
		r.Start = time.Now().Add(-res.Duration)
	}
	if res != nil {
		r.Duration = res.OwnTime()
		r.Fetches = inv.fetches(res)
		if status != statusSucceeded {
			r.Error = res.Error
		}
	}
	if inv.members == nil {
		g := inv.g
		r.EventUUID, r.EventName, r.DistinctID, r.PersonID = g.UUID(), g.Event(), g.DistinctID(), g.PersonID()
		l := inv.rerunLink()
		r.Rerun, r.RerunOf = l.rerun, l.of
		n.records.Record(&r)
		return
	}
	for i, m := range inv.members {
		mr := r
		g := m.g
		mr.EventUUID, mr.EventName, mr.DistinctID, mr.PersonID = g.UUID(), g.Event(), g.DistinctID(), g.PersonID()
		l := m.rerunLink()
		mr.Rerun, mr.RerunOf = l.rerun, l.of
		if res != nil && len(res.Items) == len(inv.members) {
			it := res.Items[i]
			switch it.Status {
			case executor.Filtered:
				continue
			case executor.Succeeded:
				mr.Status, mr.ErrorKind, mr.Error = statusSucceeded, "", ""
			case executor.Masked:
				mr.Status, mr.ErrorKind, mr.Error = statusMasked, "", ""
			case executor.Failed, executor.FilterFailed:
				if mr.Status == statusSucceeded {
					// The vendor refused this event of a batch it took.
					mr.Status, mr.ErrorKind = statusFailed, "rejected"
				}
				mr.Error = it.Error
			}
		}
		n.records.Record(&mr)
	}
}

// recordDone records a finished invocation: succeeded, failed, masked.
// Filtered ones are not recorded (see above).
func (inv *invocation) recordDone(res *executor.Result) {
	switch res.Status {
	case executor.Filtered:
		if res.Items == nil {
			return
		}
		inv.record(statusSucceeded, "", res, time.Time{}) // the batch's items say
	case executor.Succeeded:
		inv.record(statusSucceeded, "", res, time.Time{})
	case executor.Masked:
		inv.record(statusMasked, "", res, time.Time{})
	default:
		inv.record(statusFailed, recordKind(res), res, time.Time{})
	}
}

// recordKind classifies a failure for its record: the executor's kind,
// but an HTTP status class when the last response was an error (the
// program threw, or fetch gave up, because of it).
func recordKind(res *executor.Result) string {
	kind := res.ErrorKind
	if n := len(res.Fetches); n > 0 && (kind == "" || kind == executor.KindHogError || kind == executor.KindFetchFailed) {
		if resp := res.Fetches[n-1].Response; resp != nil && resp.Status >= 400 {
			if resp.Status >= 500 {
				return "http_5xx"
			}
			return "http_4xx"
		}
	}
	if kind == "" {
		return failureReason(res)
	}
	return string(kind)
}

// parkKind classifies why an invocation was parked: s is its failing
// fetch, nil when it never ran.
func parkKind(s *executor.Suspended, why string) string {
	switch {
	case s == nil && why == quarantineCause:
		return "quarantined"
	case s == nil || !s.Deferred.IsZero():
		return "paused"
	case s.Status == 429:
		return "http_429"
	case s.Status >= 500:
		return "http_5xx"
	case strings.Contains(s.Reason, "timeout"):
		return string(executor.KindFetchTimeout)
	}
	return string(executor.KindFetchConnection)
}

// fetches are res's fetches for its record, one row per attempt when the
// attempts Observer.Attempt saw line up with them (each fetch's attempts
// in a row, numbered from 1), else one per fetch. They are in inv's
// tally, until it counts again.
func (inv *invocation) fetches(res *executor.Result) []invocations.Fetch {
	if len(res.Fetches) == 0 {
		return nil
	}
	t := inv.tallied()
	// starts[k] is where the k-th fetch's attempts begin.
	attempts := inv.attempts()
	var starts []int
	for i, a := range attempts {
		if a.n <= 1 {
			starts = append(starts, i)
		}
	}
	perAttempt := len(starts) == len(res.Fetches)
	out := t.fetches[:0]
	for k, f := range res.Fetches {
		var method, u string
		if f.Request != nil {
			method, u = f.Request.Method, inv.dest.safeURL(f.Request.URL)
		}
		if !perAttempt {
			row := invocations.Fetch{Method: method, URL: u, Duration: f.Duration, Error: attemptError(f.Err), Attempt: 1}
			if f.Response != nil {
				row.Status, row.Attempt = f.Response.Status, max(f.Response.Attempts, 1)
			}
			out = append(out, row)
			continue
		}
		end := len(attempts)
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		for _, a := range attempts[starts[k]:end] {
			out = append(out, invocations.Fetch{Method: method, URL: u, Status: a.status, Duration: a.dur, Error: a.err, Attempt: max(a.n, 1)})
		}
	}
	t.fetches = out
	return out
}

// shownURL is a URL and its safeURL.
type shownURL struct{ raw, safe string }

// safeURL is safeURL(raw), remembered: a destination usually fetches one
// URL over and over, and parsing it again for each record cost more
// than the rest of the record.
func (d *destination) safeURL(raw string) string {
	if last := d.lastURL.Load(); last != nil && last.raw == raw {
		return last.safe
	}
	safe := safeURL(raw)
	d.lastURL.Store(&shownURL{raw, safe})
	return safe
}

// safeURL is a URL as records and traces show it: scheme, host and path,
// without the query or user info, which may hold credentials.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	safe := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return safe.String()
}
