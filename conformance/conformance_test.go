package conformance_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/hogvm/kind"
	"github.com/hogwire/hogwire/hogvm/vm"
	"github.com/hogwire/hogwire/inputs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// caseFile is testdata/NAME.yaml.
type caseFile struct {
	// InputsSchema is the API's InputSchema list, in its JSON form.
	InputsSchema []json.RawMessage `json:"inputs_schema"`
	// Inputs are InputValues in their JSON form ({"value_json": "…"}).
	Inputs map[string]json.RawMessage `json:"inputs"`
	// Event replaces fields of the sample event (an Event in JSON form).
	Event map[string]any `json:"event"`
	// Responses answer the fetches in order; missing ones are 200 {}.
	Responses []struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	} `json:"responses"`
}

func sampleEvent() map[string]any {
	return map[string]any{
		"uuid": "0191f1a3-4b2c-7d8e-9f00-112233445566", "event": "signed_up", "distinct_id": "ada",
		"timestamp":  "2024-05-03T12:00:00Z",
		"properties": map[string]any{"plan": "pro", "items": []any{"a", "b", "c"}, "note": "Tom & Jerry <3"},
		"person":     map[string]any{"id": "0191f1a3-0000-7000-8000-0000000000aa", "properties": map[string]any{"name": "Ada", "email": "ada@example.com"}},
	}
}

// fetcher answers with the case's responses in turn, then like
// executor.MockFetcher.
type fetcher struct {
	responses []fetch.Response
	n         int
}

func (f *fetcher) Do(ctx context.Context, req fetch.Request, p fetch.Policy, observe func(fetch.Attempt)) (*fetch.Response, error) {
	f.n++
	if f.n <= len(f.responses) {
		r := f.responses[f.n-1]
		if observe != nil {
			observe(fetch.Attempt{N: 1, Max: 1, Status: r.Status})
		}
		return &r, nil
	}
	return executor.MockFetcher{}.Do(ctx, req, p, observe)
}

func TestCorpus(t *testing.T) {
	progs, err := filepath.Glob("testdata/*.hog")
	if err != nil || len(progs) == 0 {
		t.Fatalf("no programs: %v", err)
	}
	for _, p := range progs {
		name := strings.TrimSuffix(filepath.Base(p), ".hog")
		t.Run(name, func(t *testing.T) {
			got := transcript(t, strings.TrimSuffix(p, ".hog"))
			golden := strings.TrimSuffix(p, ".hog") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./conformance -update)", err)
			}
			if got != string(want) {
				t.Errorf("transcript differs from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// transcript runs one case and describes everything it did.
func transcript(t *testing.T, base string) string {
	t.Helper()
	src, err := os.ReadFile(base + ".hog")
	if err != nil {
		t.Fatal(err)
	}
	var cf caseFile
	if raw, err := os.ReadFile(base + ".yaml"); err == nil {
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(string(js)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cf); err != nil {
			t.Fatalf("%s.yaml: %v", base, err)
		}
	}
	prog, err := kind.Destination().Compile(string(src), nil)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	bc, _ := json.Marshal(prog)
	d := &hogwirev1.Destination{
		Name: "projects/acme/destinations/case", DisplayName: "case", Enabled: true, Hog: string(src), Bytecode: bc,
		Inputs: map[string]*hogwirev1.InputValue{},
	}
	for i, raw := range cf.InputsSchema {
		s := &hogwirev1.InputSchema{}
		if err := protojson.Unmarshal(raw, s); err != nil {
			t.Fatalf("inputs_schema[%d]: %v", i, err)
		}
		d.InputsSchema = append(d.InputsSchema, s)
	}
	for k, raw := range cf.Inputs {
		in := &hogwirev1.InputValue{}
		if err := protojson.Unmarshal(raw, in); err != nil {
			t.Fatalf("inputs.%s: %v", k, err)
		}
		d.Inputs[k] = in
	}
	var problems []string
	inputs.CompileAll(d.InputsSchema, d.Inputs, func(field, msg string) { problems = append(problems, field+": "+msg) })
	if len(problems) > 0 {
		slices.Sort(problems)
		return "invalid:\n  " + strings.Join(problems, "\n  ") + "\n"
	}
	prep, err := executor.Prepare(d)
	if err != nil {
		t.Fatal(err)
	}

	evm := sampleEvent()
	for k, v := range cf.Event {
		evm[k] = v
	}
	eb, _ := json.Marshal(evm)
	ev := &hogwirev1.Event{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(eb, ev); err != nil {
		t.Fatalf("event: %v", err)
	}
	if ev.Timestamp == nil {
		ev.Timestamp = timestamppb.New(time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC))
	}
	project := &hogwirev1.Project{Name: "projects/acme", DisplayName: "Acme", TimeZone: "UTC"}
	g := executor.NewEvent(ev, project, executor.Source{URL: "https://hogwire.example.com"})
	f := &fetcher{}
	for _, r := range cf.Responses {
		f.responses = append(f.responses, fetch.Response{Status: r.Status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(r.Body), Attempts: 1})
	}
	res := prep.Invoke(context.Background(), g, executor.Options{Fetcher: f, NoDebugLogs: true})
	// The requests as sent, with what the host's signing adds (at a fixed
	// time, so that signatures are reproducible), then redacted as logs
	// and traces keep them.
	for i := range res.Fetches {
		if r := res.Fetches[i].Request; r != nil {
			h, err := fetch.SignedHeader(*r, time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			r.Header, r.Sign = h, nil
		}
	}
	res.Redact()

	var b strings.Builder
	fmt.Fprintf(&b, "status: %s\n", res.Status.Metric())
	if res.Error != "" {
		fmt.Fprintf(&b, "error: %s\n", res.Error)
	}
	for _, l := range res.Logs {
		fmt.Fprintf(&b, "log: %s\n", l.Message)
	}
	for i, r := range res.Fetches {
		if r.Request == nil {
			continue
		}
		fmt.Fprintf(&b, "request %d: %s %s\n", i+1, r.Request.Method, r.Request.URL)
		h := r.Request.Header
		for _, k := range slices.Sorted(maps.Keys(h)) {
			fmt.Fprintf(&b, "  %s: %s\n", k, strings.Join(h[k], ", "))
		}
		if r.Request.Body != nil {
			fmt.Fprintf(&b, "  body: %s\n", r.Request.Body)
		}
	}
	if res.Status == executor.Succeeded {
		fmt.Fprintf(&b, "result: %s\n", vm.Format(res.Value))
	}
	return b.String()
}
