// Package geoiptest writes tiny MMDB databases for tests, with mmdbwriter
// (MaxMind's writer): a city database in the layout of GeoIP2 City, and
// one in the flat layout of ip-location-db's.
package geoiptest

import (
	"fmt"
	"net"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// The networks the database knows. Any other address is not found.
const (
	// LondonIP is in 81.2.69.0/24: London, England, GB, Europe.
	LondonIP = "81.2.69.142"
	// StockholmIP is in 2001:218::/32: Stockholm, SE, Europe.
	StockholmIP = "2001:218::1"
)

func names(en string) mmdbtype.Map {
	return mmdbtype.Map{"en": mmdbtype.String(en)}
}

// record is the data of one network.
type record struct {
	cidr string
	rec  mmdbtype.Map
}

// Write writes the city database to path.
func Write(path string) error {
	return write(path, "hogwire-Test-City", []record{
		{"81.2.69.0/24", mmdbtype.Map{
			"city":      mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2643743), "names": names("London")},
			"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148), "names": names("Europe")},
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String("GB"), "geoname_id": mmdbtype.Uint32(2635167), "names": names("United Kingdom")},
			"location": mmdbtype.Map{"accuracy_radius": mmdbtype.Uint16(10), "latitude": mmdbtype.Float64(51.5142),
				"longitude": mmdbtype.Float64(-0.0931), "time_zone": mmdbtype.String("Europe/London")},
			"postal": mmdbtype.Map{"code": mmdbtype.String("EC2V")},
			"subdivisions": mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String("ENG"),
				"geoname_id": mmdbtype.Uint32(6269131), "names": names("England")}},
		}},
		{"2001:218::/32", mmdbtype.Map{
			"city":      mmdbtype.Map{"names": names("Stockholm")},
			"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "names": names("Europe")},
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String("SE"), "names": names("Sweden")},
			"location": mmdbtype.Map{"accuracy_radius": mmdbtype.Uint16(50), "latitude": mmdbtype.Float64(59.3294),
				"longitude": mmdbtype.Float64(18.0686), "time_zone": mmdbtype.String("Europe/Stockholm")},
		}},
	})
}

// WriteFlat writes, of type "city ipvAll", LondonIP's network as
// ip-location-db's city databases hold it (country_code, state1, city,
// postcode, latitude, longitude, timezone; no state2), and StockholmIP's
// with the unknown country code "ZZ" and empty strings for the rest.
func WriteFlat(path string) error {
	return write(path, "city ipvAll", []record{
		{"81.2.69.0/24", mmdbtype.Map{
			"country_code": mmdbtype.String("GB"), "state1": mmdbtype.String("England"),
			"city": mmdbtype.String("London"), "postcode": mmdbtype.String("EC2V"),
			"latitude": mmdbtype.Float64(51.5142), "longitude": mmdbtype.Float64(-0.0931),
			"timezone": mmdbtype.String("Europe/London"),
		}},
		{"2001:218::/32", mmdbtype.Map{
			"country_code": mmdbtype.String("ZZ"), "city": mmdbtype.String(""), "postcode": mmdbtype.String(""),
		}},
	})
}

// WriteType writes a database of type dbType whose one network,
// LondonIP's, holds an empty map.
func WriteType(path, dbType string) error {
	return write(path, dbType, []record{{"81.2.69.0/24", mmdbtype.Map{}}})
}

func write(path, dbType string, recs []record) error {
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24})
	if err != nil {
		return err
	}
	for _, r := range recs {
		_, network, err := net.ParseCIDR(r.cidr)
		if err != nil {
			return err
		}
		if err := w.Insert(network, r.rec); err != nil {
			return fmt.Errorf("geoiptest: inserting %s: %w", r.cidr, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
