package capture_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
)

func withProps(name string, props map[string]any) *hogwirev1.Event {
	s, err := structpb.NewStruct(props)
	if err != nil {
		panic(err)
	}
	return &hogwirev1.Event{Event: name, DistinctId: "d", Properties: s}
}

// The gRPC service enforces the same limits as HTTP capture: a request
// breaking one is refused whole, with a field violation per offending
// event naming the rule.
func TestPublishLimits(t *testing.T) {
	pub := &memPublisher{}
	cfg := testConfig(pub)
	cfg.Limits = eventlimits.Limits{MaxEventBytes: 4000, MaxProperties: 100, MaxStringBytes: 1000}
	client := grpcClient(t, cfg)
	ctx := context.Background()
	manyProps := map[string]any{}
	for i := range 101 {
		manyProps[fmt.Sprint("p", i)] = i
	}
	bigProps := map[string]any{}
	for i := range 5 {
		bigProps[fmt.Sprint("p", i)] = strings.Repeat("x", 900)
	}
	cases := []struct {
		name   string
		events []*hogwirev1.Event
		code   codes.Code
		want   []string
	}{
		{"deep", []*hogwirev1.Event{ev("ok", "d"), withProps("deep", map[string]any{"a": nestedJSON(150)})},
			codes.InvalidArgument, []string{"events[1].properties.a:MAX_DEPTH"}},
		{"properties", []*hogwirev1.Event{withProps("many", manyProps)}, codes.InvalidArgument, []string{"events[0].properties:MAX_PROPERTIES"}},
		{"string", []*hogwirev1.Event{withProps("long", map[string]any{"s": strings.Repeat("x", 1001)})},
			codes.ResourceExhausted, []string{"events[0].properties.s:MAX_STRING_BYTES"}},
		{"event size", []*hogwirev1.Event{ev("ok", "d"), ev("ok", "d"), withProps("big", bigProps)},
			codes.ResourceExhausted, []string{"events[2]:MAX_EVENT_BYTES"}},
		{"size and shape", []*hogwirev1.Event{withProps("many", manyProps), withProps("big", bigProps)},
			codes.ResourceExhausted, []string{"events[0].properties:MAX_PROPERTIES", "events[1]:MAX_EVENT_BYTES"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Publish(ctx, &hogwirev1.PublishRequest{Token: testToken, Events: tc.events})
			got := violations(t, err, tc.code)
			for i := range got {
				// The path within a deep value goes on; its start says enough.
				if w := strings.Split(tc.want[min(i, len(tc.want)-1)], ":"); strings.HasPrefix(got[i], w[0]) && strings.HasSuffix(got[i], ":"+w[1]) {
					got[i] = tc.want[i]
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("violations %v, want %v", got, tc.want)
			}
		})
	}
	if n := len(pub.all()); n != 0 {
		t.Errorf("%d events stored by refused requests", n)
	}
}

// A stream answers the requests before a refused one, then ends with the
// refusal's field violations; the refused request stored nothing.
func TestPublishStreamLimits(t *testing.T) {
	pub := &memPublisher{}
	client := grpcClient(t, testConfig(pub))
	stream, err := client.PublishStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, events := range [][]*hogwirev1.Event{
		{ev("a", "d")},
		{ev("b", "d"), withProps("deep", map[string]any{"a": nestedJSON(eventlimits.MaxDepth + 1)})},
	} {
		if err := stream.Send(&hogwirev1.PublishStreamRequest{Token: testToken, Sequence: int64(i), Events: events}); err != nil {
			t.Fatal(err)
		}
	}
	if resp, err := stream.Recv(); err != nil || resp.Sequence != 0 || resp.Accepted != 1 {
		t.Fatalf("first answer %v, %v", resp, err)
	}
	_, err = stream.Recv()
	if v := violations(t, err, codes.InvalidArgument); len(v) != 1 || !strings.HasPrefix(v[0], "events[1].properties.a") {
		t.Fatalf("violations %v", v)
	}
	if evs := pub.all(); len(evs) != 1 || evs[0].Event != "a" {
		t.Errorf("stored %v", evs)
	}
}

// tooLargePublisher refuses like an event log whose messages are too
// small for event index.
type tooLargePublisher struct{ index int }

func (p tooLargePublisher) Publish(context.Context, string, []*hogwirev1.Event) error {
	return fmt.Errorf("eventlog: %w", &eventlimits.TooLargeError{Index: p.index, Size: 2 << 20, Max: 1 << 20})
}

// A refusal by the event log that retrying cannot cure is
// RESOURCE_EXHAUSTED naming the event; a passing failure is UNAVAILABLE
// with a RetryInfo.
func TestPublishStoreErrors(t *testing.T) {
	cfg := testConfig(&memPublisher{})
	cfg.Publisher = tooLargePublisher{index: 1}
	client := grpcClient(t, cfg)
	_, err := client.Publish(context.Background(), &hogwirev1.PublishRequest{Token: testToken, Events: []*hogwirev1.Event{ev("a", "d"), ev("b", "d")}})
	if v := violations(t, err, codes.ResourceExhausted); fmt.Sprint(v) != "[events[1]:MAX_EVENT_BYTES]" {
		t.Errorf("violations %v", v)
	}

	client = grpcClient(t, testConfig(&memPublisher{fail: true}))
	_, err = client.Publish(context.Background(), &hogwirev1.PublishRequest{Token: testToken, Events: []*hogwirev1.Event{ev("a", "d")}})
	st := status.Convert(err)
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if st.Code() != codes.Unavailable || retry == nil || retry.RetryDelay.AsDuration() <= 0 {
		t.Errorf("%v with details %v, want Unavailable with a RetryInfo", err, st.Details())
	}
}
