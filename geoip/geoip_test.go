package geoip_test

import (
	"path/filepath"
	"testing"

	"github.com/hogwire/hogwire/geoip"
	"github.com/hogwire/hogwire/geoip/geoiptest"
)

func TestLookup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	if err := geoiptest.Write(path); err != nil {
		t.Fatal(err)
	}
	db, err := geoip.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := db.Lookup(geoiptest.LondonIP)
	if err != nil {
		t.Fatal(err)
	}
	city, _ := rec["city"].(map[string]any)
	if n, _ := city["names"].(map[string]any); n["en"] != "London" {
		t.Fatalf("city = %v, want London", rec["city"])
	}
	if rec, err = db.Lookup(geoiptest.StockholmIP); err != nil || rec["country"].(map[string]any)["iso_code"] != "SE" {
		t.Fatalf("IPv6 lookup = %v, %v", rec, err)
	}
	for _, ip := range []string{"10.0.0.1", "not an ip", "", "8.8.8.8"} {
		if rec, err := db.Lookup(ip); rec != nil || err != nil {
			t.Errorf("Lookup(%q) = %v, %v; want nil, nil", ip, rec, err)
		}
	}
	if _, err := geoip.Open(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("opening a missing file succeeded")
	}
}
