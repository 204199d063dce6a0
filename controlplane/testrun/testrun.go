// Package testrun runs a destination once, as TestService does: with the
// data plane's execution code (executor.Prepare, executor.NewEvent,
// Invoke), on a given or a sample event, with mocked or real fetches, and
// reports everything the run did with secrets redacted. It writes nothing:
// no metrics, no logs, no health.
package testrun

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
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/fetch"
	"github.com/hogwire/hogwire/resourcename"
)

// Config configures a Runner.
type Config struct {
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

// Runner runs tests.
type Runner struct {
	cfg Config
	now func() time.Time
}

// New returns a runner; now is the clock of the runs (nil: time.Now).
func New(cfg Config, now func() time.Time) *Runner {
	if now == nil {
		now = time.Now
	}
	return &Runner{cfg: cfg, now: now}
}

// Request is one run.
type Request struct {
	// Destination is validated and compiled, its secret inputs in
	// plaintext.
	Destination *hogwirev1.Destination
	// Project is the destination's project.
	Project *hogwirev1.Project
	// Event is the event to run on, valid (an event name and a distinct
	// id); nil runs on a sample event made to pass the filters.
	Event *hogwirev1.Event
	// RealFetch sends the requests (with Config's client and policy)
	// rather than answering each with a mocked 200.
	RealFetch   bool
	SkipFilters bool
	// Mapping, for a destination with mappings, runs that mapping only;
	// empty runs every enabled mapping whose filters match.
	Mapping string
}

// Run runs req.Destination once and reports what it did.
func (r *Runner) Run(ctx context.Context, req Request) (*hogwirev1.TestResponse, error) {
	d := req.Destination
	if executor.IsSourceWebhook(d) {
		// Its code runs on an HTTP request, which a test event is not.
		return nil, status.Errorf(codes.FailedPrecondition,
			"%s is a source webhook: test it by sending a request to its URL (hogwire webhooks test)", d.Name)
	}
	prep, err := executor.Prepare(d)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "destination %s cannot run: %v", d.Name, err)
	}
	ev := r.event(req.Event, sampleFilters(d, req.Mapping))
	// As capture stamps every event with its project.
	ev.Project, _ = resourcename.ParseProject(req.Project.GetName())
	g := executor.NewEvent(ev, req.Project, executor.Source{URL: r.cfg.SourceURL})

	var fetcher executor.Fetcher = executor.MockFetcher{}
	if req.RealFetch {
		client := r.cfg.FetchClient
		if client == nil {
			client = fetch.New(fetch.Options{})
			defer client.CloseIdleConnections()
		}
		fetcher = client
	}
	opts := executor.Options{Fetcher: fetcher, FetchPolicy: r.cfg.FetchPolicy,
		SkipFilters: req.SkipFilters, Redact: true, Now: r.now}
	if !prep.HasMappings() {
		return r.report(ctx, d, ev, g, prep.Invoke(ctx, g, opts))
	}
	names, err := r.mappingsToRun(prep, req, g)
	if err != nil {
		return nil, err
	}
	var runs []*hogwirev1.TestResponse
	for _, name := range names {
		opts.Mapping = name
		run, err := r.report(ctx, d, ev, g, prep.Invoke(ctx, g, opts))
		if err != nil {
			return nil, err
		}
		run.Mapping = name
		runs = append(runs, run)
	}
	if len(runs) == 0 {
		out := &hogwirev1.TestResponse{Status: hogwirev1.InvocationStatus_INVOCATION_STATUS_FILTERED, Event: ev,
			FilterExplanation: "mappings: no enabled mapping's filters match the event"}
		if ok, ferr := prep.Match(g); ferr == nil && !ok && !req.SkipFilters {
			out.FilterExplanation = explainFiltered(ctx, d.GetFilters(), ev, g)
		}
		return out, nil
	}
	out := proto.CloneOf(runs[0])
	out.MappingRuns = runs
	return out, nil
}

// sampleFilters are the filters a sample event is made to pass: the
// destination's, and for a destination with mappings those of the mapping
// named (or of its first enabled one).
func sampleFilters(d *hogwirev1.Destination, mapping string) *hogwirev1.Filters {
	for _, m := range d.GetMappings() {
		if m.GetDisabled() || (mapping != "" && m.GetName() != mapping) {
			continue
		}
		f := proto.CloneOf(d.GetFilters())
		if f == nil {
			f = &hogwirev1.Filters{}
		}
		if len(f.Events) == 0 {
			f.Events = m.GetFilters().GetEvents()
		}
		f.Properties = append(f.Properties, m.GetFilters().GetProperties()...)
		return f
	}
	return d.GetFilters()
}

// mappingsToRun returns the mappings a test of a destination with
// mappings runs: the one named, or every enabled one whose filters match
// (all of them with SkipFilters), none when the destination's filters do
// not match.
func (r *Runner) mappingsToRun(prep *executor.Destination, req Request, g *executor.Globals) ([]string, error) {
	if req.Mapping != "" {
		if !slices.Contains(prep.MappingNames(), req.Mapping) {
			return nil, status.Errorf(codes.InvalidArgument, "mapping: %q is not an enabled mapping of the destination (its mappings: %q)", req.Mapping, prep.MappingNames())
		}
		return []string{req.Mapping}, nil
	}
	if req.SkipFilters {
		return prep.MappingNames(), nil
	}
	first := prep.MappingNames()[:min(1, len(prep.MappingNames()))]
	ok, err := prep.Match(g)
	switch {
	case err != nil:
		return first, nil // its run reports the filters' error
	case !ok:
		return nil, nil
	}
	names, err := prep.MatchMappings(nil, g)
	if err != nil {
		return first, nil
	}
	return names, nil
}

// report turns one run's result into the response.
func (r *Runner) report(ctx context.Context, d *hogwirev1.Destination, ev *hogwirev1.Event, g *executor.Globals, res *executor.Result) (*hogwirev1.TestResponse, error) {
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

// event returns the event to run on: a copy of ev with a uuid and a
// timestamp filled in when it has none, or a sample event that passes f.
func (r *Runner) event(ev *hogwirev1.Event, f *hogwirev1.Filters) *hogwirev1.Event {
	if ev == nil {
		return sampleEventFor(f, r.now())
	}
	ev = proto.CloneOf(ev)
	if ev.Uuid == "" {
		ev.Uuid = newEventUUID()
	}
	if ev.Timestamp == nil {
		ev.Timestamp = timestamppb.New(r.now())
	}
	return ev
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
