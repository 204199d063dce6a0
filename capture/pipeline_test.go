package capture_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/devstack/devstacktest"
	"github.com/hogwire/hogwire/eventlimits"
)

// nestedJSON is a value with levels arrays and objects nested inside one
// another.
func nestedJSON(levels int) any {
	var v any = "leaf"
	for i := range levels {
		if i%2 == 0 {
			v = []any{v}
		} else {
			v = map[string]any{"k": v}
		}
	}
	return v
}

// Nothing capture accepts is dropped later for its nesting: properties
// nested as deep as the executor decodes are delivered by a destination,
// and deeper ones are refused at the edge with 400 naming the event and
// the rule, over HTTP and gRPC alike.
func TestDeepNestingEdgeToDestination(t *testing.T) {
	st, admin := devstacktest.Start(t, nil)
	ctx := context.Background()
	proj, err := hogwirev1.NewProjectServiceClient(admin).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
		ProjectId: "deep", Project: &hogwirev1.Project{DisplayName: "deep"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		delivered []string
	)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		delivered = append(delivered, string(b))
		mu.Unlock()
	}))
	defer sink.Close()
	body, _ := structpb.NewValue(map[string]any{"event": "{event.event}"})
	if _, err := hogwirev1.NewDestinationServiceClient(admin).CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent: "projects/deep", FromTemplate: "templates/webhook",
		Destination: &hogwirev1.Destination{DisplayName: "sink", Enabled: true, Inputs: map[string]*hogwirev1.InputValue{
			"url": {Value: structpb.NewStringValue(sink.URL)}, "body": {Value: body},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	token := proj.Project.CaptureToken
	for deadline := time.Now().Add(10 * time.Second); len(st.Node.Syncer().Current().Destinations) < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node never saw the destination")
		}
	}

	send := func(levels ...int) (int, errBody) {
		var events []map[string]any
		for _, n := range levels {
			events = append(events, map[string]any{"event": fmt.Sprint("depth", n), "distinct_id": "d",
				"properties": map[string]any{"deep": nestedJSON(n)}})
		}
		return post(t, "http://"+st.HTTPAddr+"/batch/", map[string]any{"api_key": token, "batch": events})
	}
	for _, bad := range [][]int{{50, 150}, {eventlimits.MaxDepth + 1}, {9_000}} {
		status, e := send(bad...)
		idx := len(bad) - 1
		if status != http.StatusBadRequest || len(e.Rejected) != 1 || e.Rejected[0].Index != idx ||
			e.Rejected[0].Rule != "max_depth" || !strings.HasPrefix(e.Rejected[0].Field, "properties.deep") {
			t.Fatalf("nesting %v: status %d, body %+v", bad, status, e)
		}
	}
	// The same over gRPC.
	deep, err := structpb.NewValue(nestedJSON(150))
	if err != nil {
		t.Fatal(err)
	}
	_, err = hogwirev1.NewEventServiceClient(admin).Publish(ctx, &hogwirev1.PublishRequest{Token: token, Events: []*hogwirev1.Event{
		{Event: "ok", DistinctId: "d"},
		{Event: "depth150", DistinctId: "d", Properties: &structpb.Struct{Fields: map[string]*structpb.Value{"deep": deep}}},
	}})
	if v := violations(t, err, codes.InvalidArgument); len(v) != 1 || !strings.HasPrefix(v[0], "events[1].properties.deep") || !strings.HasSuffix(v[0], ":MAX_DEPTH") {
		t.Fatalf("violations %v", v)
	}

	if status, e := send(50, eventlimits.MaxDepth); status != http.StatusOK {
		t.Fatalf("status %d, body %+v", status, e)
	}
	want := []string{`{"event":"depth100"}`, `{"event":"depth50"}`}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got := slices.Sorted(slices.Values(delivered))
		mu.Unlock()
		if len(got) >= len(want) {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("delivered %v, want %v", got, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %v, want %v", got, want)
		}
	}
	// Nothing else arrives: the refused requests stored nothing.
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != len(want) {
		t.Errorf("delivered %v", delivered)
	}
}
