package geoip_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/geoip"
	"github.com/hogwire/hogwire/geoip/countrydb"
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
	if db.Source() != path {
		t.Errorf("Source() = %q, want the path", db.Source())
	}
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

// TestEmbedded reads the shipped database. The countries asserted are
// what the shipped build says (IPtoASN places an address in the country
// of its network's operator): a refresh that moves one must update the
// test, not be waved through.
func TestEmbedded(t *testing.T) {
	db, err := geoip.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if want := "embedded iptoasn-country " + countrydb.Version(); db.Source() != want || !strings.HasPrefix(countrydb.Version(), "2.") {
		t.Errorf("Source() = %q, want %q", db.Source(), want)
	}
	country := func(code, name, continent, continentName string) map[string]any {
		return map[string]any{
			"country":   map[string]any{"iso_code": code, "names": map[string]any{"en": name}},
			"continent": map[string]any{"code": continent, "names": map[string]any{"en": continentName}},
		}
	}
	us := country("US", "United States", "NA", "North America")
	for ip, want := range map[string]map[string]any{
		"8.8.8.8":              us, // Google Public DNS
		"2001:4860:4860::8888": us,
		"1.1.1.1":              us, // Cloudflare's, operated from the US
		"::ffff:8.8.4.4":       us, // IPv4-mapped IPv6
		"81.2.69.142":          country("GB", "United Kingdom", "EU", "Europe"),
		"193.0.6.139":          country("NL", "Netherlands", "EU", "Europe"), // RIPE NCC
		"133.242.0.3":          country("JP", "Japan", "AS", "Asia"),
		"200.160.2.3":          country("BR", "Brazil", "SA", "South America"), // NIC.br
	} {
		got, err := db.Lookup(ip)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Lookup(%s) = %v, %v; want %v", ip, got, err, want)
		}
	}
	// Private, loopback, link-local, shared, documentation and multicast
	// addresses have no country.
	for _, ip := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.1.1", "100.64.0.1",
		"192.0.2.1", "203.0.113.7", "224.0.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "2001:db8::1", "::ffff:192.168.1.1"} {
		if rec, err := db.Lookup(ip); rec != nil || err != nil {
			t.Errorf("Lookup(%s) = %v, %v; want nil, nil", ip, rec, err)
		}
	}
}

func TestSelect(t *testing.T) {
	db, err := geoip.Select("")
	if err != nil || db == nil || !strings.HasPrefix(db.Source(), "embedded ") {
		t.Fatalf("Select(\"\") = %v, %v; want the embedded database", db, err)
	}
	_ = db.Close()
	if db, err := geoip.Select(geoip.None); db != nil || err != nil {
		t.Errorf("Select(none) = %v, %v; want nil, nil", db, err)
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	if err := geoiptest.Write(path); err != nil {
		t.Fatal(err)
	}
	if db, err = geoip.Select(path); err != nil || db.Source() != path {
		t.Fatalf("Select(path) = %v, %v", db, err)
	}
	_ = db.Close()
	if _, err := geoip.Select(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil || !strings.Contains(err.Error(), "missing.mmdb") {
		t.Errorf("Select(a missing file) = %v; want an error naming it", err)
	}
}

// TestFlatLayout: the flat records of ip-location-db's city databases
// come out in GeoIP2's layout, with no field the record lacks.
func TestFlatLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flat.mmdb")
	if err := geoiptest.WriteFlat(path); err != nil {
		t.Fatal(err)
	}
	db, err := geoip.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Lookup(geoiptest.LondonIP)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"country":      map[string]any{"iso_code": "GB", "names": map[string]any{"en": "United Kingdom"}},
		"continent":    map[string]any{"code": "EU", "names": map[string]any{"en": "Europe"}},
		"city":         map[string]any{"names": map[string]any{"en": "London"}},
		"postal":       map[string]any{"code": "EC2V"},
		"subdivisions": []any{map[string]any{"names": map[string]any{"en": "England"}}},
		"location":     map[string]any{"latitude": 51.5142, "longitude": -0.0931, "time_zone": "Europe/London"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Lookup(London) =\n%v, want\n%v", got, want)
	}
	// A code the table does not know keeps only its code.
	if got, err = db.Lookup(geoiptest.StockholmIP); err != nil || !reflect.DeepEqual(got, map[string]any{"country": map[string]any{"iso_code": "ZZ"}}) {
		t.Errorf("Lookup(unknown code) = %v, %v", got, err)
	}
}

func TestOpenRefusesOtherKinds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "asn.mmdb")
	if err := geoiptest.WriteType(path, "GeoLite2-ASN"); err != nil {
		t.Fatal(err)
	}
	if _, err := geoip.Open(path); err == nil || !strings.Contains(err.Error(), "city or country") {
		t.Errorf("Open(an ASN database) = %v; want refused", err)
	}
}

// Load (--geoip-db): empty opens the built-in database and says so in the
// log, none turns GeoIP off (also said), a bad path is an error naming
// the flag and the file.
func TestLoad(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	db, err := geoip.Load("", log)
	if err != nil || db == nil {
		t.Fatalf(`Load("") = %v, %v`, db, err)
	}
	_ = db.Close()
	if want := `database="embedded iptoasn-country ` + countrydb.Version() + `"`; !strings.Contains(buf.String(), want) {
		t.Errorf("log %q lacks %s", buf.String(), want)
	}
	buf.Reset()
	if db, err := geoip.Load("none", log); db != nil || err != nil {
		t.Errorf(`Load("none") = %v, %v; want nil, nil`, db, err)
	}
	if !strings.Contains(buf.String(), "GeoIP off") {
		t.Errorf("log %q does not say GeoIP is off", buf.String())
	}
	missing := filepath.Join(t.TempDir(), "city.mmdb")
	if _, err := geoip.Load(missing, log); err == nil || !strings.Contains(err.Error(), "--geoip-db") || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(a missing file) = %v; want an error naming the flag and the file", err)
	}
}
