package controlplane_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
)

// A destination created from a template that delivers in batches takes
// the template's batch where it sets none of its own; the API refuses a
// batch past the template's or the server's caps, and clearing the batch
// of code that reads events.
func TestBatchDeliveryFromTemplate(t *testing.T) {
	e := etcdtest.Start(t)
	tpl := &hogwirev1.Template{
		Name: "templates/bulk", DisplayName: "Bulk", Description: "posts batches",
		Hog:          `fetch(inputs.url, {'body': events})`,
		InputsSchema: []*hogwirev1.InputSchema{{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Required: true}},
		Batch: &hogwirev1.TemplateBatch{
			Defaults:  &hogwirev1.BatchDelivery{MaxEvents: 50, MaxWait: durationpb.New(2 * time.Second)},
			MaxEvents: 75,
		},
	}
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{templates: templates{"bulk": tpl}})
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")
	create := func(b *hogwirev1.BatchDelivery) (*hogwirev1.Destination, error) {
		resp, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
			Parent: p.Name, FromTemplate: "templates/bulk",
			Destination: &hogwirev1.Destination{Batch: b, Inputs: map[string]*hogwirev1.InputValue{"url": {Value: strValue("https://example.invalid")}}},
		})
		return resp.GetDestination(), err
	}

	d, err := create(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := d.GetBatch(); b.GetMaxEvents() != 50 || b.GetMaxWait().AsDuration() != 2*time.Second {
		t.Errorf("batch %v: want the template's", b)
	}
	d, err = create(&hogwirev1.BatchDelivery{MaxBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if b := d.GetBatch(); b.GetMaxEvents() != 50 || b.GetMaxBytes() != 4096 || b.GetMaxWait().AsDuration() != 2*time.Second {
		t.Errorf("batch %v: want max_bytes given, the rest from the template", b)
	}

	_, err = create(&hogwirev1.BatchDelivery{MaxEvents: 76, MaxBytes: 32 << 20, MaxWait: durationpb.New(2 * time.Minute)})
	fields := badRequest(t, err)
	for _, f := range []string{"destination.batch.max_events", "destination.batch.max_bytes", "destination.batch.max_wait"} {
		if fields[f] == "" {
			t.Errorf("no violation for %s in %v", f, fields)
		}
	}

	// Clearing the batch of the template's code is refused; changing it
	// within the caps is not.
	_, err = r.destinations().UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
		Destination: &hogwirev1.Destination{Name: d.Name}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"batch"}},
	})
	if fields := badRequest(t, err); fields["destination.batch"] == "" {
		t.Errorf("clearing the batch: %v", fields)
	}
	up, err := r.destinations().UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
		Destination: &hogwirev1.Destination{Name: d.Name, Batch: &hogwirev1.BatchDelivery{MaxEvents: 75}},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"batch"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.GetDestination().GetBatch().GetMaxEvents() != 75 {
		t.Errorf("batch after update: %v", up.GetDestination().GetBatch())
	}

	// Code of its own (no template) may deliver in batches within the
	// server's caps.
	own := webhookDestination("own")
	own.Batch = &hogwirev1.BatchDelivery{MaxEvents: 1000}
	if _, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: own}); err != nil {
		t.Errorf("a batch of 1000 without a template: %v", err)
	}
	own.Batch = &hogwirev1.BatchDelivery{MaxEvents: 1001}
	_, err = r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: own})
	if fields := badRequest(t, err); fields["destination.batch.max_events"] == "" {
		t.Errorf("a batch of 1001: %v", fields)
	}
}
