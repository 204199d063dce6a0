package controlplane_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// Source webhooks are validated as such: their code compiles with the
// request global and without fetch; the fields of delivery, filters and
// order are refused; templates bring their kind and required secret.
func TestSourceWebhookValidation(t *testing.T) {
	r := catalogueReplica(t)
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")
	ds := r.destinations()
	var err error
	const kw = hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK

	_, err = ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: &hogwirev1.Destination{
		DisplayName: "bad", Kind: kw, Hog: "fetch('https://example.com')",
		Batch: &hogwirev1.BatchDelivery{MaxEvents: 10}, Order: 2,
		Filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview"}}},
		Limits:  &hogwirev1.ExecutionLimits{MaxFetches: 2, Timeout: durationpb.New(10e9)},
	}})
	fields := badRequest(t, err)
	for _, f := range []string{"destination.hog", "destination.batch", "destination.order", "destination.filters",
		"destination.limits.max_fetches", "destination.limits.timeout"} {
		if fields[f] == "" {
			t.Errorf("no violation for %s in %v", f, fields)
		}
	}

	// The Stripe template needs its signing secret.
	_, err = ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, FromTemplate: "templates/stripe-webhook",
		Destination: &hogwirev1.Destination{Enabled: true}})
	if f := badRequest(t, err); !strings.Contains(strings.Join(keys(f), " "), "signing_secret") {
		t.Errorf("stripe-webhook without its secret: %v", f)
	}

	resp, err := ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, FromTemplate: "templates/github-webhook",
		DestinationId: "gh", Destination: &hogwirev1.Destination{Enabled: true,
			Inputs: map[string]*hogwirev1.InputValue{"secret": {Value: structpb.NewStringValue("s3cret")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Destination.Kind != kw {
		t.Errorf("from github-webhook: kind %v", resp.Destination.Kind)
	}
	// A source webhook's code reads request: it compiles without filters.
	if _, err = ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, DestinationId: "own", Destination: &hogwirev1.Destination{
		DisplayName: "own", Kind: kw, Hog: "postHogCapture({'event': request.body.event, 'distinct_id': request.query.user})",
	}}); err != nil {
		t.Errorf("a valid source webhook: %v", err)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+": "+v)
	}
	return out
}
