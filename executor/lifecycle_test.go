package executor_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/hogvm/vm"
	"google.golang.org/protobuf/types/known/durationpb"
)

// observer records what an invocation reports.
type observer struct {
	states   []string
	logs     []executor.LogEntry
	attempts []fetch.Attempt
	done     *executor.Result
}

func (o *observer) Transition(from, to executor.State) {
	if len(o.states) == 0 {
		o.states = append(o.states, from.String())
	}
	o.states = append(o.states, to.String())
}
func (o *observer) Log(e executor.LogEntry)                   { o.logs = append(o.logs, e) }
func (o *observer) Attempt(_ *fetch.Request, a fetch.Attempt) { o.attempts = append(o.attempts, a) }
func (o *observer) Done(res *executor.Result)                 { o.done = res }

// scheduler records its calls; stopAt, when set, decides what a call
// returns.
type scheduler struct {
	calls  []string
	yields atomic.Int64
	stop   func(call string, allocated int64) error
	// wait is slept in every Yield, as a turn passed to others would.
	wait time.Duration
}

func (s *scheduler) ret(call string, allocated int64) error {
	if s.stop != nil {
		return s.stop(call, allocated)
	}
	return nil
}

func (s *scheduler) Acquire(context.Context) error {
	s.calls = append(s.calls, "acquire")
	return s.ret("acquire", 0)
}

func (s *scheduler) Yield(_ context.Context, allocated int64) error {
	s.yields.Add(1)
	time.Sleep(s.wait)
	return s.ret("yield", allocated)
}

func (s *scheduler) Release() error {
	s.calls = append(s.calls, "release")
	return s.ret("release", 0)
}

func (s *scheduler) End() { s.calls = append(s.calls, "end") }

// Every transition, log entry and attempt goes to the observer as it
// happens, and the scheduler's turns frame every stretch of Hog.
func TestObserverAndScheduler(t *testing.T) {
	d := prepare(t, spec{hog: `print('before'); fetch('https://x.test/' || inputs.token); print('after')`,
		schema: []*hogwirev1.InputSchema{{Key: "token", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true}}, inputs: map[string]any{"token": "s3cret"}})
	obs, sched := &observer{}, &scheduler{}
	f := &recorder{respond: func(*fetch.Request) (*fetch.Response, error) { return &fetch.Response{Status: 503}, nil }}
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: f, Observer: obs, Scheduler: sched, Redact: true})
	if res.Status != executor.Succeeded || obs.done != res {
		t.Fatalf("%s, done %v", dump(res), obs.done)
	}
	if got := strings.Join(obs.states, " "); got != "queued running waiting running succeeded" {
		t.Errorf("states = %s", got)
	}
	if got := strings.Join(sched.calls, " "); got != "acquire release acquire release end" {
		t.Errorf("scheduler calls = %s", got)
	}
	var msgs []string
	for _, e := range obs.logs {
		msgs = append(msgs, e.Message)
	}
	if !slices.Contains(msgs, "before") || !slices.Contains(msgs, "after") || len(obs.attempts) != 1 || obs.attempts[0].Status != 503 {
		t.Errorf("logs %q, attempts %+v", msgs, obs.attempts)
	}
	if res.FetchTime <= 0 || res.OwnTime() > res.Duration {
		t.Errorf("fetch time %v, own %v, duration %v", res.FetchTime, res.OwnTime(), res.Duration)
	}
}

// A Stop from the scheduler ends the invocation as skipped: at a yield in
// the middle of a loop, or before a fetch is sent.
func TestSchedulerStops(t *testing.T) {
	loop := prepare(t, spec{hog: `let i := 0; while (true) { i := i + 1 }`})
	sched := &scheduler{stop: func(call string, _ int64) error {
		if call == "yield" {
			return &executor.Stop{Reason: "disabled_temporarily"}
		}
		return nil
	}}
	obs := &observer{}
	res := invoke(t, loop, event(t, nil), executor.Options{Scheduler: sched, Observer: obs})
	if res.Status != executor.Skipped || res.SkipReason != "disabled_temporarily" || obs.states[len(obs.states)-1] != "skipped" {
		t.Fatalf("%s reason %q states %v", dump(res), res.SkipReason, obs.states)
	}

	fetcher := prepare(t, spec{hog: `fetch('https://x.test')`})
	sched = &scheduler{stop: func(call string, _ int64) error {
		if call == "release" {
			return &executor.Stop{Reason: "disabled"}
		}
		return nil
	}}
	f := &recorder{}
	res = invoke(t, fetcher, event(t, nil), executor.Options{Scheduler: sched, Fetcher: f})
	if res.Status != executor.Skipped || res.SkipReason != "disabled" || len(f.reqs) != 0 {
		t.Fatalf("%s, %d requests sent", dump(res), len(f.reqs))
	}

	// Before it starts.
	sched = &scheduler{stop: func(string, int64) error { return &executor.Stop{Reason: "disabled_permanently"} }}
	res = invoke(t, fetcher, event(t, nil), executor.Options{Scheduler: sched, Fetcher: f})
	if res.Status != executor.Skipped || res.SkipReason != "disabled_permanently" || len(f.reqs) != 0 {
		t.Fatalf("%s", dump(res))
	}
}

// The time an invocation waits for the CPU is not VM time: an
// invocation that waits longer than its timeout between turns still
// finishes, and its VM time is what it ran.
func TestWaitingForTheCPUIsNotVMTime(t *testing.T) {
	d := prepare(t, spec{hog: `let i := 0; while (i < 10000) { i := i + 1 } return i`,
		limits: &hogwirev1.ExecutionLimits{Timeout: durationpb.New(40 * time.Millisecond)}})
	sched := &scheduler{wait: 2 * time.Millisecond}
	res := invoke(t, d, event(t, nil), executor.Options{Scheduler: sched})
	if res.Status != executor.Succeeded || res.Value.AsNumber() != 10000 {
		t.Fatalf("%s", dump(res))
	}
	if n := sched.yields.Load(); time.Duration(n)*sched.wait < 40*time.Millisecond {
		t.Skipf("only %d yields: the loop was too short to test this", n)
	}
	if res.VMTime >= res.Duration {
		t.Errorf("VM time %v of %v", res.VMTime, res.Duration)
	}
}

// The node's memory budget: the scheduler sees the allocations grow, and
// a memory error from it fails the invocation with the memory kind.
func TestSchedulerMemory(t *testing.T) {
	d := prepare(t, spec{hog: `let s := 'x'; while (true) { s := concat(s, s) }`})
	var seen int64
	sched := &scheduler{stop: func(call string, allocated int64) error {
		seen = max(seen, allocated)
		if allocated > 1<<20 {
			return vm.MemoryLimitError(1<<20, allocated)
		}
		return nil
	}}
	res := invoke(t, d, event(t, nil), executor.Options{Scheduler: sched})
	if res.Status != executor.Failed || res.ErrorKind != executor.KindMemory || seen < 1<<20 {
		t.Fatalf("%s kind %s, seen %d", dump(res), res.ErrorKind, seen)
	}
	// Without a scheduler, limits.max_memory_bytes applies.
	res = invoke(t, prepare(t, spec{hog: `let s := 'x'; while (true) { s := concat(s, s) }`,
		limits: &hogwirev1.ExecutionLimits{MaxMemoryBytes: 1 << 20}}), event(t, nil), executor.Options{})
	if res.Status != executor.Failed || res.ErrorKind != executor.KindMemory || !strings.HasPrefix(res.Error, "Memory limit of 1048576 bytes exceeded") {
		t.Fatalf("%s kind %s", dump(res), res.ErrorKind)
	}
}

// A fetch refused by the egress guard fails with its own kind, named in
// the error.
func TestEgressRefusedKind(t *testing.T) {
	d := prepare(t, spec{hog: `fetch('http://127.0.0.1:9/hook')`})
	f := &recorder{respond: func(*fetch.Request) (*fetch.Response, error) {
		return nil, &fetch.EgressError{Addr: netip.MustParseAddr("127.0.0.1"), Reason: "loopback"}
	}}
	res := invoke(t, d, event(t, nil), executor.Options{Fetcher: f})
	if res.Status != executor.Failed || res.ErrorKind != executor.KindEgressRefused || !strings.Contains(res.Error, "egress_refused") {
		t.Fatalf("%s kind %s", dump(res), res.ErrorKind)
	}
}
