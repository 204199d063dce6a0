package stl

import (
	"fmt"
	"math"
	"strconv"
	"time"
	_ "time/tzdata" // Hog programs name IANA zones; do not depend on the host's zoneinfo.

	"github.com/hogwire/hogwire/hogvm/vm"
)

// toTime converts epoch seconds to a time with millisecond precision, as
// Luxon keeps it.
func toTime(seconds float64, loc *time.Location) time.Time {
	// JavaScript's Date truncates fractional milliseconds.
	return time.UnixMilli(int64(math.Trunc(seconds * 1000))).In(loc)
}

func timeSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// isoDateTime is Luxon's toISO(): milliseconds and the zone's offset, Z for UTC.
func isoDateTime(dt *vm.DateTime) string {
	loc, err := vm.LoadZone(dt.Zone)
	if err != nil || math.IsNaN(dt.Seconds) || math.IsInf(dt.Seconds, 0) {
		return "null"
	}
	t := toTime(dt.Seconds, loc)
	if loc == time.UTC {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format("2006-01-02T15:04:05.000-07:00")
}

// hogTime converts a DateTime, Date or date-like string to a time.
func hogTime(v vm.Value) (time.Time, bool) {
	switch v.Kind() {
	case vm.KindDateTime:
		dt := v.AsDateTime()
		loc, err := vm.LoadZone(dt.Zone)
		if err != nil || dt.Seconds != dt.Seconds {
			return time.Time{}, false
		}
		return toTime(dt.Seconds, loc), true
	case vm.KindDate:
		d := v.AsDate()
		return time.Date(d.Year, time.Month(d.Month), d.Day, 0, 0, 0, 0, time.UTC), true
	case vm.KindString:
		return vm.ParseDate(v.AsString(), "")
	}
	return time.Time{}, false
}

func dateTimeOf(t time.Time, zone string) vm.Value {
	return vm.NewDateTime(timeSeconds(t), zone)
}

func pad(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func hour12(t time.Time) int {
	h := t.Hour() % 12
	if h == 0 {
		return 12
	}
	return h
}

// formatDateTime renders ClickHouse-style % tokens as PostHog does with Luxon.
func formatDateTime(t time.Time, format string) string {
	var b []byte
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		i++
		if i >= len(format) {
			break
		}
		switch format[i] {
		case 'a':
			b = append(b, t.Weekday().String()[:3]...)
		case 'b':
			b = append(b, t.Month().String()[:3]...)
		case 'c', 'm':
			b = pad(b, int(t.Month()), 2)
		case 'C', 'g', 'y':
			b = pad(b, t.Year()%100, 2)
		case 'd':
			b = pad(b, t.Day(), 2)
		case 'D':
			b = pad(b, int(t.Month()), 2)
			b = append(b, '/')
			b = pad(b, t.Day(), 2)
			b = append(b, '/')
			b = pad(b, t.Year()%100, 2)
		case 'e':
			b = strconv.AppendInt(b, int64(t.Day()), 10)
		case 'f':
			b = pad(b, t.Nanosecond()/1e6, 3)
		case 'F':
			b = pad(b, t.Year(), 4)
			b = append(b, '-')
			b = pad(b, int(t.Month()), 2)
			b = append(b, '-')
			b = pad(b, t.Day(), 2)
		case 'G', 'Y':
			b = pad(b, t.Year(), 4)
		case 'h', 'I', 'l':
			b = pad(b, hour12(t), 2)
		case 'H', 'k':
			b = pad(b, t.Hour(), 2)
		case 'i':
			b = pad(b, t.Minute(), 2)
		case 'j':
			b = pad(b, t.YearDay(), 3)
		case 'M':
			b = append(b, t.Month().String()...)
		case 'n':
			b = append(b, '\n')
		case 'p':
			b = append(b, ampm(t)...)
		case 'Q':
			b = strconv.AppendInt(b, int64((int(t.Month())-1)/3+1), 10)
		case 'r':
			b = pad(b, hour12(t), 2)
			b = append(b, ':')
			b = pad(b, t.Minute(), 2)
			b = append(b, ' ')
			b = append(b, ampm(t)...)
		case 'R':
			b = pad(b, t.Hour(), 2)
			b = append(b, ':')
			b = pad(b, t.Minute(), 2)
		case 's', 'S':
			b = pad(b, t.Second(), 2)
		case 't':
			b = append(b, '\t')
		case 'T':
			b = pad(b, t.Hour(), 2)
			b = append(b, ':')
			b = pad(b, t.Minute(), 2)
			b = append(b, ':')
			b = pad(b, t.Second(), 2)
		case 'u', 'w':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			b = strconv.AppendInt(b, int64(wd), 10)
		case 'V':
			_, w := t.ISOWeek()
			b = pad(b, w, 2)
		case 'W':
			b = append(b, t.Weekday().String()...)
		case 'z':
			b = append(b, t.Format("-0700")...)
		case '%':
			b = append(b, '%')
		}
	}
	return string(b)
}

func ampm(t time.Time) string {
	if t.Hour() < 12 {
		return "AM"
	}
	return "PM"
}

func expectDateTime(v vm.Value) (*vm.DateTime, error) {
	if v.Kind() != vm.KindDateTime {
		return nil, rtErr("Expected a DateTime")
	}
	return v.AsDateTime(), nil
}

func truncTime(t time.Time, unit string) (time.Time, error) {
	y, mo, d := t.Date()
	switch unit {
	case "year":
		return time.Date(y, 1, 1, 0, 0, 0, 0, t.Location()), nil
	case "month":
		return time.Date(y, mo, 1, 0, 0, 0, 0, t.Location()), nil
	case "day":
		return time.Date(y, mo, d, 0, 0, 0, 0, t.Location()), nil
	case "hour":
		return time.Date(y, mo, d, t.Hour(), 0, 0, 0, t.Location()), nil
	case "minute":
		return time.Date(y, mo, d, t.Hour(), t.Minute(), 0, 0, t.Location()), nil
	}
	return t, rtErr("Unsupported unit for dateTrunc: " + unit)
}

// addMonths adds months the way Luxon does: clamping to the month's end.
func addMonths(t time.Time, n int) time.Time {
	y, mo, d := t.Date()
	total := int(mo) - 1 + n
	ny, nm := y+total/12, total%12
	if nm < 0 {
		nm += 12
		ny--
	}
	d = min(d, daysIn(ny, nm+1))
	return time.Date(ny, time.Month(nm+1), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

func applyInterval(base vm.Value, amount float64, unit string) (vm.Value, error) {
	t, ok := hogTime(base)
	if !ok || (base.Kind() != vm.KindDateTime && base.Kind() != vm.KindDate) {
		return vm.Null, rtErr("Expected a Date or DateTime")
	}
	n := int(amount)
	switch unit {
	case "week":
		t = t.AddDate(0, 0, 7*n)
	case "day":
		t = t.AddDate(0, 0, n)
	case "hour":
		t = t.Add(time.Duration(amount * float64(time.Hour)))
	case "minute":
		t = t.Add(time.Duration(amount * float64(time.Minute)))
	case "second":
		t = t.Add(time.Duration(amount * float64(time.Second)))
	case "month":
		t = addMonths(t, n)
	case "year":
		t = addMonths(t, 12*n)
	default:
		return vm.Null, rtErr("Unsupported interval unit: " + unit)
	}
	if base.Kind() == vm.KindDateTime {
		return dateTimeOf(t, base.AsDateTime().Zone), nil
	}
	return vm.NewDate(t.Year(), int(t.Month()), t.Day()), nil
}

func interval(value vm.Value, unit string) vm.Value {
	d := vm.NewDict(3)
	d.SetString("__hogInterval__", vm.Bool(true))
	d.SetString("value", value)
	d.SetString("unit", vm.String(unit))
	return vm.DictValue(d)
}

func extractPart(part string, v vm.Value) (vm.Value, error) {
	t, ok := hogTime(v)
	if !ok {
		return vm.Number(math.NaN()), nil
	}
	switch part {
	case "year":
		return vm.Int(int64(t.Year())), nil
	case "month":
		return vm.Int(int64(t.Month())), nil
	case "day":
		return vm.Int(int64(t.Day())), nil
	case "hour":
		return vm.Int(int64(t.Hour())), nil
	case "minute":
		return vm.Int(int64(t.Minute())), nil
	case "second":
		return vm.Int(int64(t.Second())), nil
	}
	return vm.Null, rtErr("Unknown extract part: " + part)
}

func startOf(v vm.Value, unit string) (vm.Value, error) {
	if v.Kind() == vm.KindDate {
		d := v.AsDate()
		v = vm.NewDateTime(d.Seconds(), "UTC")
	}
	dt, err := expectDateTime(v)
	if err != nil {
		return vm.Null, rtErr("Expected a DateTime for dateTrunc")
	}
	t, _ := hogTime(v)
	t, err = truncTime(t, unit)
	if err != nil {
		return vm.Null, err
	}
	return dateTimeOf(t, dt.Zone), nil
}

func (l *builder) registerDates() {
	l.def("now", 0, 1, func(e vm.Env, _ []vm.Value) (vm.Value, error) {
		return vm.NewDateTime(float64(e.Now().UnixMilli())/1000, "UTC"), nil
	})
	l.def("today", 0, 0, func(e vm.Env, _ []vm.Value) (vm.Value, error) {
		t := e.Now().UTC()
		return vm.NewDate(t.Year(), int(t.Month()), t.Day()), nil
	})
	l.def("toUnixTimestamp", 1, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		return vm.Number(unixSeconds(a[0], arg(a, 1))), nil
	})
	l.def("toUnixTimestampMilli", 1, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		return vm.Number(unixSeconds(a[0], arg(a, 1)) * 1000), nil
	})
	l.def("fromUnixTimestamp", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.NewDateTime(vm.ToNumber(a[0]), "UTC") }))
	l.def("fromUnixTimestampMilli", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.NewDateTime(vm.ToNumber(a[0])/1000, "UTC") }))
	l.def("toTimeZone", 2, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		dt, err := expectDateTime(a[0])
		if err != nil {
			return vm.Null, err
		}
		return vm.NewDateTime(dt.Seconds, vm.JSString(a[1])), nil
	})
	l.def("toDate", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		var t time.Time
		switch a[0].Kind() {
		case vm.KindNumber:
			t = toTime(a[0].AsNumber(), time.UTC)
		case vm.KindString:
			var ok bool
			if t, ok = vm.ParseDate(a[0].AsString(), ""); !ok {
				return vm.Null, nil
			}
		default:
			return vm.Null, nil
		}
		return vm.NewDate(t.Year(), int(t.Month()), t.Day()), nil
	})
	l.def("toDateTime", 1, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		zone := "UTC"
		if z := arg(a, 1); z.Truthy() {
			zone = vm.JSString(z)
		}
		if a[0].Kind() == vm.KindNumber {
			return vm.NewDateTime(a[0].AsNumber(), zone), nil
		}
		secs := math.NaN()
		if a[0].Kind() == vm.KindString {
			if t, ok := vm.ParseDate(a[0].AsString(), zone); ok {
				secs = timeSeconds(t)
			}
		}
		return vm.NewDateTime(secs, zone), nil
	})
	l.def("formatDateTime", 2, 3, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		dt, err := expectDateTime(a[0])
		if err != nil {
			return vm.Null, err
		}
		if !a[1].Truthy() {
			return vm.Null, rtErr("formatDateTime requires at least 2 arguments")
		}
		zone := dt.Zone
		if z := arg(a, 2); z.Truthy() {
			zone = vm.JSString(z)
		}
		loc, err := vm.LoadZone(zone)
		if err != nil {
			return vm.Null, err
		}
		return vm.String(formatDateTime(toTime(dt.Seconds, loc), vm.JSString(a[1]))), nil
	})
	l.def("toYear", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) { return extractPart("year", a[0]) })
	l.def("toMonth", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) { return extractPart("month", a[0]) })
	l.def("extract", 2, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) { return extractPart(vm.JSString(a[0]), a[1]) })
	l.def("toYYYYMM", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		y, err := extractPart("year", a[0])
		if err != nil {
			return vm.Null, err
		}
		m, _ := extractPart("month", a[0])
		return vm.Number(y.AsNumber()*100 + m.AsNumber()), nil
	})
	l.def("toStartOfDay", 1, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) { return startOf(a[0], "day") })
	l.def("toStartOfHour", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) { return startOf(a[0], "hour") })
	l.def("toStartOfMonth", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) { return startOf(a[0], "month") })
	l.def("toStartOfWeek", 1, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		t, ok := hogTime(a[0])
		if !ok || (a[0].Kind() != vm.KindDateTime && a[0].Kind() != vm.KindDate) {
			return vm.Null, rtErr("Expected a Date or DateTime")
		}
		zone := "UTC"
		if dt := a[0].AsDateTime(); dt != nil {
			zone = dt.Zone
		}
		wd := (int(t.Weekday()) + 6) % 7
		t, _ = truncTime(t.AddDate(0, 0, -wd), "day")
		return dateTimeOf(t, zone), nil
	})
	l.def("dateTrunc", 2, 3, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		if a[1].Kind() != vm.KindDateTime {
			return vm.Null, rtErr("Expected a DateTime for dateTrunc")
		}
		return startOf(a[1], vm.JSString(a[0]))
	})
	l.def("dateAdd", 3, 3, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		return applyInterval(a[2], vm.ToNumber(a[1]), vm.JSString(a[0]))
	})
	l.def("addDays", 2, 2, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		return applyInterval(a[0], vm.ToNumber(a[1]), "day")
	})
	l.def("dateDiff", 3, 3, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		s, ok1 := hogTime(a[1])
		e, ok2 := hogTime(a[2])
		if !ok1 || !ok2 {
			return vm.Number(math.NaN()), nil
		}
		ms := float64(e.UnixMilli() - s.UnixMilli())
		switch unit := vm.JSString(a[0]); unit {
		case "day":
			return vm.Number(math.Floor(ms / 86400000)), nil
		case "hour":
			return vm.Number(math.Floor(casualDiff(s, e) / 3600000)), nil
		case "minute":
			return vm.Number(math.Floor(casualDiff(s, e) / 60000)), nil
		case "second":
			return vm.Number(math.Floor(casualDiff(s, e) / 1000)), nil
		case "week":
			return vm.Number(math.Floor(casualDiff(s, e) / 86400000 / 7)), nil
		case "month":
			return vm.Int(int64((e.Year()-s.Year())*12 + int(e.Month()) - int(s.Month()))), nil
		case "year":
			return vm.Int(int64(e.Year() - s.Year())), nil
		default:
			return vm.Null, rtErr(fmt.Sprintf("Unsupported unit for dateDiff: %s", unit))
		}
	})
	for unit, name := range map[string]string{"day": "toIntervalDay", "hour": "toIntervalHour", "minute": "toIntervalMinute", "month": "toIntervalMonth"} {
		l.def(name, 1, 1, pure(func(a []vm.Value) vm.Value { return interval(a[0], unit) }))
	}
}

func unixSeconds(v, zone vm.Value) float64 {
	switch v.Kind() {
	case vm.KindDateTime:
		return v.AsDateTime().Seconds
	case vm.KindDate:
		return v.AsDate().Seconds()
	case vm.KindString:
		z := ""
		if zone.Truthy() {
			z = vm.JSString(zone)
		}
		if t, ok := vm.ParseDate(v.AsString(), z); ok {
			return timeSeconds(t)
		}
	}
	return math.NaN()
}

// casualDiff reproduces Luxon's end.diff(start, [years … seconds]).as(ms):
// a calendar difference in years, months, weeks and days, converted back
// with Luxon's casual lengths (a year is 365 days, a month 30), plus the
// exact remainder. PostHog's dateDiff reports hours, minutes, seconds and
// weeks this way, so across months they are not exact durations.
func casualDiff(start, end time.Time) float64 {
	sign := 1.0
	earlier, later := start, end
	if start.After(end) {
		earlier, later, sign = end, start, -1
	}
	var res [4]int // years, months, weeks, days
	plus := func(r [4]int) time.Time {
		t := addMonths(earlier, r[0]*12+r[1])
		return t.AddDate(0, 0, r[2]*7+r[3])
	}
	dayDiff := func(a, b time.Time) int {
		ay, am, ad := a.Date()
		by, bm, bd := b.Date()
		da := time.Date(ay, am, ad, 0, 0, 0, 0, time.UTC)
		db := time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC)
		return int(math.Floor(float64(db.Sub(da).Milliseconds()) / 86400000))
	}
	cursor := earlier
	differs := []func(a, b time.Time) int{
		func(a, b time.Time) int { return b.Year() - a.Year() },
		func(a, b time.Time) int { return int(b.Month()) - int(a.Month()) + (b.Year()-a.Year())*12 },
		func(a, b time.Time) int { d := dayDiff(a, b); return (d - d%7) / 7 },
		dayDiff,
	}
	for i, differ := range differs {
		res[i] = differ(cursor, later)
		high := plus(res)
		if high.After(later) {
			res[i]--
			cursor = plus(res)
			if cursor.After(later) {
				res[i]--
				cursor = plus(res)
			}
		} else {
			cursor = high
		}
	}
	rem := float64(later.UnixMilli() - cursor.UnixMilli())
	day := 86400000.0
	total := float64(res[0])*365*day + float64(res[1])*30*day + float64(res[2])*7*day + float64(res[3])*day + rem
	return sign * total
}
