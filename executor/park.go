package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// Suspended is an invocation suspended at a fetch() that failed in a way
// worth retrying later (a 5xx, 408 or 429 after its retries, a timeout, a
// connection error), or that its Fetcher deferred. It holds the VM's state
// at that fetch, so that resuming it (Options.Resume) performs that fetch
// again and goes on from there: the fetches that succeeded before it are
// not repeated. It marshals to JSON, to be stored until it is resumed,
// possibly by another process. It holds the rendered inputs, secrets
// included: store it where the events are.
type Suspended struct {
	// State is the VM state (vm.State's JSON) paused at the fetch.
	State json.RawMessage `json:"state"`
	// Request is the fetch to perform when resumed.
	Request fetch.Request `json:"request"`
	// Fetches counts the fetches made before this one, for
	// limits.max_fetches.
	Fetches int `json:"fetches"`
	// Secrets are the input values to redact from what the resumed
	// invocation logs.
	Secrets []string `json:"secrets,omitempty"`
	// Reason says why it was parked: "HTTP 503", "a timeout", "a
	// connection error", or the Fetcher's DeferError reason.
	Reason string `json:"reason"`
	// Status is the last response's status (0 when none came).
	Status int `json:"status,omitempty"`
	// RetryAfter is the server's Retry-After on that response, if any.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// Deferred is the time a DeferError asked to wait until.
	Deferred time.Time `json:"deferred,omitzero"`
}

// DeferError is what a Fetcher returns, without sending the request, when
// the request must wait: its destination is paused until Until. With
// Options.Park the invocation parks there; otherwise it fails.
type DeferError struct {
	Until  time.Time
	Reason string
}

func (e *DeferError) Error() string {
	return fmt.Sprintf("deferred until %s: %s", e.Until.UTC().Format(time.RFC3339), e.Reason)
}

// parkError ends the program loop at a fetch to park.
type parkError struct{ p *Suspended }

func (e *parkError) Error() string { return "parked: " + e.p.Reason }

// parkable returns the Suspended (without State) for a fetch that ended in a
// failure worth retrying later, or nil.
func parkable(req *fetch.Request, resp *fetch.Response, err error) *Suspended {
	if err != nil {
		// Declared here, as errors.As moves it to the heap: a fetch that
		// got its response allocates nothing to be told it is done.
		var de *DeferError
		if errors.As(err, &de) {
			return &Suspended{Request: *req, Reason: de.Reason, Deferred: de.Until}
		}
	}
	switch {
	case err != nil && fetch.Retriable(err):
		reason := "a connection error"
		if errors.Is(err, fetch.ErrTimeout) {
			reason = "a timeout"
		}
		return &Suspended{Request: *req, Reason: reason}
	case err == nil && resp != nil && fetch.RetriableStatus(resp.Status):
		p := &Suspended{Request: *req, Reason: fmt.Sprintf("HTTP %d", resp.Status), Status: resp.Status}
		if resp.Status == http.StatusTooManyRequests || resp.Status == http.StatusServiceUnavailable {
			p.RetryAfter, _ = fetch.RetryAfter(resp.Header, time.Now())
		}
		return p
	}
	return nil
}

// park ends the invocation Parked at a fetch.
func (inv *invocation) park(p *Suspended) {
	p.Secrets = inv.res.secrets
	inv.res.Status, inv.res.Parked = Parked, p
	inv.end(StateParked)
}

// resume runs a parked invocation from its failing fetch on.
func (inv *invocation) resume(p *Suspended) {
	st, err := vm.UnmarshalState(p.State, stl.Library())
	if err != nil {
		inv.fail(Failed, KindHogError, "the parked invocation could not be restored: "+err.Error(), "Error resuming function on event "+inv.g.uuid+": ")
		return
	}
	inv.res.secrets = p.Secrets
	inv.fetchBase = p.Fetches
	req := p.Request
	v, err := inv.do(&req)
	if err != nil {
		var pe *parkError
		if errors.As(err, &pe) {
			// Parked again at the same fetch: its state is unchanged.
			pe.p.State = p.State
			inv.park(pe.p)
			return
		}
		inv.stopped(err)
		return
	}
	out, err := inv.d.machine.ResumeHost(inv.ctx, inv, st, v)
	inv.loop(out, err)
}
