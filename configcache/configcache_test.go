package configcache_test

import (
	"testing"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/configcache"
)

func project(id, token string) *hogwirev1.Project {
	return &hogwirev1.Project{Name: "projects/" + id, CaptureToken: token}
}

func dest(project, id string, rev int64) *hogwirev1.Destination {
	return &hogwirev1.Destination{Name: "projects/" + project + "/destinations/" + id, Revision: rev}
}

func TestApply(t *testing.T) {
	s := configcache.New(5, []*hogwirev1.Project{project("a", "phc_a"), project("b", "phc_b")},
		[]*hogwirev1.Destination{dest("a", "x", 3), dest("b", "y", 4)})
	if s.Tokens["phc_b"] != "b" || len(s.Destinations) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
	next := s.Apply(&hogwirev1.WatchResponse{Revision: 6, Deleted: []string{"projects/b"}},
		&hogwirev1.WatchResponse{Revision: 7, Destinations: []*hogwirev1.Destination{dest("a", "z", 7)}})
	if next.Revision != 7 || len(next.Projects) != 1 || next.Destinations["projects/b/destinations/y"] != nil || next.Destinations["projects/a/destinations/z"] == nil {
		t.Errorf("after deleting b and adding z: %+v", next)
	}
	if len(s.Destinations) != 2 || s.Revision != 5 {
		t.Error("Apply changed the snapshot it was applied to")
	}
	if again := next.Apply(&hogwirev1.WatchResponse{Revision: 9, Snapshot: true, Projects: []*hogwirev1.Project{project("c", "phc_c")}}); len(again.Destinations) != 0 || again.Tokens["phc_c"] != "c" {
		t.Errorf("a snapshot response replaces everything: %+v", again)
	}
}

func TestCacheSince(t *testing.T) {
	c := configcache.NewCache(2)
	if ch, snap, _ := c.Since(0); ch != nil || snap != nil {
		t.Fatal("an empty cache sent something")
	}
	c.Set(configcache.New(10, []*hogwirev1.Project{project("a", "phc_a")}, nil))
	if _, snap, _ := c.Since(0); snap == nil || snap.Revision != 10 {
		t.Fatalf("a new watcher gets the snapshot, got %v", snap)
	}
	_, _, changed := c.Since(10)
	c.Update(&hogwirev1.WatchResponse{Revision: 11, Destinations: []*hogwirev1.Destination{dest("a", "x", 11)}})
	select {
	case <-changed:
	default:
		t.Fatal("watchers were not woken")
	}
	c.Update(&hogwirev1.WatchResponse{Revision: 12, Destinations: []*hogwirev1.Destination{dest("a", "y", 12)}})
	if ch, snap, _ := c.Since(10); snap != nil || len(ch) != 2 || ch[0].Revision != 11 {
		t.Errorf("from 10: %v %v", ch, snap)
	}
	if ch, snap, _ := c.Since(12); snap != nil || len(ch) != 0 {
		t.Errorf("an up-to-date watcher got %v %v", ch, snap)
	}
	c.Update(&hogwirev1.WatchResponse{Revision: 13, Deleted: []string{"projects/a/destinations/x"}})
	if base, rev := c.Range(); base != 11 || rev != 13 {
		t.Errorf("range %d..%d, want 11..13 with two changes kept", base, rev)
	}
	if _, snap, _ := c.Since(10); snap == nil {
		t.Error("a watcher behind the history gets a snapshot")
	}
	if _, snap, _ := c.Since(99); snap == nil {
		t.Error("a watcher ahead of the cache (etcd restored) gets a snapshot")
	}
	c.Advance(20)
	if ch, snap, _ := c.Since(20); ch != nil || snap != nil {
		t.Error("progress: a watcher at 20 is up to date")
	}
	// A reload is sent as the difference.
	cur := c.Current()
	c.Set(cur.Apply(&hogwirev1.WatchResponse{Revision: 25, Projects: []*hogwirev1.Project{project("b", "phc_b")}}))
	ch, snap, _ := c.Since(20)
	if snap != nil || len(ch) != 1 || ch[0].Revision != 25 || len(ch[0].Projects) != 1 || len(ch[0].Destinations) != 0 {
		t.Errorf("reload diff %v %v", ch, snap)
	}
}
