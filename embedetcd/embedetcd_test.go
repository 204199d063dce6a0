package embedetcd

import (
	"context"
	"testing"
	"time"
)

func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	put := func() {
		s, err := Start(ctx, Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c, err := s.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Put(ctx, "/k", "v1"); err != nil {
			t.Fatal(err)
		}
	}
	put()

	s, err := Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatalf("second start on the same dir: %v", err)
	}
	defer s.Close()
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Get(ctx, "/k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("after restart got %v, want /k=v1", resp.Kvs)
	}
}
