package main

import (
	"context"
	"fmt"
	"io"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/rpcclient"
)

// benchDestination is a destination of typical size: a dozen lines of
// code, a few inputs (one secret) and an event filter.
func benchDestination(i int) *hogwirev1.Destination {
	return &hogwirev1.Destination{
		DisplayName: fmt.Sprintf("Hook %d", i), Enabled: true,
		Hog: "let res := fetch(inputs.url, {'method': 'POST', 'body': inputs.body})\nif (res.status >= 400) {\n  throw Error('failed')\n}\n",
		InputsSchema: []*hogwirev1.InputSchema{
			{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Required: true},
			{Key: "body", Type: hogwirev1.InputType_INPUT_TYPE_JSON},
			{Key: "api_key", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true},
		},
		Inputs: map[string]*hogwirev1.InputValue{
			"url":     {Value: structpb.NewStringValue("https://example.invalid/hook")},
			"body":    {Value: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"event": structpb.NewStringValue("{event}")}})},
			"api_key": {Value: structpb.NewStringValue("sk_live_x")},
		},
		Filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview"}}},
	}
}

// BenchmarkDestinationsList is one whole "hogwire destinations list"
// invocation (dial, token file, paged list, table) against the dev stack
// with 100 destinations.
func BenchmarkDestinationsList(b *testing.B) {
	s := startAdminStack(b)
	cc, err := rpcclient.Dial(s.server, rpcclient.Options{Token: s.token})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()
	if _, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"}}); err != nil {
		b.Fatal(err)
	}
	dc := hogwirev1.NewDestinationServiceClient(cc)
	for i := range 100 {
		if _, err := dc.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", Destination: benchDestination(i)}); err != nil {
			b.Fatal(err)
		}
	}
	for _, format := range []string{"table", "json"} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				err := run(ctx, []string{"destinations", "list", "--project", "shop", "-o", format, "--server", s.server, "--data-dir", s.dataDir}, io.Discard, io.Discard)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteDestination is the readable view of "destinations get".
func BenchmarkWriteDestination(b *testing.B) {
	d := benchDestination(1)
	d.Name = "projects/shop/destinations/hook"
	d.Inputs["api_key"] = &hogwirev1.InputValue{SecretSet: true}
	for b.Loop() {
		if err := writeDestination(io.Discard, d); err != nil {
			b.Fatal(err)
		}
	}
}
