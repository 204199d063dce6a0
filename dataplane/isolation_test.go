package dataplane_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
)

// code creates a destination in project running hog on every event.
func (st *stack) code(t *testing.T, project, name, hog string, limits *hogwirev1.ExecutionLimits, inputs map[string]any) *hogwirev1.Destination {
	t.Helper()
	in := map[string]*hogwirev1.InputValue{}
	var schema []*hogwirev1.InputSchema
	for k, v := range inputs {
		pv, err := structpb.NewValue(v)
		if err != nil {
			t.Fatal(err)
		}
		in[k] = &hogwirev1.InputValue{Value: pv}
		schema = append(schema, &hogwirev1.InputSchema{Key: k, Type: hogwirev1.InputType_INPUT_TYPE_STRING})
	}
	resp, err := hogwirev1.NewDestinationServiceClient(st.admin).CreateDestination(context.Background(), &hogwirev1.CreateDestinationRequest{
		Parent: "projects/" + project,
		Destination: &hogwirev1.Destination{DisplayName: name, Hog: hog, Enabled: true, Limits: limits,
			Inputs: in, InputsSchema: schema},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Destination
}

// waitLog waits until a log entry of dest stored by the control plane
// contains text.
func (st *stack) waitLog(t *testing.T, dest, text string) {
	t.Helper()
	waitFor(t, func() bool {
		logs, err := hogwirev1.NewLogServiceClient(st.admin).ListLogEntries(context.Background(), &hogwirev1.ListLogEntriesRequest{Parent: dest})
		if err != nil {
			return false
		}
		for _, e := range logs.Entries {
			if strings.Contains(e.Message, text) {
				return true
			}
		}
		return false
	})
}

// events publishes n events named name, tagged so that they are distinct.
func (st *stack) events(t *testing.T, token, name, tag string, n int) {
	t.Helper()
	evs := make([]*hogwirev1.Event, n)
	for i := range evs {
		evs[i] = ev(name, fmt.Sprintf("%s-%d", tag, i))
	}
	st.publish(t, token, evs...)
}

// An infinite loop beside a healthy webhook, with the health manager's
// defaults: the healthy destination delivers every event and stays
// healthy, its invocations never slow on their own account; the loop is
// quarantined within seconds and its queued work is skipped. While both
// run, the healthy destination completes nearly every invocation: the
// loop's share of the CPU is time, not a queue the healthy one waits in.
func TestInfiniteLoopBesideHealthy(t *testing.T) {
	st, cc := devstacktest.Start(t, func(c *devstack.Config) {
		c.Health = controlplane.HealthConfig{Tick: 100 * time.Millisecond}
	})
	s := &stack{Stack: st, admin: cc}
	p := s.project(t, "shop")
	sink := newSink(t, nil)
	healthy := s.webhook(t, "shop", sink.URL, nil)
	loop := s.code(t, "shop", "loop", "while (true) { }", nil, nil)
	s.waitConfig(t, 2)

	start := time.Now()
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			s.events(t, p.CaptureToken, "e", fmt.Sprint("b", i), 20)
			sent.Add(20)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// The healthy destination keeps up the whole time, and stays healthy.
	deadline := time.Now().Add(90 * time.Second)
	for {
		if h := s.health(t, healthy.Name); h.GetState() != hogwirev1.HealthState_HEALTH_STATE_HEALTHY {
			t.Fatalf("the healthy destination became %v: %s", h.GetState(), h.GetReason())
		}
		if s.health(t, loop.Name).GetState() == hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the loop is %v after %v", s.health(t, loop.Name).GetState(), time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the loop was quarantined after %v: %s", time.Since(start).Round(time.Second), s.health(t, loop.Name).GetReason())
	close(stop)
	wg.Wait()
	stop = make(chan struct{})

	waitStat(t, s, healthy.Name, "succeeded", float64(sent.Load()))
	loopDone := s.Node.Stat(loop.Name, "failed")
	// Healthy invocations are cheap; the loop's each took its 5 s of VM
	// time. Completions counted while both ran: nearly all the healthy
	// one's.
	if share := float64(sent.Load()) / (float64(sent.Load()) + loopDone); share < 0.9 {
		t.Errorf("the healthy destination completed %.0f%% of invocations (%d of them, the loop %v)", 100*share, sent.Load(), loopDone)
	}
	if n := s.Node.Stat(healthy.Name, "health_errors"); n != 0 {
		t.Errorf("the healthy destination has %v health errors", n)
	}
	// What the loop had queued is skipped as quarantined.
	waitStat(t, s, loop.Name, "disabled_temporarily", 1)
	if got := sink.count(); got < int(sent.Load()) {
		t.Errorf("the sink got %d of %d events", got, sent.Load())
	}
}

// A destination that allocates much and holds it, beside a healthy one:
// the node's Hog memory budget keeps the process small, the hog fails
// with memory errors and is degraded, and the healthy destination
// delivers every event without a failure.
func TestMemoryHogBesideHealthy(t *testing.T) {
	st, cc := devstacktest.Start(t, func(c *devstack.Config) {
		c.HogMemory = 64 << 20
		c.Health = controlplane.HealthConfig{Tick: 100 * time.Millisecond}
	})
	s := &stack{Stack: st, admin: cc}
	p := s.project(t, "shop")
	sink := newSink(t, nil)
	slow := newSink(t, func(http.ResponseWriter, *http.Request) { time.Sleep(300 * time.Millisecond) })
	healthy := s.webhook(t, "shop", sink.URL, nil)
	// Each invocation builds a 16 MiB string and holds it while it waits
	// on a slow endpoint: 32 at once would hold half a gigabyte.
	hog := s.code(t, "shop", "hog", `let s := 'x'
		let i := 0
		while (i < 24) { s := concat(s, s); i := i + 1 }
		fetch(inputs.url, {'body': {'size': length(s)}})`, nil, map[string]any{"url": slow.URL})
	s.waitConfig(t, 2)

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	const n = 300
	for i := range n / 50 {
		s.events(t, p.CaptureToken, "e", fmt.Sprint("b", i), 50)
	}
	waitStat(t, s, healthy.Name, "succeeded", n)
	hogStats := func() string {
		var all []string
		for _, m := range []string{"succeeded", "failed", "disabled_temporarily", "disabled_permanently", "memory_waits"} {
			all = append(all, fmt.Sprintf("%s=%v", m, s.Node.Stat(hog.Name, m)))
		}
		return strings.Join(all, " ") + "; health " + s.health(t, hog.Name).GetState().String()
	}
	// Enough of the hog's invocations ran for the heap to show the budget:
	// twenty, or ten failed and the health manager stopped it (which a
	// loaded machine, slower to finish them, reaches first).
	ranEnough := func() bool {
		ran, failed := s.Node.Stat(hog.Name, "succeeded")+s.Node.Stat(hog.Name, "failed"), s.Node.Stat(hog.Name, "failed")
		return ran >= 20 || (failed >= 10 && s.health(t, hog.Name).GetState() == hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY)
	}
	for deadline := time.Now().Add(60 * time.Second); !ranEnough(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the hog ran fewer than 20 invocations: %s", hogStats())
		}
	}
	close(stop)
	<-sampled
	// The budget holds the hog's invocations to 64 MiB at once (plus
	// garbage and the stack's own memory).
	t.Logf("heap peak %d MiB", peak.Load()>>20)
	if p := peak.Load(); p > 256<<20 {
		t.Errorf("the heap peaked at %d MiB", p>>20)
	}
	waitStat(t, s, hog.Name, "failed", 10)
	if f := s.Node.Stat(healthy.Name, "failed"); f != 0 {
		t.Errorf("the healthy destination failed %v times", f)
	}
	if sink.count() < n {
		t.Errorf("the sink got %d of %d", sink.count(), n)
	}
	// Degraded, or already quarantined.
	waitFor(t, func() bool { return s.health(t, hog.Name).GetState() != hogwirev1.HealthState_HEALTH_STATE_HEALTHY })
	if h := s.health(t, healthy.Name); h.GetState() != hogwirev1.HealthState_HEALTH_STATE_HEALTHY {
		t.Errorf("the healthy destination is %v: %s", h.GetState(), h.GetReason())
	}
	// The hog's failures are memory errors.
	s.waitLog(t, hog.Name, "Memory limit")
}

// gate is a sink that holds every request until it is opened.
type gate struct {
	*sink
	open     chan struct{}
	openOnce sync.Once
	arrived  atomic.Int64
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	g.sink = newSink(t, func(w http.ResponseWriter, r *http.Request) {
		g.arrived.Add(1)
		select {
		case <-g.open:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(g.release)
	return g
}

func (g *gate) release() { g.openOnce.Do(func() { close(g.open) }) }

// twoFetches posts twice to inputs.url, with inputs.tag and the event's
// distinct id in each body.
const twoFetches = `
fetch(inputs.url, {'body': {'tag': inputs.tag, 'user': event.distinct_id, 'n': 1}})
fetch(inputs.url, {'body': {'tag': inputs.tag, 'user': event.distinct_id, 'n': 2}})`

// Disabling, deleting or editing a destination reaches the work it has
// queued at once: queued invocations are skipped (or run the new code),
// and the ones waiting on a fetch stop before their next one.
func TestStateChangesReachQueuedWork(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	dests := hogwirev1.NewDestinationServiceClient(st.admin)
	ctx := context.Background()
	limits := &hogwirev1.ExecutionLimits{MaxConcurrency: 2, Timeout: durationpb.New(5 * time.Second)}
	const n = 40

	// start creates a destination whose sink holds requests, publishes n
	// events, and waits until two invocations wait on their first fetch
	// and the rest are queued.
	start := func(t *testing.T, name string) (*hogwirev1.Destination, *gate) {
		g := newGate(t)
		d := st.code(t, "shop", name, twoFetches, limits, map[string]any{"url": g.URL, "tag": "old"})
		waitFor(t, func() bool { return st.Node.Syncer().Current().Destinations[d.Name] != nil })
		st.events(t, p.CaptureToken, "e", name, n)
		waitFor(t, func() bool { return g.arrived.Load() == 2 })
		return d, g
	}
	counts := func(d *hogwirev1.Destination) string {
		t.Helper()
		var parts []string
		for _, m := range []string{"succeeded", "failed", "disabled", "disabled_permanently"} {
			parts = append(parts, fmt.Sprintf("%s=%v", m, st.Node.Stat(d.Name, m)))
		}
		return strings.Join(parts, " ")
	}

	t.Run("disable", func(t *testing.T) {
		d, g := start(t, "disabled")
		if _, err := dests.DisableDestination(ctx, &hogwirev1.DisableDestinationRequest{Name: d.Name}); err != nil {
			t.Fatal(err)
		}
		waitStat(t, st, d.Name, "disabled", n-2)
		g.release()
		waitStat(t, st, d.Name, "disabled", n)
		// The two that were waiting on their first fetch were stopped: no
		// second fetch.
		if got := g.arrived.Load(); got != 2 {
			t.Errorf("the sink got %d requests, want the 2 in flight", got)
		}
		if st.Node.Stat(d.Name, "succeeded") != 0 {
			t.Errorf("counts: %s", counts(d))
		}
		// Each event has its record: skipped, and why.
		for _, r := range waitRecords(t, st, d.Name, skipped("disabled"), n) {
			if r.GetEventUuid() == "" || r.GetDestination() != d.Name {
				t.Errorf("record %v", r)
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		d, g := start(t, "deleted")
		if _, err := dests.DeleteDestination(ctx, &hogwirev1.DeleteDestinationRequest{Name: d.Name}); err != nil {
			t.Fatal(err)
		}
		waitStat(t, st, d.Name, "disabled_permanently", n-2)
		g.release()
		waitStat(t, st, d.Name, "disabled_permanently", n)
		if got := g.arrived.Load(); got != 2 {
			t.Errorf("the sink got %d requests, want the 2 in flight", got)
		}
		// The records outlive the destination.
		waitRecords(t, st, d.Name, skipped("disabled_permanently"), n)
	})

	t.Run("edit", func(t *testing.T) {
		d, g := start(t, "edited")
		d.Inputs["tag"] = &hogwirev1.InputValue{Value: structpb.NewStringValue("new")}
		if _, err := dests.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{Destination: d,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"inputs"}}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			return st.Node.Syncer().Current().Destinations[d.Name].GetInputs()["tag"].GetValue().GetStringValue() == "new"
		})
		g.release()
		// The queued ones ran with the new inputs, both fetches each; the
		// two that had begun stopped after their first.
		waitStat(t, st, d.Name, "succeeded", n-2)
		waitStat(t, st, d.Name, "failed", 2)
		waitFor(t, func() bool { return g.count() == 2+2*(n-2) })
		old, fresh := 0, 0
		g.mu.Lock()
		for _, b := range g.bodies {
			switch b["tag"] {
			case "old":
				old++
			case "new":
				fresh++
			}
		}
		g.mu.Unlock()
		if old != 2 || fresh != 2*(n-2) {
			t.Errorf("bodies: %d old, %d new; counts: %s", old, fresh, counts(d))
		}
	})
}

// A destination whose requests the egress guard refuses fails every
// invocation with the egress_refused kind, and stays healthy: its
// configuration is wrong, not its health.
func TestEgressRefusedStaysHealthy(t *testing.T) {
	st := startHealthStack(t)
	p := st.project(t, "shop")
	d := st.webhook(t, "shop", "http://169.254.169.254/latest", nil)
	st.waitConfig(t, 1)
	const n = 30 // three times what would quarantine it if it were errors
	st.events(t, p.CaptureToken, "e", "x", n)
	waitStat(t, st, d.Name, "failed", n)
	for metric, want := range map[string]float64{"egress_refused": n, "failed_client_error": n, "health_errors": 0} {
		if got := st.Node.Stat(d.Name, metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	st.waitReported(t, d.Name, n)
	time.Sleep(300 * time.Millisecond) // a few of the health manager's ticks
	if h := st.health(t, d.Name); h.GetState() != hogwirev1.HealthState_HEALTH_STATE_HEALTHY {
		t.Errorf("the destination is %v: %s", h.GetState(), h.GetReason())
	}
	st.waitLog(t, d.Name, "egress_refused")
}

// Events a destination's filters do not select count as filtered, by
// name, by a name the index reads from an expression, or by an
// expression that runs, counted in bulk.
func TestFilteredCountedInBulk(t *testing.T) {
	st := startStack(t)
	p := st.project(t, "shop")
	sink := newSink(t, nil)
	byName := st.webhook(t, "shop", sink.URL, &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "a"}}})
	byExpr := st.webhook(t, "shop", sink.URL, &hogwirev1.Filters{Expression: "event = 'b'"})
	byRun := st.webhook(t, "shop", sink.URL, &hogwirev1.Filters{Expression: "event like 'b'"})
	st.waitConfig(t, 3)
	st.events(t, p.CaptureToken, "a", "a", 7)
	st.events(t, p.CaptureToken, "b", "b", 5)
	st.events(t, p.CaptureToken, "c", "c", 3)
	waitStat(t, st, byName.Name, "succeeded", 7)
	waitStat(t, st, byExpr.Name, "succeeded", 5)
	waitStat(t, st, byRun.Name, "succeeded", 5)
	waitStat(t, st, byName.Name, "filtered", 8)
	waitStat(t, st, byExpr.Name, "filtered", 10)
	waitStat(t, st, byRun.Name, "filtered", 10)
	if a, b, c := st.Node.Stat(byName.Name, "filtered"), st.Node.Stat(byExpr.Name, "filtered"), st.Node.Stat(byRun.Name, "filtered"); a != 8 || b != 10 || c != 10 {
		t.Errorf("filtered: %v by name, %v by the expression's name, %v by running the expression; want 8, 10 and 10", a, b, c)
	}
}
