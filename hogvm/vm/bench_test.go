package vm_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

func mustLink(tb testing.TB, code ...any) *vm.Program {
	tb.Helper()
	p, err := vm.Link(&bytecode.Program{Version: 1, Code: code}, stl.Library())
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// eventGlobals is a typical CDP globals object: an event with a few dozen
// properties, a person, the project.
func eventGlobals(tb testing.TB) vm.Value {
	tb.Helper()
	props := map[string]any{"$browser": "Chrome", "$os": "Mac OS X", "$current_url": "https://example.com/pricing", "$lib": "web"}
	for i := 0; i < 30; i++ {
		props[fmt.Sprintf("prop_%d", i)] = fmt.Sprintf("value %d", i)
	}
	return vm.FromGo(map[string]any{
		"event": map[string]any{
			"uuid": "0190b9e4-5a5e-7b1e-9a4a-1d2e3f4a5b6c", "event": "$pageview", "distinct_id": "user-42",
			"timestamp": "2024-05-03T12:34:56Z", "properties": props, "url": "https://app/events/1",
		},
		"person":  map[string]any{"id": "p1", "name": "Ada", "properties": map[string]any{"email": "ada@example.com", "plan": "pro"}},
		"project": map[string]any{"id": 1, "name": "Web", "url": "https://app/project/1"},
		"inputs":  map[string]any{"url": "https://hooks.example.com/x", "token": "secret"},
		// Filters see event fields at the top level.
		"properties": props,
	})
}

// filterProgram is `event = '$pageview' and properties.$browser = 'Chrome'`
// lowered as PostHog's compiler does (HOG.md §2.2), reading a top-level
// `event` string as filter globals provide it.
var filterCode = []any{
	int64(32), "$pageview", int64(32), "event", int64(1), int64(1), int64(11),
	int64(32), "Chrome", int64(32), "$browser", int64(32), "properties", int64(1), int64(2), int64(11),
	int64(3), int64(2),
}

func filterGlobals(tb testing.TB) vm.Value {
	g := eventGlobals(tb)
	g.AsDict().SetString("event", vm.String("$pageview"))
	return g
}

func BenchmarkFilter(b *testing.B) {
	p := mustLink(b, filterCode...)
	g := filterGlobals(b)
	m := vm.New(vm.Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := m.Run(ctx, p, g)
		if err != nil || !res.Value.AsBool() {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkFilterEval is BenchmarkFilter through Eval, the entry for
// callers that need only the value.
func BenchmarkFilterEval(b *testing.B) {
	p := mustLink(b, filterCode...)
	g := filterGlobals(b)
	m := vm.New(vm.Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v, finished, err := m.Eval(ctx, p, g)
		if err != nil || !finished || !v.AsBool() {
			b.Fatal(v, finished, err)
		}
	}
}

// BenchmarkFilterEvaluator is BenchmarkFilterEval through an Evaluator,
// as a worker matching an event against many filters runs them, on
// frozen globals as the executor's filter globals are.
func BenchmarkFilterEvaluator(b *testing.B) {
	p := mustLink(b, filterCode...)
	g := filterGlobals(b)
	vm.Freeze(g)
	e := vm.New(vm.Options{}).Evaluator()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v, finished, err := e.Eval(ctx, p, g)
		if err != nil || !finished || !v.AsBool() {
			b.Fatal(v, finished, err)
		}
	}
}

// templateCode is f'{event.event} by {person.properties.email} on {event.properties.$current_url}'.
var templateCode = []any{
	int64(32), "event", int64(32), "event", int64(1), int64(2),
	int64(32), " by ", int64(32), "email", int64(32), "properties", int64(32), "person", int64(1), int64(3),
	int64(32), " on ", int64(32), "$current_url", int64(32), "properties", int64(32), "event", int64(1), int64(3),
	int64(2), "concat", int64(5), int64(38),
}

func BenchmarkTemplate(b *testing.B) {
	p := mustLink(b, templateCode...)
	g := eventGlobals(b)
	m := vm.New(vm.Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := m.Run(ctx, p, g)
		if err != nil || res.Value.AsString() != "$pageview by ada@example.com on https://example.com/pricing" {
			b.Fatal(vm.Format(res.Value), err)
		}
	}
}

// webhookCode builds a JSON body like a webhook destination:
// return jsonStringify({'event': event.event, 'distinct_id': event.distinct_id,
//
//	'properties': event.properties, 'person': person.name, 'ts': event.timestamp})
var webhookCode = []any{
	int64(32), "event", int64(32), "event", int64(32), "event", int64(1), int64(2),
	int64(32), "distinct_id", int64(32), "distinct_id", int64(32), "event", int64(1), int64(2),
	int64(32), "properties", int64(32), "properties", int64(32), "event", int64(1), int64(2),
	int64(32), "person", int64(32), "name", int64(32), "person", int64(1), int64(2),
	int64(32), "ts", int64(32), "timestamp", int64(32), "event", int64(1), int64(2),
	int64(42), int64(5), int64(2), "jsonStringify", int64(1), int64(38),
}

func BenchmarkWebhook(b *testing.B) { benchWebhook(b, false) }

// BenchmarkWebhookFrozen is BenchmarkWebhook on frozen globals, as the
// executor shares an event's globals between its destinations.
func BenchmarkWebhookFrozen(b *testing.B) { benchWebhook(b, true) }

func benchWebhook(b *testing.B, frozen bool) {
	p := mustLink(b, webhookCode...)
	g := eventGlobals(b)
	if frozen {
		vm.Freeze(g)
	}
	m := vm.New(vm.Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Run(ctx, p, g); err != nil {
			b.Fatal(err)
		}
	}
}

// fibCode is:
//
//	fun fib(n) { if (n < 2) { return n } return fib(n - 1) + fib(n - 2) }
//	return fib(20)
var fibCode = []any{
	int64(52), "fib", int64(1), int64(1), int64(30),
	int64(33), int64(2), int64(36), int64(0), int64(15), int64(40), int64(3), int64(36), int64(0), int64(38),
	int64(33), int64(2), int64(36), int64(0), int64(7), int64(55), int64(0), int64(54), int64(1),
	int64(33), int64(1), int64(36), int64(0), int64(7), int64(55), int64(0), int64(54), int64(1),
	int64(6), int64(38),
	int64(53), int64(1), true, int64(0),
	int64(33), int64(20), int64(36), int64(0), int64(54), int64(1), int64(38),
}

func BenchmarkFibonacci(b *testing.B) {
	p := mustLink(b, fibCode...)
	m := vm.New(vm.Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := m.Run(ctx, p, vm.Null)
		if err != nil || res.Value.AsNumber() != 6765 {
			b.Fatal(vm.Format(res.Value), err)
		}
	}
}

func benchConformance(b *testing.B, name string) {
	p := loadProgram(b, "testdata/conformance/"+name+".hoge")
	m := vm.New(vm.Options{Print: func(string) {}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Run(ctx, p, vm.Null); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMandelbrot(b *testing.B) { benchConformance(b, "mandelbrot") }
func BenchmarkRecursion(b *testing.B)  { benchConformance(b, "recursion") }
func BenchmarkStl(b *testing.B)        { benchConformance(b, "bytecodeStl") }

// BenchmarkParseJSON parses a vendor's typical JSON response, as fetch does
// for every response body.
func BenchmarkParseJSON(b *testing.B) {
	body := []byte(`{"id":"evt_01HZX8K2","status":"accepted","received_at":"2026-11-27T04:05:06.789Z",` +
		`"events":[{"index":0,"ok":true},{"index":1,"ok":false,"error":{"code":"invalid_email","message":"Email \"x\" is not valid"}}],` +
		`"usage":{"requests":1234,"limit":100000,"ratio":0.01234},"warnings":[],"trace":null}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := vm.ParseJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}
