package store_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
	"github.com/hogwire/hogwire/secrets"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	c := etcdtest.Client(t)
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.ParseKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return store.New(c, "/test/", kr)
}

func TestCompareAndSwap(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	key := s.Keys.Project("p")
	rev, err := s.Put(ctx, key, 0, &hogwirev1.Project{DisplayName: "one"})
	if err != nil {
		t.Fatal(err)
	}
	p, got, err := s.Project(ctx, "p")
	if err != nil || got != rev || p.Etag != store.Etag(rev) || p.DisplayName != "one" {
		t.Fatalf("Project = %v, %d, %v; want the write at %d", p, got, err, rev)
	}
	// A write on a stale revision loses, and Retry gives up with ABORTED
	// when it keeps losing.
	if _, err := s.Put(ctx, key, rev-1, &hogwirev1.Project{DisplayName: "stale"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale Put: %v, want ErrConflict", err)
	}
	calls := 0
	err = s.Retry(ctx, func() error { calls++; return store.ErrConflict })
	if status.Code(err) != codes.Aborted || calls < 2 {
		t.Fatalf("Retry: %v after %d calls, want ABORTED after retrying", err, calls)
	}
	if err := store.CheckEtag(store.Etag(rev-1), rev); status.Code(err) != codes.Aborted {
		t.Fatalf("CheckEtag(stale) = %v, want ABORTED", err)
	}
	if _, _, err := s.Project(ctx, "missing"); status.Code(err) != codes.NotFound {
		t.Fatalf("Project(missing) = %v, want NOT_FOUND", err)
	}
}

func TestSealBindsSecretsToTheirPlace(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	d := &hogwirev1.Destination{Name: "projects/p/destinations/d", Inputs: map[string]*hogwirev1.InputValue{
		"api_key": {SecretSet: true, Value: structpb.NewStringValue("sk-live-123")},
		"url":     {Value: structpb.NewStringValue("https://example.com")},
	}}
	val, err := s.Seal(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Etcd.Put(ctx, s.Keys.Destination("p", "d"), string(val)); err != nil {
		t.Fatal(err)
	}
	st, err := s.Destination(ctx, "-", "d") // found across projects
	if err != nil {
		t.Fatal(err)
	}
	if got := st.D.Inputs["api_key"].GetValue().GetStringValue(); got == "sk-live-123" || got == "" {
		t.Fatalf("stored secret is %q, want it sealed", got)
	}
	if err := s.Unseal(st.D); err != nil {
		t.Fatal(err)
	}
	if got := st.D.Inputs["api_key"].GetValue().GetStringValue(); got != "sk-live-123" {
		t.Fatalf("unsealed secret = %q", got)
	}
	// The same sealed value under another destination's name does not open.
	moved, err := s.Destination(ctx, "p", "d")
	if err != nil {
		t.Fatal(err)
	}
	moved.D.Name = "projects/p/destinations/other"
	if err := s.Unseal(moved.D); status.Code(err) != codes.DataLoss {
		t.Fatalf("Unseal of a moved secret = %v, want DATA_LOSS", err)
	}
	if h, err := s.Health(ctx, "p", "d"); h != nil || err != nil {
		t.Fatalf("Health with none stored = %v, %v", h, err)
	}
}

func TestPageTokens(t *testing.T) {
	tok := store.EncodePageToken("projects", "shop")
	if after, ok := store.DecodePageToken("projects", tok); !ok || after != "shop" {
		t.Fatalf("DecodePageToken = %q, %v", after, ok)
	}
	if _, ok := store.DecodePageToken("destinations", tok); ok {
		t.Fatal("a token of one list was accepted by another")
	}
	if _, ok := store.DecodePageToken("projects", "not base64!"); ok {
		t.Fatal("a malformed token was accepted")
	}
	for n, want := range map[int32]int{0: store.DefaultPageSize, -1: store.DefaultPageSize, 7: 7, 1 << 20: store.MaxPageSize} {
		if got := store.PageSize(n); got != want {
			t.Errorf("PageSize(%d) = %d, want %d", n, got, want)
		}
	}
}
