package liquid

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/osteele/liquid"
	"github.com/osteele/tuesday"
	yaml "gopkg.in/yaml.v2"

	"github.com/hogwire/hogwire/jsonscan"
)

// filterNames are the filters a template may use: the engine's standard
// set and addFilters'. The engine reports an unknown filter only when it
// runs, so Parse checks the names.
const filterNames = `default json compact concat join map reverse sort first last uniq date abs ceil floor
	modulo minus plus times divided_by round size append capitalize downcase escape escape_once
	newline_to_br prepend remove remove_first replace replace_first sort_natural slice split strip_html
	strip_newlines strip lstrip rstrip truncate truncatewords upcase url_encode url_decode inspect type raw`

// checkFilters returns an error naming the first unknown filter in expr.
func checkFilters(expr string) error {
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '|':
			j := i + 1
			for j < len(expr) && (expr[j] == ' ' || expr[j] == '\t' || expr[j] == '\n' || expr[j] == '\r') {
				j++
			}
			k := j
			for k < len(expr) && (expr[k] == '_' || expr[k] >= 'a' && expr[k] <= 'z' || expr[k] >= 'A' && expr[k] <= 'Z' || expr[k] >= '0' && expr[k] <= '9') {
				k++
			}
			if name := expr[j:k]; name != "" && !slices.Contains(strings.Fields(filterNames), name) {
				return fmt.Errorf("undefined filter %q", name)
			}
		}
	}
	return nil
}

// loopFilter is the filter rewrite puts on every loop's collection.
const loopFilter = "hogwire_loop"

// addFilters registers what PostHog's LiquidJS has and the standard set
// lacks or does differently, and size-checked versions of the filters
// that build strings or arrays (so that a loop doubling a string stops at
// the limit instead of exhausting memory).
func addFilters(e *liquid.Engine) {
	e.RegisterFilter(loopFilter, iterate)
	// raw only marks an output as not to be escaped (see rewrite).
	e.RegisterFilter("raw", func(v any) any { return v })
	e.RegisterFilter("date", date)
	e.RegisterFilter("json", func(v any) string { return string(appendJSON(nil, v)) })
	e.RegisterFilter("append", func(s, suffix any) string { return capped(toString(s) + toString(suffix)) })
	e.RegisterFilter("prepend", func(s, prefix any) string { return capped(toString(prefix) + toString(s)) })
	e.RegisterFilter("replace", func(s, old, repl any) string {
		return capped(strings.ReplaceAll(toString(s), toString(old), toString(repl)))
	})
	e.RegisterFilter("replace_first", func(s, old, repl any) string {
		return capped(strings.Replace(toString(s), toString(old), toString(repl), 1))
	})
	e.RegisterFilter("join", func(a []any, sep func(string) string) string {
		parts := make([]string, len(a))
		for i, x := range a {
			parts[i] = toString(x)
		}
		return capped(strings.Join(parts, sep(" ")))
	})
	e.RegisterFilter("concat", func(a, c []any) []any {
		if len(a)+len(c) > maxArray {
			panic(limitPanic{fmt.Errorf("%w: an array is longer than %d elements", ErrLimit, maxArray)})
		}
		return append(slices.Clip(a), c...)
	})
}

// Strings and arrays that filters and capture build are bounded, so that
// a loop that doubles a string stops at the limit instead of exhausting
// memory. Like the iteration budget, this unwinds the render.
const (
	maxString = DefaultMaxOutput
	maxArray  = maxString / 8
)

// limitPanic carries a limit error up through the engine to Render. It is
// not an error, so that the engine's recovery passes it on untouched.
type limitPanic struct{ err error }

func capped(s string) string {
	if len(s) > maxString {
		panic(limitPanic{fmt.Errorf("%w: a string is longer than %d bytes", ErrLimit, maxString)})
	}
	return s
}

func toString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return formatNumber(v)
	}
	return fmt.Sprint(v)
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// counted is a loop's collection, each step counted against the budget.
type counted struct {
	n  int
	at func(int) any
	b  *budget
}

func (c counted) Len() int { return c.n }

func (c counted) Index(i int) any {
	c.b.tick()
	return c.at(i)
}

// iterate turns whatever a loop iterates over into a counted collection:
// arrays, objects (as [key, value] pairs, in order), ranges.
func iterate(v any, b *budget) any {
	if b == nil {
		// Only rewrite adds this filter, always with the budget.
		return nil
	}
	switch v := v.(type) {
	case nil:
		return nil
	case interface {
		Len() int
		Index(int) any
	}:
		return counted{n: v.Len(), at: v.Index, b: b}
	case yaml.MapSlice:
		return counted{n: len(v), at: func(i int) any { return []any{v[i].Key, v[i].Value} }, b: b}
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v))
		return counted{n: len(keys), at: func(i int) any { return []any{keys[i], v[keys[i]]} }, b: b}
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Array, reflect.Slice:
		return counted{n: rv.Len(), at: func(i int) any { return rv.Index(i).Interface() }, b: b}
	}
	return nil
}

// date formats a time with strftime directives, as LiquidJS's date
// filter does: the value may be a time, "now" or "today", an ISO 8601
// date or timestamp, or Unix seconds. A value that is not a date is
// returned as it is.
func date(v any, format func(string) string) (any, error) {
	t, ok := toTime(v)
	if !ok {
		return v, nil
	}
	return tuesday.Strftime(format("%a, %b %d, %y"), t)
}

var timeLayouts = []string{
	time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999", "2006-01-02T15:04", "2006-01-02", time.RFC1123Z, time.RFC1123,
}

func toTime(v any) (time.Time, bool) {
	switch v := v.(type) {
	case time.Time:
		return v, true
	case float64:
		return unix(v), true
	case int:
		return time.Unix(int64(v), 0).UTC(), true
	case string:
		s := strings.TrimSpace(v)
		switch strings.ToLower(s) {
		case "now", "today":
			return time.Now(), true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return unix(f), true
		}
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

func unix(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// appendJSON writes v as JSON with object keys in their order, as
// JavaScript's JSON.stringify does for the json filter.
func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case yaml.MapSlice:
		b = append(b, '{')
		for i, item := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, toString(item.Key))
			b = append(b, ':')
			b = appendJSON(b, item.Value)
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, x)
		}
		return append(b, ']')
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return append(b, "null"...)
		}
		return append(b, formatNumber(v)...)
	case time.Time:
		return appendJSON(b, v.UTC().Format("2006-01-02T15:04:05.000Z"))
	case string:
		return jsonscan.AppendString(b, v)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, j...)
}
