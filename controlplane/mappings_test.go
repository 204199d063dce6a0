package controlplane_test

import (
	"testing"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
)

// Mappings are validated as inputs are, each problem named by its field
// under destination.mappings[i]; valid ones are compiled and stored.
func TestMappingsValidation(t *testing.T) {
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(t)
	mustProject(t, r, "shop")

	d := webhookDestination("ads")
	d.Mappings = []*hogwirev1.Mapping{
		{Name: "Purchase", Filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "purchase"}}},
			Inputs: map[string]*hogwirev1.InputValue{"url": {Value: strValue("https://example.invalid/{event.event}")}}},
		{Name: "Purchase", Filters: &hogwirev1.Filters{Expression: "properties.x ="}},
		{Name: "", Inputs: map[string]*hogwirev1.InputValue{"nope": {Value: strValue("x")}, "api_key": {Value: strValue("k")}}},
		{Name: "Own", InputsSchema: []*hogwirev1.InputSchema{{Key: "value", Type: hogwirev1.InputType_INPUT_TYPE_NUMBER, Required: true}}},
	}
	_, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", Destination: d})
	got := badRequest(t, err)
	for _, f := range []string{
		"destination.mappings[1].name",
		"destination.mappings[1].filters.expression",
		"destination.mappings[2].name",
		"destination.mappings[2].inputs.nope",
		"destination.mappings[2].inputs.api_key",
		"destination.mappings[3].inputs.value",
	} {
		if _, ok := got[f]; !ok {
			t.Errorf("no violation for %s; got %v", f, got)
		}
	}
	if _, ok := got["destination.mappings[0].inputs.url"]; ok {
		t.Errorf("a valid override was refused: %v", got)
	}

	d.Mappings = d.Mappings[:1]
	resp, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", Destination: d})
	if err != nil {
		t.Fatal(err)
	}
	m := resp.Destination.GetMappings()
	if len(m) != 1 || len(m[0].GetFilters().GetBytecode()) == 0 || m[0].GetInputs()["url"].GetBytecodeJson() == "" {
		t.Fatalf("the mapping was not compiled: %v", m)
	}
}

// A destination created from a template starts with the template's
// mappings included by default, not the others; mappings given in the
// request win.
func TestTemplateDefaultMappings(t *testing.T) {
	e := etcdtest.Start(t)
	tpl := &hogwirev1.Template{Name: "templates/ads", DisplayName: "Ads", Hog: webhookHog,
		InputsSchema: webhookDestination("x").InputsSchema,
		MappingTemplates: []*hogwirev1.MappingTemplate{
			{Name: "Page view", IncludeByDefault: true, Filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview"}}},
				InputsSchema: []*hogwirev1.InputSchema{{Key: "kind", Type: hogwirev1.InputType_INPUT_TYPE_STRING, DefaultJson: `"page"`}}},
			{Name: "Refund", Filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "refund"}}}},
		}}
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{templates: templates{"ads": tpl}})
	ctx := ctxT(t)
	mustProject(t, r, "shop")
	d := &hogwirev1.Destination{Inputs: map[string]*hogwirev1.InputValue{"url": {Value: strValue("https://example.invalid/hook")}}}
	resp, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", FromTemplate: "ads", Destination: d})
	if err != nil {
		t.Fatal(err)
	}
	m := resp.Destination.GetMappings()
	if len(m) != 1 || m[0].Name != "Page view" || m[0].GetInputs()["kind"].GetValue().GetStringValue() != "page" {
		t.Fatalf("mappings %v, want the default Page view with kind=page", m)
	}
	d.Mappings = []*hogwirev1.Mapping{{Name: "Mine"}}
	resp, err = r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", FromTemplate: "ads", Destination: d})
	if err != nil {
		t.Fatal(err)
	}
	if m := resp.Destination.GetMappings(); len(m) != 1 || m[0].Name != "Mine" {
		t.Fatalf("mappings %v, want the request's", m)
	}
}
