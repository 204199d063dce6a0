package capture

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// maxDistinctIDLen is where PostHog cuts distinct ids.
const maxDistinctIDLen = 200

// futureCutoff is how far in the future a timestamp may be before PostHog
// replaces it with the ingest time.
const futureCutoff = 23 * time.Hour

// Rejection says why one event of a request was refused.
type Rejection struct {
	Index  int    `json:"index"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// fieldError is an event's validation failure before its index is known.
type fieldError struct{ field, reason string }

// clock is what an event's timestamp is computed from.
type clock struct {
	now time.Time
	// sentAt is the request's send time by the client's clock; zero when
	// the request did not say.
	sentAt time.Time
}

// convertEvent turns one decoded PostHog event into an Event. It reads raw
// but never modifies it.
func convertEvent(raw any, c clock) (*hogwirev1.Event, *fieldError) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, &fieldError{"", "event is not a JSON object"}
	}
	name, ok := m["event"].(string)
	if !ok || name == "" {
		if v := m["event"]; v != nil && !ok {
			return nil, &fieldError{"event", "event name must be a string"}
		}
		return nil, &fieldError{"event", "event name is missing or empty"}
	}
	props := map[string]any{}
	switch p := m["properties"].(type) {
	case nil:
	case map[string]any:
		props = p
	default:
		return nil, &fieldError{"properties", "properties must be a JSON object"}
	}

	distinctID := distinctIDOf(m["distinct_id"])
	if distinctID == "" {
		distinctID = distinctIDOf(m["$distinct_id"])
	}
	if distinctID == "" {
		distinctID = distinctIDOf(props["distinct_id"])
	}
	if distinctID == "" {
		return nil, &fieldError{"distinct_id", "distinct_id is missing or empty"}
	}

	var id string
	switch u := m["uuid"].(type) {
	case nil:
	case string:
		if u != "" {
			parsed, err := uuid.Parse(u)
			if err != nil {
				return nil, &fieldError{"uuid", "uuid is not a valid UUID"}
			}
			id = parsed.String()
		}
	default:
		return nil, &fieldError{"uuid", "uuid must be a string"}
	}
	if id == "" {
		v7, err := uuid.NewV7()
		if err != nil {
			// NewV7 fails only when crypto/rand does.
			return nil, &fieldError{"uuid", "cannot generate a uuid: " + err.Error()}
		}
		id = v7.String()
	}

	set, fe := mergedObject(props, m, "$set")
	if fe != nil {
		return nil, fe
	}
	setOnce, fe := mergedObject(props, m, "$set_once")
	if fe != nil {
		return nil, fe
	}
	groups, fe := groupsOf(props["$groups"])
	if fe != nil {
		return nil, fe
	}

	sentAt := c.sentAt
	if t, ok := parseTime(m["sent_at"]); ok {
		sentAt = t
	}
	if ignore, _ := props["$ignore_sent_at"].(bool); ignore {
		sentAt = time.Time{}
	}
	var offset *float64
	if o, ok := m["offset"].(float64); ok {
		offset = &o
	}
	ts, hasTS := parseTime(m["timestamp"])

	ev := &hogwirev1.Event{
		Uuid:       id,
		Event:      name,
		DistinctId: distinctID,
		Properties: toStruct(props),
		Timestamp:  timestamppb.New(eventTime(ts, hasTS, offset, sentAt, c.now)),
		Groups:     groups,
	}
	if s, ok := m["elements_chain"].(string); ok {
		ev.ElementsChain = s
	} else if s, ok := props["$elements_chain"].(string); ok {
		ev.ElementsChain = s
	}
	if set != nil {
		ev.Set = toStruct(set)
	}
	if setOnce != nil {
		ev.SetOnce = toStruct(setOnce)
	}
	return ev, nil
}

// distinctIDOf returns a distinct id as PostHog stores it: strings as they
// are, other JSON values encoded, cut to 200 characters; "" when absent.
func distinctIDOf(v any) string {
	var s string
	switch d := v.(type) {
	case nil:
		return ""
	case string:
		s = d
	case float64:
		s = strconv.FormatFloat(d, 'f', -1, 64)
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return ""
		}
		s = string(b)
	}
	if utf8.RuneCountInString(s) > maxDistinctIDLen {
		n := 0
		for i := range s {
			if n == maxDistinctIDLen {
				s = s[:i]
				break
			}
			n++
		}
	}
	return s
}

// mergedObject merges properties[key] and event[key] (the latter winning
// per key, as PostHog's ingestion does); nil when neither is present.
func mergedObject(props, event map[string]any, key string) (map[string]any, *fieldError) {
	inProps, fe := objectOrNil(props[key], "properties."+key)
	if fe != nil {
		return nil, fe
	}
	top, fe := objectOrNil(event[key], key)
	if fe != nil {
		return nil, fe
	}
	switch {
	case top == nil:
		return inProps, nil
	case inProps == nil:
		return top, nil
	}
	merged := make(map[string]any, len(inProps)+len(top))
	for k, v := range inProps {
		merged[k] = v
	}
	for k, v := range top {
		merged[k] = v
	}
	return merged, nil
}

func objectOrNil(v any, field string) (map[string]any, *fieldError) {
	switch o := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return o, nil
	default:
		return nil, &fieldError{field, field + " must be a JSON object"}
	}
}

// groupsOf reads $groups: group type to group key. Numeric keys are
// formatted, as PostHog's SDKs allow them; null keys are skipped.
func groupsOf(v any) (map[string]string, *fieldError) {
	const field = "properties.$groups"
	o, fe := objectOrNil(v, field)
	if fe != nil || len(o) == 0 {
		return nil, fe
	}
	groups := make(map[string]string, len(o))
	for k, gv := range o {
		switch key := gv.(type) {
		case nil:
		case string:
			groups[k] = key
		case float64:
			groups[k] = strconv.FormatFloat(key, 'f', -1, 64)
		default:
			return nil, &fieldError{field, "group key of " + strconv.Quote(k) + " must be a string or a number"}
		}
	}
	return groups, nil
}

// eventTime applies PostHog's timestamp rules: skew correction with
// sent_at, offset in milliseconds before now, and no timestamps more than
// 23 hours ahead.
func eventTime(ts time.Time, hasTS bool, offset *float64, sentAt, now time.Time) time.Time {
	t := now
	if hasTS {
		if !sentAt.IsZero() {
			t = now.Add(ts.Sub(sentAt))
		} else {
			t = ts
		}
	}
	if offset != nil && !math.IsNaN(*offset) && math.Abs(*offset) < float64(math.MaxInt64/int64(time.Millisecond)) {
		t = now.Add(-time.Duration(*offset * float64(time.Millisecond)))
	}
	if t.Sub(now) > futureCutoff {
		t = now
	}
	if y := t.Year(); y < 0 || y > 9999 {
		t = time.Unix(0, 0)
	}
	return t.UTC()
}

// parseTime reads an ISO 8601 or RFC 2822 string, or epoch seconds or
// milliseconds as a number or numeric string. Times without a zone are UTC.
func parseTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case string:
		s := strings.TrimSpace(t)
		if s == "" {
			return time.Time{}, false
		}
		if !strings.ContainsAny(s, "-:/ ,") {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				return epochTime(f)
			}
		}
		// "+03" is not a zone Go parses; "+03:00" is.
		if n := len(s); n > 10 && (s[n-3] == '+' || s[n-3] == '-') && isDigit(s[n-2]) && isDigit(s[n-1]) && strings.ContainsAny(s, "T ") {
			s += ":00"
		}
		// The forms SDKs send, most common first.
		layouts := [...]string{
			time.RFC3339Nano,
			"2006-01-02T15:04:05.999999999",
			"2006-01-02 15:04:05.999999999Z07:00",
			"2006-01-02 15:04:05.999999999",
			"2006-01-02T15:04:05.999999999Z0700",
			"2006-01-02",
			time.RFC1123Z,
			time.RFC1123,
		}
		for _, layout := range layouts {
			if p, err := time.Parse(layout, s); err == nil {
				return p, true
			}
		}
	case float64:
		return epochTime(t)
	}
	return time.Time{}, false
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// epochTime reads seconds, or milliseconds when the number is too large to
// be seconds of this era.
func epochTime(f float64) (time.Time, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e15 {
		return time.Time{}, false
	}
	if f > 1e11 {
		return time.UnixMilli(int64(f)).UTC(), true
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// toStruct converts decoded JSON to a Struct without structpb's reflection
// and error path: encoding/json only produces the types handled here and
// only valid UTF-8 strings.
func toStruct(m map[string]any) *structpb.Struct {
	fields := make(map[string]*structpb.Value, len(m))
	for k, v := range m {
		fields[k] = toValue(v)
	}
	return &structpb.Struct{Fields: fields}
}

func toValue(v any) *structpb.Value {
	switch x := v.(type) {
	case string:
		return structpb.NewStringValue(x)
	case float64:
		return structpb.NewNumberValue(x)
	case bool:
		return structpb.NewBoolValue(x)
	case map[string]any:
		return structpb.NewStructValue(toStruct(x))
	case []any:
		vals := make([]*structpb.Value, len(x))
		for i, e := range x {
			vals[i] = toValue(e)
		}
		return structpb.NewListValue(&structpb.ListValue{Values: vals})
	default:
		return structpb.NewNullValue()
	}
}
