package controlplane_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
	"github.com/hogwire/hogwire/secrets"
)

// After a key rotation (new primary key, old key kept as an older one) the
// leader's re-seal rewrites secrets under the new key, after which the old
// key can be dropped.
func TestKeyRotationReseals(t *testing.T) {
	oldKey, _ := secrets.GenerateKey()
	newKey, _ := secrets.GenerateKey()
	before, err := secrets.ParseKeyring(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{sealer: before})
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")
	d := webhookDestination("hook")
	d.Inputs["api_key"] = &hogwirev1.InputValue{Value: structpb.NewStringValue("sk_rotate_me")}
	if _, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, DestinationId: "hook", Destination: d}); err != nil {
		t.Fatal(err)
	}
	r.stop()

	rotated, err := secrets.ParseKeyring(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	r2 := startReplica(t, []string{e.ClientURL()}, replicaOpts{sealer: rotated})
	n, err := r2.srv.ResealSecrets(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ResealSecrets = %d, %v; want 1 destination rewritten", n, err)
	}
	if n, _ := r2.srv.ResealSecrets(ctx); n != 0 {
		t.Errorf("a second pass rewrote %d destinations, want 0", n)
	}
	r2.stop()

	// Only the new key is left; the secret still reaches nodes.
	only, _ := secrets.ParseKeyring(newKey)
	r3 := startReplica(t, []string{e.ClientURL()}, replicaOpts{sealer: only})
	w := watch(t, r3, "node", 0)
	snap, err := w.stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Destinations[0].Inputs["api_key"].GetValue().GetStringValue(); got != "sk_rotate_me" {
		t.Errorf("after rotation the node got %q", got)
	}
	raw, _ := r3.etcd.Get(ctx, "/hogwire/config/destinations/shop/hook")
	if strings.Contains(string(raw.Kvs[0].Value), secrets.KeyID(mustKey(t, oldKey))) {
		t.Error("a value is still sealed with the old key")
	}
}

func mustKey(t *testing.T, b64 string) []byte {
	k, err := secrets.ParseKey(b64)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
