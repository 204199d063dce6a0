package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/resourcename"
)

// TestConfig configures TestService.Test.
type TestConfig struct {
	// FetchClient sends the requests of FETCH_MODE_REAL. Nil uses a client
	// with the default egress guard (no private or loopback addresses),
	// made for each test.
	FetchClient *fetch.Client
	// FetchPolicy is the retry policy of FETCH_MODE_REAL; give the data
	// plane's so that a test retries as delivery does (zero: the fetch
	// defaults, which are also the data plane's).
	FetchPolicy fetch.Policy
	// SourceURL is the base of the links in the Hog globals, as the data
	// plane's SourceURL.
	SourceURL string
}

// testServer serves TestService: it runs a saved or unsaved destination
// once, validated as DestinationService validates it.
type testServer struct {
	hogwirev1.UnimplementedTestServiceServer
	store *store.Store
	dests *destinationServer
	cfg   TestConfig
	now   func() time.Time
}

// unsavedID names an unsaved destination whose config has only a project
// name, so that templates reading the destination's name see a valid one.
const unsavedID = "unsaved"

// Test runs a destination once with the data plane's execution code
// (executor.Prepare, executor.NewEvent, Invoke) and reports everything it
// did, secrets redacted. It writes nothing: no metrics, no logs, no health.
func (s *testServer) Test(ctx context.Context, req *hogwirev1.TestRequest) (*hogwirev1.TestResponse, error) {
	d, project, err := s.testTarget(ctx, req)
	if err != nil {
		return nil, err
	}
	prep, err := executor.Prepare(d)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "destination %s cannot run: %v", d.Name, err)
	}
	ev, err := s.testEvent(req.GetEvent(), d.GetFilters())
	if err != nil {
		return nil, err
	}
	// As capture stamps every event with its project.
	ev.Project, _ = resourcename.ParseProject(project.GetName())
	g := executor.NewEvent(ev, project, executor.Source{URL: s.cfg.SourceURL})

	var fetcher executor.Fetcher = executor.MockFetcher{}
	if req.GetFetchMode() == hogwirev1.FetchMode_FETCH_MODE_REAL {
		client := s.cfg.FetchClient
		if client == nil {
			client = fetch.New(fetch.Options{})
			defer client.CloseIdleConnections()
		}
		fetcher = client
	}
	res := prep.Invoke(ctx, g, executor.Options{Fetcher: fetcher, FetchPolicy: s.cfg.FetchPolicy,
		SkipFilters: req.GetSkipFilters(), Redact: true, Now: s.now})
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}

	out := &hogwirev1.TestResponse{
		Status:   invocationStatus(res.Status),
		Error:    res.Error,
		Event:    ev,
		Duration: durationpb.New(res.Duration),
	}
	if res.Status == executor.Filtered {
		out.FilterExplanation = explainFiltered(ctx, d.GetFilters(), ev, g)
	}
	if res.Status == executor.Succeeded {
		goValue := res.Value.ToGo()
		v, err := structpb.NewValue(goValue)
		if err != nil {
			// A value a protobuf Value cannot hold is still shown.
			v = structpb.NewStringValue(fmt.Sprint(goValue))
		}
		out.Result = redactValue(v, secretReplacer(d))
	}
	for _, e := range res.Logs {
		out.Logs = append(out.Logs, &hogwirev1.LogEntry{
			Time: timestamppb.New(e.Time), Level: e.Level, Message: e.Message,
			Destination: d.Name, EventUuid: ev.Uuid,
		})
	}
	for _, f := range res.Fetches {
		out.Requests = append(out.Requests, exchange(f))
	}
	return out, nil
}

// testTarget returns the destination to run, plaintext secrets included,
// and its project.
func (s *testServer) testTarget(ctx context.Context, req *hogwirev1.TestRequest) (*hogwirev1.Destination, *hogwirev1.Project, error) {
	var d *hogwirev1.Destination
	switch t := req.GetTarget().(type) {
	case *hogwirev1.TestRequest_Destination:
		project, id, err := resourcename.ParseDestination(t.Destination)
		if err != nil {
			return nil, nil, invalid("destination", "%v", err)
		}
		st, err := s.store.Destination(ctx, project, id)
		if err != nil {
			return nil, nil, err
		}
		d = st.D
		if err := s.store.Unseal(d); err != nil {
			return nil, nil, err
		}
	case *hogwirev1.TestRequest_Config:
		if t.Config == nil {
			return nil, nil, invalid("config", "is required")
		}
		d = proto.CloneOf(t.Config)
		if p, err := resourcename.ParseProject(d.Name); err == nil {
			d.Name = resourcename.Destination(p, unsavedID)
		} else if _, _, err := resourcename.ParseDestination(d.Name); err != nil || strings.HasPrefix(d.Name, "projects/-/") {
			return nil, nil, invalid("config.name", "must name the project to run in: projects/{project} or projects/{project}/destinations/{destination}")
		}
		// Validated and compiled exactly as CreateDestination does; the
		// violations name the request's field.
		var v violations
		s.dests.compileDestination(d, &v)
		s.dests.checkNotification(ctx, d, &v)
		for _, fv := range v {
			fv.Field = "config." + strings.TrimPrefix(fv.Field, "destination.")
		}
		if err := v.err(); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, invalid("target", "set destination (a saved destination's name) or config (an unsaved one)")
	}
	projectID, _, _ := resourcename.ParseDestination(d.Name)
	project, _, err := s.store.Project(ctx, projectID)
	if err != nil {
		return nil, nil, err
	}
	return d, project, nil
}

// testEvent returns the event to run on: a copy of ev with a uuid and a
// timestamp filled in when it has none, or a sample event that passes f.
func (s *testServer) testEvent(ev *hogwirev1.Event, f *hogwirev1.Filters) (*hogwirev1.Event, error) {
	if ev == nil {
		return sampleEventFor(f, s.now()), nil
	}
	ev = proto.CloneOf(ev)
	var v violations
	if ev.Event == "" {
		v.add("event.event", "is required")
	}
	if ev.DistinctId == "" {
		v.add("event.distinct_id", "is required")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if ev.Uuid == "" {
		ev.Uuid = newEventUUID()
	}
	if ev.Timestamp == nil {
		ev.Timestamp = timestamppb.New(s.now())
	}
	return ev, nil
}

// SampleEvent is the event a test runs on when the request gives none: a
// "$pageview" at now, as PostHog's web snippet captures it, by an
// identified person with an email and a name, so that templates reading
// the usual properties (event.properties.$current_url, person.properties.email,
// …) have something to show.
func SampleEvent(now time.Time) *hogwirev1.Event {
	props, _ := structpb.NewStruct(map[string]any{
		"$current_url":        "https://example.com/pricing?utm_source=newsletter",
		"$host":               "example.com",
		"$pathname":           "/pricing",
		"$referrer":           "https://www.google.com/",
		"$referring_domain":   "www.google.com",
		"$browser":            "Chrome",
		"$browser_version":    126,
		"$os":                 "Mac OS X",
		"$device_type":        "Desktop",
		"$screen_width":       1512,
		"$screen_height":      982,
		"$lib":                "web",
		"$lib_version":        "1.150.0",
		"$session_id":         "0190e4b2-5c2a-7a55-9d1e-3f0c8b1a2d44",
		"$ip":                 "203.0.113.7",
		"$geoip_country_code": "DE",
		"$geoip_city_name":    "Berlin",
		"utm_source":          "newsletter",
		"title":               "Pricing – Example",
	})
	person, _ := structpb.NewStruct(map[string]any{
		"email":      "max@example.com",
		"name":       "Max Mustermann",
		"first_name": "Max",
		"last_name":  "Mustermann",
		"plan":       "pro",
	})
	return &hogwirev1.Event{
		Uuid:       newEventUUID(),
		Event:      "$pageview",
		DistinctId: "sample-distinct-id",
		Properties: props,
		Timestamp:  timestamppb.New(now),
		Person:     &hogwirev1.Person{Id: "0190e4b2-0000-7000-8000-000000000001", Properties: person},
	}
}

// newEventUUID returns a UUIDv7, as capture gives events without one.
func newEventUUID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func invocationStatus(s executor.Status) hogwirev1.InvocationStatus {
	switch s {
	case executor.Succeeded:
		return hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED
	case executor.Filtered:
		return hogwirev1.InvocationStatus_INVOCATION_STATUS_FILTERED
	}
	// A failed filter or input is a failure of the run, with its error.
	return hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED
}

// secretReplacer replaces the configured values of d's secret inputs, for
// the program's return value, which Result.Redact leaves as it is. Nil
// when there are none.
func secretReplacer(d *hogwirev1.Destination) *strings.Replacer {
	var secrets []string
	var collect func(v *structpb.Value)
	collect = func(v *structpb.Value) {
		switch k := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			if k.StringValue != "" {
				secrets = append(secrets, k.StringValue)
			}
		case *structpb.Value_ListValue:
			for _, e := range k.ListValue.GetValues() {
				collect(e)
			}
		case *structpb.Value_StructValue:
			for _, e := range k.StructValue.GetFields() {
				collect(e)
			}
		}
	}
	for _, in := range d.GetInputs() {
		if in.GetSecretSet() {
			collect(in.GetValue())
		}
	}
	if len(secrets) == 0 {
		return nil
	}
	// Longest first, so that a secret containing another goes whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(secrets))
	for _, sec := range secrets {
		pairs = append(pairs, sec, executor.Redacted)
	}
	return strings.NewReplacer(pairs...)
}

// redactValue replaces secrets in every string of v, in place.
func redactValue(v *structpb.Value, rep *strings.Replacer) *structpb.Value {
	if rep == nil {
		return v
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		k.StringValue = rep.Replace(k.StringValue)
	case *structpb.Value_ListValue:
		for _, e := range k.ListValue.GetValues() {
			redactValue(e, rep)
		}
	case *structpb.Value_StructValue:
		for _, e := range k.StructValue.GetFields() {
			redactValue(e, rep)
		}
	}
	return v
}

// exchange is one fetch() call as the API shows it; f is already redacted.
func exchange(f executor.FetchRecord) *hogwirev1.HttpExchange {
	x := &hogwirev1.HttpExchange{Attempt: 1, Duration: durationpb.New(f.Duration)}
	if r := f.Request; r != nil {
		x.Method, x.Url, x.Headers, x.Body = r.Method, r.URL, firstValues(r.Header), string(r.Body)
	}
	if r := f.Response; r != nil {
		x.Status, x.ResponseHeaders, x.ResponseBody = int32(r.Status), firstValues(r.Header), string(r.Body)
		x.Attempt = int32(max(r.Attempts, 1))
	}
	if f.Err != nil {
		x.Error = f.Err.Error()
	}
	return x
}

// firstValues flattens headers to their first values, as PostHog shows them.
func firstValues(h http.Header) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}
