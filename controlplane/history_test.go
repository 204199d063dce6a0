package controlplane_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
)

func TestDestinationRevisions(t *testing.T) {
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(t)
	mustProject(t, r, "shop")
	dc := r.destinations()

	const secret = "sk_live_do_not_leak"
	d := webhookDestination("Hook")
	d.Inputs["api_key"] = &hogwirev1.InputValue{Value: strValue(secret)}
	created, err := dc.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: "hook", Destination: d})
	if err != nil {
		t.Fatal(err)
	}
	name := created.Destination.Name
	update := func(mask []string, edit func(*hogwirev1.Destination)) *hogwirev1.Destination {
		t.Helper()
		in := &hogwirev1.Destination{Name: name}
		edit(in)
		resp, err := dc.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{Destination: in, UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Destination
	}
	v2 := update([]string{"hog"}, func(d *hogwirev1.Destination) { d.Hog = webhookHog + "\nprint('sent')" })
	v3 := update([]string{"inputs.api_key", "display_name"}, func(d *hogwirev1.Destination) {
		d.Inputs = map[string]*hogwirev1.InputValue{"api_key": {Value: strValue(secret + "2")}}
		d.DisplayName = "Hook 2"
	})
	dis, err := dc.DisableDestination(ctx, &hogwirev1.DisableDestinationRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	// Disabling again changes nothing and adds no revision.
	if _, err := dc.DisableDestination(ctx, &hogwirev1.DisableDestinationRequest{Name: name}); err != nil {
		t.Fatal(err)
	}

	resp, err := dc.ListDestinationRevisions(ctx, &hogwirev1.ListDestinationRevisionsRequest{Parent: name})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		rev     int64
		changed []string
	}{
		{dis.Destination.Revision, []string{"enabled"}},
		{v3.Revision, []string{"display_name", "inputs.api_key"}},
		{v2.Revision, []string{"hog"}},
		{created.Destination.Revision, nil},
	}
	if len(resp.Revisions) != len(want) {
		t.Fatalf("got %d revisions, want %d: %v", len(resp.Revisions), len(want), resp.Revisions)
	}
	for i, w := range want {
		got := resp.Revisions[i]
		if got.Revision != w.rev || !slices.Equal(got.ChangedFields, w.changed) {
			t.Errorf("revision %d: revision %d changed %v, want %d changed %v", i, got.Revision, got.ChangedFields, w.rev, w.changed)
		}
		if wantName := name + "/revisions/" + strconv.FormatInt(w.rev, 10); got.Name != wantName {
			t.Errorf("revision %d: name %q, want %q", i, got.Name, wantName)
		}
		if got.CreateTime == nil || got.Destination.GetName() != name {
			t.Errorf("revision %d: create_time %v, destination name %q", i, got.CreateTime, got.Destination.GetName())
		}
		key := got.Destination.GetInputs()["api_key"]
		if !key.GetSecretSet() || key.GetValue() != nil {
			t.Errorf("revision %d: api_key %v, want secret_set and no value", i, key)
		}
		if len(got.Destination.GetBytecode()) != 0 {
			t.Errorf("revision %d keeps bytecode", i)
		}
	}
	if got := resp.Revisions[2].Destination.Hog; !strings.Contains(got, "print('sent')") {
		t.Errorf("revision of the hog change has hog %q", got)
	}
	if got := resp.Revisions[3].Destination.Hog; got != webhookHog {
		t.Errorf("first revision has hog %q", got)
	}
	if got := resp.Revisions[1].Destination.DisplayName; got != "Hook 2" {
		t.Errorf("display name at the third revision = %q", got)
	}

	// Nothing stored in the history holds a secret, sealed or not.
	raw, err := r.etcd.Get(ctx, "/hogwire/history/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.Kvs) != len(want) {
		t.Errorf("%d history keys, want %d", len(raw.Kvs), len(want))
	}
	for _, kv := range raw.Kvs {
		if strings.Contains(string(kv.Value), "sk_live") || strings.Contains(string(kv.Value), "test:") {
			t.Errorf("history record %s holds a secret", kv.Key)
		}
		if strings.HasPrefix(string(kv.Key), "/hogwire/config/") {
			t.Errorf("history key %s is under config/, which nodes watch", kv.Key)
		}
	}

	// Pages, and the project wildcard.
	var paged []int64
	tok := ""
	for {
		page, err := dc.ListDestinationRevisions(ctx, &hogwirev1.ListDestinationRevisionsRequest{Parent: "projects/-/destinations/hook", PageSize: 3, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, rv := range page.Revisions {
			paged = append(paged, rv.Revision)
		}
		if tok = page.NextPageToken; tok == "" {
			break
		}
	}
	if len(paged) != len(want) || paged[0] != want[0].rev || paged[len(paged)-1] != want[len(want)-1].rev {
		t.Errorf("paged revisions %v", paged)
	}

	if _, err := dc.ListDestinationRevisions(ctx, &hogwirev1.ListDestinationRevisionsRequest{Parent: "projects/shop/destinations/nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown destination: %v, want NOT_FOUND", err)
	}
	if fields := badRequest(t, func() error {
		_, err := dc.ListDestinationRevisions(ctx, &hogwirev1.ListDestinationRevisionsRequest{Parent: "shop/hook"})
		return err
	}()); fields["parent"] == "" {
		t.Errorf("bad parent: %v", fields)
	}
	if fields := badRequest(t, func() error {
		_, err := dc.ListDestinationRevisions(ctx, &hogwirev1.ListDestinationRevisionsRequest{Parent: name, PageToken: "garbage"})
		return err
	}()); fields["page_token"] == "" {
		t.Errorf("bad page token: %v", fields)
	}

	// Deleting the destination deletes its history; a new one of the same
	// id starts afresh.
	if _, err := dc.DeleteDestination(ctx, &hogwirev1.DeleteDestinationRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	if left, err := r.etcd.Get(ctx, "/hogwire/history/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || left.Count != 0 {
		t.Errorf("after delete: %d history keys (%v)", left.Count, err)
	}
	again, err := dc.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: "hook", Destination: webhookDestination("Again")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = dc.ListDestinationRevisions(ctx, &hogwirev1.ListDestinationRevisionsRequest{Parent: name})
	if err != nil || len(resp.Revisions) != 1 || resp.Revisions[0].Revision != again.Destination.Revision {
		t.Errorf("after re-create: %v, %v", resp.GetRevisions(), err)
	}
}

func TestDestinationRevisionsAreBounded(t *testing.T) {
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(t)
	mustProject(t, r, "shop")
	dc := r.destinations()
	created, err := dc.CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: "projects/shop", DestinationId: "hook", Destination: webhookDestination("Hook")})
	if err != nil {
		t.Fatal(err)
	}
	const writes = 105 // past the bound of 100
	var last int64
	for i := range writes {
		var d *hogwirev1.Destination
		if i%2 == 0 {
			resp, err := dc.DisableDestination(ctx, &hogwirev1.DisableDestinationRequest{Name: created.Destination.Name})
			if err != nil {
				t.Fatal(err)
			}
			d = resp.Destination
		} else {
			resp, err := dc.EnableDestination(ctx, &hogwirev1.EnableDestinationRequest{Name: created.Destination.Name})
			if err != nil {
				t.Fatal(err)
			}
			d = resp.Destination
		}
		last = d.Revision
	}
	var all []*hogwirev1.DestinationRevision
	tok := ""
	for {
		page, err := dc.ListDestinationRevisions(ctx, &hogwirev1.ListDestinationRevisionsRequest{Parent: created.Destination.Name, PageSize: 40, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Revisions...)
		if tok = page.NextPageToken; tok == "" {
			break
		}
	}
	if len(all) != 100 {
		t.Fatalf("%d revisions kept, want 100", len(all))
	}
	if all[0].Revision != last {
		t.Errorf("newest kept is %d, want %d", all[0].Revision, last)
	}
	for _, rv := range all {
		if len(rv.ChangedFields) == 0 {
			t.Errorf("the creation (revision %d) is kept although %d writes came after it", rv.Revision, writes)
		}
	}
	for i := 1; i < len(all); i++ {
		if all[i].Revision >= all[i-1].Revision {
			t.Fatalf("not newest first at %d: %d then %d", i, all[i-1].Revision, all[i].Revision)
		}
	}
}
