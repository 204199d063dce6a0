package dataplane_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
	"github.com/hogwire/hogwire/tracing"
)

// An event sent with a W3C traceparent is delivered under a span per
// invocation, linked to the ingest trace, with a child span per fetch
// attempt carrying the attempt number and status.
func TestInvocationAndFetchSpans(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	st, cc := devstacktest.Start(t, func(c *devstack.Config) {
		c.Tracing = &tracing.Provider{TracerProvider: tp, Propagator: propagation.TraceContext{}}
	})
	s := &stack{Stack: st, admin: cc}
	p := s.project(t, "shop")
	var calls atomic.Int32
	sk := newSink(t, func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	d := s.webhook(t, "shop", sk.URL+"/hook?token=s3cret", nil)
	s.waitConfig(t, 1)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest("POST", "http://"+st.HTTPAddr+"/capture/",
		strings.NewReader(`{"api_key":"`+p.CaptureToken+`","event":"signed_up","distinct_id":"u1"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("capture answered %d", resp.StatusCode)
	}
	waitStat(t, s, d.Name, "succeeded", 1)

	var invoke sdktrace.ReadOnlySpan
	var fetches []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		invoke, fetches = nil, nil
		for _, sp := range spans.Ended() {
			switch {
			case sp.Name() == "invoke sink":
				invoke = sp
			case sp.Name() == "POST":
				fetches = append(fetches, sp)
			}
		}
		if invoke != nil && len(fetches) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invocation span %v, %d fetch spans; want one and 2", invoke != nil, len(fetches))
		}
	}
	if links := invoke.Links(); len(links) != 1 || links[0].SpanContext.TraceID().String() != traceID {
		t.Errorf("invocation links %v, want the ingest trace %s", links, traceID)
	}
	for i, f := range fetches {
		if f.Parent().SpanID() != invoke.SpanContext().SpanID() {
			t.Errorf("fetch span %d is not a child of the invocation span", i)
		}
		attrs := map[string]int64{}
		strs := map[string]string{}
		for _, a := range f.Attributes() {
			attrs[string(a.Key)] = a.Value.AsInt64()
			strs[string(a.Key)] = a.Value.String()
		}
		wantStatus := map[int64]int64{1: 503, 2: 200}[attrs["hogwire.fetch.attempt"]]
		if wantStatus == 0 || attrs["http.response.status_code"] != wantStatus {
			t.Errorf("fetch span %d attributes %v", i, attrs)
		}
		// The client conventions, without the query (it may hold secrets).
		if strs["http.request.method"] != "POST" || strs["url.full"] != sk.URL+"/hook" || strs["server.address"] != "127.0.0.1" || attrs["server.port"] == 0 {
			t.Errorf("fetch span %d attributes %v", i, strs)
		}
		// A 5xx fails the attempt.
		if wantErr := wantStatus >= 500; (f.Status().Code == codes.Error) != wantErr || (strs["error.type"] == "503") != wantErr {
			t.Errorf("fetch span %d with HTTP %d: status %v, error.type %q", i, wantStatus, f.Status(), strs["error.type"])
		}
	}
}
