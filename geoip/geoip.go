// Package geoip reads a MaxMind-format (MMDB) database for the
// geoipLookup() host function of transformations.
//
// A data plane uses, by its --geoip-db setting (see Select), the country
// database hogwire ships (package countrydb: public domain, country only)
// or a city or country database of the user's: MaxMind's GeoIP2 and
// GeoLite2, DB-IP's Lite databases, or any in their layout (city, country,
// continent, location, postal, subdivisions). Lookup returns records in
// that layout whatever the database, so the geoip template reads one.
package geoip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/hogwire/hogwire/geoip/countrydb"
)

//go:generate go run ./internal/gencountries

// DB is an open database. It is safe for concurrent use.
type DB struct {
	r      *maxminddb.Reader
	source string
}

// None is the --geoip-db setting that turns GeoIP off.
const None = "none"

// Select opens the database a --geoip-db setting names: the embedded
// country database when empty, none (nil, nil) for None, else the file
// at that path.
func Select(setting string) (*DB, error) {
	switch strings.TrimSpace(setting) {
	case "":
		return Embedded()
	case None:
		return nil, nil
	default:
		return Open(setting)
	}
}

// Load is Select for a process starting: it says in log which database
// it uses, or that GeoIP is off, and names the setting in its error.
func Load(setting string, log *slog.Logger) (*DB, error) {
	db, err := Select(setting)
	if err != nil {
		return nil, fmt.Errorf("--geoip-db: %w", err)
	}
	if db == nil {
		log.Info("GeoIP off (--geoip-db=none): geoipLookup() returns null")
		return nil, nil
	}
	log.Info("GeoIP database open", "database", db.Source(), "type", db.Type())
	return db, nil
}

// Open opens the database at path (memory-mapped).
func Open(path string) (*DB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: opening %s: %w", path, err)
	}
	return newDB(r, path)
}

// Embedded opens the country database hogwire ships, in place.
func Embedded() (*DB, error) {
	r, err := maxminddb.OpenBytes(countrydb.Data())
	if err != nil {
		return nil, fmt.Errorf("geoip: opening the embedded %s database: %w", countrydb.Name, err)
	}
	return newDB(r, "embedded "+countrydb.Name+" "+countrydb.Version())
}

// newDB keeps r if it is a database geoipLookup can answer from: one of
// cities or countries, not of ASNs, ISPs or anonymous networks.
func newDB(r *maxminddb.Reader, source string) (*DB, error) {
	t := strings.ToLower(r.Metadata.DatabaseType)
	if !strings.Contains(t, "city") && !strings.Contains(t, "country") {
		_ = r.Close()
		return nil, fmt.Errorf("geoip: %s is a %q database; geoipLookup needs a city or country database (e.g. GeoLite2-City, dbip-city-lite)", source, r.Metadata.DatabaseType)
	}
	return &DB{r: r, source: source}, nil
}

// Close releases the database.
func (db *DB) Close() error { return db.r.Close() }

// Type is the database's type from its metadata, e.g. "GeoLite2-City".
func (db *DB) Type() string { return db.r.Metadata.DatabaseType }

// Source says which database this is: its path, or "embedded <name>
// <version>".
func (db *DB) Source() string { return db.source }

// ErrCorrupt reports a record the database could not decode.
var ErrCorrupt = errors.New("geoip: corrupt record")

// Lookup returns the record of ip in the layout of GeoIP2's: nil when ip
// is not an address, is not a public one (private, loopback, link-local,
// multicast: some databases wrongly place such ranges in a country), or
// the database has no record of it.
func (db *DB) Lookup(ip string) (map[string]any, error) {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return nil, nil
	}
	addr = addr.Unmap()
	if !addr.IsGlobalUnicast() || addr.IsPrivate() {
		return nil, nil
	}
	res := db.r.Lookup(addr)
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if !res.Found() {
		return nil, nil
	}
	var rec map[string]any
	if err := res.Decode(&rec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return layout(rec), nil
}

// country is what countries.go knows of a country code.
type country struct {
	name, continent string
}

// continentNames are the English names of MaxMind's continent codes.
var continentNames = map[string]string{
	"AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe",
	"NA": "North America", "OC": "Oceania", "SA": "South America",
}

// layout turns the flat records of ip-location-db's databases (the
// embedded one, and the npm packages of DB-IP's and others' city
// databases: country_code, state1, state2, city, postcode, latitude,
// longitude, timezone) into GeoIP2's layout, adding the country's English
// name and continent. Records already in GeoIP2's layout pass as they
// are. A field the database lacks stays absent, never an empty string.
func layout(rec map[string]any) map[string]any {
	code, ok := rec["country_code"].(string)
	if !ok || rec["country"] != nil {
		return rec
	}
	code = strings.ToUpper(code)
	ctry := map[string]any{"iso_code": code}
	out := map[string]any{"country": ctry}
	if c, ok := countries[code]; ok {
		ctry["names"] = english(c.name)
		out["continent"] = map[string]any{"code": c.continent, "names": english(continentNames[c.continent])}
	}
	if city, ok := rec["city"].(string); ok && city != "" {
		out["city"] = map[string]any{"names": english(city)}
	}
	if pc, ok := rec["postcode"].(string); ok && pc != "" {
		out["postal"] = map[string]any{"code": pc}
	}
	var subs []any
	for _, k := range []string{"state1", "state2"} {
		if s, ok := rec[k].(string); ok && s != "" {
			subs = append(subs, map[string]any{"names": english(s)})
		}
	}
	if subs != nil {
		out["subdivisions"] = subs
	}
	loc := map[string]any{}
	for from, to := range map[string]string{"latitude": "latitude", "longitude": "longitude", "timezone": "time_zone"} {
		if v, ok := rec[from]; ok && v != nil && v != "" {
			loc[to] = v
		}
	}
	if len(loc) > 0 {
		out["location"] = loc
	}
	return out
}

// english is a GeoIP2 names map holding only English.
func english(name string) map[string]any { return map[string]any{"en": name} }
