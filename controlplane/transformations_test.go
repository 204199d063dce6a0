package controlplane_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
	tpls "github.com/hogwire/hogwire/templates"
)

func TestTransformationValidation(t *testing.T) {
	r := catalogueReplica(t)
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")
	ds := r.destinations()
	var err error
	const kt = hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION

	// Transformation code is compiled as such: fetch is not available,
	// geoipLookup is.
	_, err = ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: &hogwirev1.Destination{
		DisplayName: "fetches", Kind: kt, Hog: "fetch('https://example.com')\nreturn event",
		Batch: &hogwirev1.BatchDelivery{MaxEvents: 10}, Order: -1,
		Limits: &hogwirev1.ExecutionLimits{MaxFetches: 2, Timeout: durationpb.New(5e9)},
	}})
	fields := badRequest(t, err)
	for _, f := range []string{"destination.hog", "destination.batch", "destination.order", "destination.limits.max_fetches", "destination.limits.timeout"} {
		if fields[f] == "" {
			t.Errorf("no violation for %s in %v", f, fields)
		}
	}

	// A destination has no order.
	d := webhookDestination("hook")
	d.Order = 3
	_, err = ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: d})
	if f := badRequest(t, err)["destination.order"]; !strings.Contains(f, "transformations only") {
		t.Errorf("order on a destination: %q", f)
	}

	// A template's kind comes with it; asking for another is refused.
	resp, err := ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, FromTemplate: "templates/geoip", DestinationId: "geo",
		Destination: &hogwirev1.Destination{Enabled: true, Order: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Destination.Kind != kt || resp.Destination.Order != 5 {
		t.Errorf("from the geoip template: kind %v order %d", resp.Destination.Kind, resp.Destination.Order)
	}
	_, err = ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, FromTemplate: "templates/webhook",
		Destination: &hogwirev1.Destination{Kind: kt}})
	if f := badRequest(t, err)["destination.kind"]; f == "" {
		t.Error("a transformation from the webhook template was not refused")
	}

	// Order can change; kind cannot.
	up, err := ds.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{Destination: &hogwirev1.Destination{Name: resp.Destination.Name, Order: 7},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"order"}}})
	if err != nil || up.Destination.Order != 7 {
		t.Fatalf("updating order: %v %v", up, err)
	}
	if _, err = ds.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{Destination: &hogwirev1.Destination{Name: resp.Destination.Name},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"kind"}}}); err == nil {
		t.Error("changing kind was accepted")
	}

	// Listing by kind.
	if _, err := ds.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: webhookDestination("hook")}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[hogwirev1.FunctionKind]int{kt: 1, hogwirev1.FunctionKind_FUNCTION_KIND_DESTINATION: 1, 0: 2} {
		l, err := ds.ListDestinations(ctx, &hogwirev1.ListDestinationsRequest{Parent: p.Name, Kind: k})
		if err != nil || len(l.Destinations) != want {
			t.Errorf("list kind %v: %d destinations (%v), want %d", k, len(l.GetDestinations()), err, want)
		}
	}

	// Templates by kind: the catalogue's transformation templates only, and
	// nothing of the other kind.
	tl, err := hogwirev1.NewTemplateServiceClient(r.cc).ListTemplates(ctx, &hogwirev1.ListTemplatesRequest{PageSize: 1000, Kind: kt})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range tl.Templates {
		if tp.Kind != kt {
			t.Errorf("template %s of kind %v listed for %v", tp.Name, tp.Kind, kt)
		}
		names = append(names, tp.Name)
	}
	if !slices.Contains(names, "templates/geoip") || slices.Contains(names, "templates/webhook") {
		t.Errorf("transformation templates: %v", names)
	}
}

// catalogueReplica starts a control plane with the shipped template
// catalogue on a real embedded etcd.
func catalogueReplica(t *testing.T) *replica {
	t.Helper()
	e := etcdtest.Start(t)
	cat, err := tpls.Load()
	if err != nil {
		t.Fatal(err)
	}
	return startReplica(t, []string{e.ClientURL()}, replicaOpts{templates: cat})
}
