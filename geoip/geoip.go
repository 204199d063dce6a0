// Package geoip reads a MaxMind-format (MMDB) city database for the
// geoipLookup() host function of transformations: MaxMind's GeoIP2 and
// GeoLite2 City, DB-IP's "IP to City Lite" and any database in their
// layout (city, country, continent, location, postal, subdivisions).
//
// hogwire ships no database: a real one is tens of megabytes and
// refreshed monthly. Point --geoip-db (HOGWIRE_GEOIP_DB) at one; see
// docs/transformations.md for where to get one under a licence that
// allows it.
package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DB is an open database. It is safe for concurrent use.
type DB struct {
	r *maxminddb.Reader
}

// Open opens the database at path (memory-mapped).
func Open(path string) (*DB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: opening %s: %w", path, err)
	}
	if t := r.Metadata.DatabaseType; !strings.Contains(strings.ToLower(t), "city") {
		_ = r.Close()
		return nil, fmt.Errorf("geoip: %s is a %q database; geoipLookup needs a city database (e.g. GeoLite2-City, dbip-city-lite)", path, t)
	}
	return &DB{r: r}, nil
}

// Close releases the database.
func (db *DB) Close() error { return db.r.Close() }

// Type is the database's type from its metadata, e.g. "GeoLite2-City".
func (db *DB) Type() string { return db.r.Metadata.DatabaseType }

// ErrCorrupt reports a record the database could not decode.
var ErrCorrupt = errors.New("geoip: corrupt record")

// Lookup returns the record of ip: nil when ip is not an address or the
// database has no record of it (private and reserved ranges, say).
func (db *DB) Lookup(ip string) (map[string]any, error) {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return nil, nil
	}
	res := db.r.Lookup(addr.Unmap())
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
	return rec, nil
}
