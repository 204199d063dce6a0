package vm

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // Hog programs name IANA zones; do not depend on the host's zoneinfo.
)

// locations caches loaded time zones; loading one parses tzdata.
var locations sync.Map // string → *time.Location

// LoadZone loads an IANA time zone by name ("" is UTC), cached, with
// Hog's error for an unknown one.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, rtErr("Invalid time zone: " + name)
	}
	locations.Store(name, l)
	return l, nil
}

func timeSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// Seconds returns the date's midnight UTC in seconds since the epoch.
func (d *Date) Seconds() float64 {
	return float64(time.Date(d.Year, time.Month(d.Month), d.Day, 0, 0, 0, 0, time.UTC).Unix())
}

// dateLike is the date-like string grammar shared by PostHog's VMs.
var dateLike = regexp.MustCompile(`^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]((?:[01][0-9]|2[0-3])):([0-5][0-9])(?::([0-5][0-9])(?:[.,]([0-9]{1,9}))?)?(Z|z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?$`)

// ParseDate parses a date-like string as PostHog's VMs do ("2024-05-03",
// "2024-05-03T12:00:00.123+02:00", …), in zone when the string has no
// offset.
func ParseDate(s string, zone string) (time.Time, bool) {
	m := dateLike.FindStringSubmatch(strings.TrimFunc(s, isJSSpace))
	if m == nil || m[1] == "0000" {
		return time.Time{}, false
	}
	num := func(s string) int { n, _ := strconv.Atoi(s); return n }
	y, mo, d := num(m[1]), num(m[2]), num(m[3])
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) {
		return time.Time{}, false
	}
	h, mi, sec, ms := num(m[4]), num(m[5]), num(m[6]), 0
	if m[7] != "" {
		f := (m[7] + "00")[:3]
		ms = num(f)
	}
	loc, err := LoadZone(zone)
	if err != nil {
		return time.Time{}, false
	}
	if off := m[8]; off != "" {
		secs := 0
		if off != "Z" && off != "z" {
			digits := strings.ReplaceAll(off[1:], ":", "")
			secs = num(digits[:2]) * 3600
			if len(digits) > 2 {
				secs += num(digits[2:]) * 60
			}
			if off[0] == '-' {
				secs = -secs
			}
		}
		loc = time.FixedZone("", secs)
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ms*1e6, loc), true
}

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func dateStringToSeconds(s string) (float64, bool) {
	t, ok := ParseDate(s, "")
	if !ok {
		return 0, false
	}
	return timeSeconds(t), true
}
