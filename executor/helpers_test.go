package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/compiler"
)

// spec describes a destination the way a user writes it; compile turns it
// into what the control plane stores (bytecode everywhere).
type spec struct {
	hog     string
	filters *hogwirev1.Filters
	schema  []*hogwirev1.InputSchema
	inputs  map[string]any
	limits  *hogwirev1.ExecutionLimits
	masking string
}

// compile builds a destination with its bytecode as the control plane does:
// compiler.Compile for the program, filters.Compile for the filters and
// compiler.CompileTemplate on every string leaf of a templated input.
func compile(t testing.TB, s spec) *hogwirev1.Destination {
	t.Helper()
	prog, err := compiler.Compile(s.hog, compiler.Options{Functions: []string{"fetch", "postHogCapture"}})
	if err != nil {
		t.Fatalf("compiling hog: %v", err)
	}
	bc, err := json.Marshal(prog)
	if err != nil {
		t.Fatal(err)
	}
	d := &hogwirev1.Destination{
		Name:         "projects/acme/destinations/hook",
		DisplayName:  "My webhook",
		Hog:          s.hog,
		Bytecode:     bc,
		InputsSchema: s.schema,
		Inputs:       map[string]*hogwirev1.InputValue{},
		Filters:      s.filters,
		Limits:       s.limits,
	}
	if d.Filters == nil {
		d.Filters = &hogwirev1.Filters{}
	}
	if d.Filters.Bytecode, err = filters.Compile(d.Filters); err != nil {
		t.Fatalf("compiling filters: %v", err)
	}
	templating := map[string]bool{}
	for _, sc := range s.schema {
		templating[sc.Key] = sc.Templating == nil || *sc.Templating
	}
	for k, v := range s.inputs {
		val, err := structpb.NewValue(v)
		if err != nil {
			t.Fatalf("input %s: %v", k, err)
		}
		iv := &hogwirev1.InputValue{Value: val}
		if templating[k] {
			iv.Bytecode = compileValue(t, val)
		}
		d.Inputs[k] = iv
	}
	if s.masking != "" {
		p, err := compiler.CompileExpr(s.masking, compiler.Options{})
		if err != nil {
			t.Fatal(err)
		}
		mb, _ := json.Marshal(p)
		d.Masking = &hogwirev1.Masking{Hash: s.masking, Bytecode: mb}
	}
	return d
}

func compileValue(t testing.TB, v *structpb.Value) *structpb.Value {
	t.Helper()
	switch k := v.Kind.(type) {
	case *structpb.Value_StringValue:
		p, err := compiler.CompileTemplate(k.StringValue, compiler.Options{})
		if err != nil {
			t.Fatalf("template %q: %v", k.StringValue, err)
		}
		b, _ := json.Marshal(p)
		out := &structpb.Value{}
		if err := out.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		return out
	case *structpb.Value_StructValue:
		out := &structpb.Struct{Fields: map[string]*structpb.Value{}}
		for key, e := range k.StructValue.Fields {
			out.Fields[key] = compileValue(t, e)
		}
		return structpb.NewStructValue(out)
	case *structpb.Value_ListValue:
		out := &structpb.ListValue{}
		for _, e := range k.ListValue.Values {
			out.Values = append(out.Values, compileValue(t, e))
		}
		return structpb.NewListValue(out)
	}
	return v
}

func prepare(t testing.TB, s spec) *executor.Destination {
	t.Helper()
	d, err := executor.Prepare(compile(t, s))
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return d
}

var project = &hogwirev1.Project{Name: "projects/acme", DisplayName: "Acme Inc", SiteUrl: "https://acme.example"}

var source = executor.Source{URL: "https://hogwire.example"}

// event returns a typical $pageview.
func event(t testing.TB, props map[string]any) *hogwirev1.Event {
	t.Helper()
	if props == nil {
		props = map[string]any{"$browser": "Chrome", "$current_url": "https://acme.example/pricing"}
	}
	p, err := structpb.NewStruct(props)
	if err != nil {
		t.Fatal(err)
	}
	return &hogwirev1.Event{
		Uuid:       "0190f7f0-0000-7000-8000-000000000001",
		Event:      "$pageview",
		DistinctId: "user-1",
		Properties: p,
		Timestamp:  timestamppb.New(time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC)),
		Person: &hogwirev1.Person{Id: "0190f7f0-0000-7000-8000-0000000000aa", Properties: mustStruct(t, map[string]any{
			"email": "max@acme.example", "plan": "pro",
		})},
	}
}

func mustStruct(t testing.TB, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recorder is a Fetcher that records requests and answers with respond.
type recorder struct {
	mu       sync.Mutex
	reqs     []*fetch.Request
	policies []fetch.Policy
	respond  func(*fetch.Request) (*fetch.Response, error)
}

func (r *recorder) Do(_ context.Context, req fetch.Request, p fetch.Policy, observe func(fetch.Attempt)) (*fetch.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, &req)
	r.policies = append(r.policies, p)
	r.mu.Unlock()
	resp, err := &fetch.Response{Status: 200, Body: []byte(`{"ok":true}`)}, error(nil)
	if r.respond != nil {
		resp, err = r.respond(&req)
	}
	if observe != nil {
		a := fetch.Attempt{N: 1, Max: 1, Err: err}
		if resp != nil {
			a.Status = resp.Status
		}
		observe(a)
	}
	return resp, err
}

// flat is h with one value per header, as the tests write headers.
func flat(h http.Header) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = v[0]
	}
	return out
}

// messages returns the log messages of res at the given level (all levels
// when level is unspecified).
func messages(res *executor.Result, level hogwirev1.LogLevel) []string {
	var out []string
	for _, l := range res.Logs {
		if level == hogwirev1.LogLevel_LOG_LEVEL_UNSPECIFIED || l.Level == level {
			out = append(out, l.Message)
		}
	}
	return out
}

const info = hogwirev1.LogLevel_LOG_LEVEL_INFO

func invoke(t testing.TB, d *executor.Destination, ev *hogwirev1.Event, opts executor.Options) *executor.Result {
	t.Helper()
	return d.Invoke(context.Background(), executor.NewEvent(ev, project, source), opts)
}

func dump(res *executor.Result) string {
	return fmt.Sprintf("status=%v error=%q logs=%q", res.Status, res.Error, messages(res, 0))
}
