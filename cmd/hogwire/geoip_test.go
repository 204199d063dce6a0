package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/geoip/countrydb"
)

// --geoip-db: empty opens the built-in database and says so in the log,
// none turns GeoIP off (also said), a bad path is an error naming the
// flag.
func TestOpenGeoIP(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	db, err := openGeoIP("", log)
	if err != nil || db == nil {
		t.Fatalf(`openGeoIP("") = %v, %v`, db, err)
	}
	_ = db.Close()
	if want := `database="embedded iptoasn-country ` + countrydb.Version() + `"`; !strings.Contains(buf.String(), want) {
		t.Errorf("log %q lacks %s", buf.String(), want)
	}
	buf.Reset()
	if db, err := openGeoIP("none", log); db != nil || err != nil || geoIP(db) != nil {
		t.Errorf(`openGeoIP("none") = %v, %v; want nil, nil`, db, err)
	}
	if !strings.Contains(buf.String(), "GeoIP off") {
		t.Errorf("log %q does not say GeoIP is off", buf.String())
	}
	missing := filepath.Join(t.TempDir(), "city.mmdb")
	if _, err := openGeoIP(missing, log); err == nil || !strings.Contains(err.Error(), "--geoip-db") || !strings.Contains(err.Error(), missing) {
		t.Errorf("openGeoIP(a missing file) = %v; want an error naming the flag and the file", err)
	}
}
