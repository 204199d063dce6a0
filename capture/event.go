package capture

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
)

// maxDistinctIDLen is where PostHog cuts distinct ids.
const maxDistinctIDLen = 200

// futureCutoff is how far in the future a timestamp may be before PostHog
// replaces it with the ingest time.
const futureCutoff = 23 * time.Hour

// Rejection says why one event of a request was refused.
type Rejection struct {
	Index int `json:"index"`
	// Field is the path of the offending value in the event, e.g.
	// "properties.cart.items" (empty for the event as a whole).
	Field string `json:"field"`
	// Rule is the rule broken: "required", "invalid", or one of the
	// limits (eventlimits' rule names, e.g. "max_depth").
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// The rules of an event's shape, besides the limits.
const (
	ruleRequired = "required"
	ruleInvalid  = "invalid"
)

// fieldError is an event's validation failure before its index is known.
type fieldError struct{ field, rule, reason string }

// clock is what an event's timestamp is computed from.
type clock struct {
	now time.Time
	// sentAt is the request's send time by the client's clock; zero when
	// the request did not say.
	sentAt time.Time
}

// Accessors for decoded JSON values; each reports whether v has the kind.
func asString(v *structpb.Value) (string, bool) {
	k, ok := v.GetKind().(*structpb.Value_StringValue)
	if !ok {
		return "", false
	}
	return k.StringValue, true
}

func asNumber(v *structpb.Value) (float64, bool) {
	k, ok := v.GetKind().(*structpb.Value_NumberValue)
	if !ok {
		return 0, false
	}
	return k.NumberValue, true
}

func asStruct(v *structpb.Value) (*structpb.Struct, bool) {
	k, ok := v.GetKind().(*structpb.Value_StructValue)
	if !ok || k.StructValue == nil {
		return nil, false
	}
	return k.StructValue, true
}

func asList(v *structpb.Value) ([]*structpb.Value, bool) {
	k, ok := v.GetKind().(*structpb.Value_ListValue)
	if !ok {
		return nil, false
	}
	return k.ListValue.GetValues(), true
}

// isNull is true for JSON null and for absent values.
func isNull(v *structpb.Value) bool {
	if v == nil {
		return true
	}
	_, ok := v.GetKind().(*structpb.Value_NullValue)
	return ok
}

// eventBox holds an Event with its Timestamp, so that the two come from
// one allocation; ingest makes a request's boxes at once.
type eventBox struct {
	ev hogwirev1.Event
	ts timestamppb.Timestamp
}

// uuidRandBytes is how many random bytes a uuid takes: a UUIDv7's other
// bytes are its time, version and variant.
const uuidRandBytes = 8

// uuidBlock is how many uuids a uuidGen makes at a time, at most.
const uuidBlock = 64

// uuidGen makes a request's UUIDv7s as uuid.NewV7 lays them out (48 bits
// of Unix milliseconds, the version, 12 bits of sub-millisecond sequence,
// the variant and 62 random bits), a block at a time: one clock reading,
// one crypto/rand read, one string and no other allocation for up to
// uuidBlock uuids, where
// uuid.NewV7FromReader and String cost a clock reading under a global
// lock and two allocations per event. Its uuids increase through the
// request, as uuid.NewV7's do; unlike those they are not ordered against
// other requests' within the same millisecond.
type uuidGen struct {
	// left is how many of the request's events are yet to be converted,
	// each of which may want a uuid: a block is no larger than they need.
	left int
	// unused holds the block's uuids not handed out yet, 36 bytes each.
	unused string
	// last is the time of the last uuid made: milliseconds << 12 | the
	// sequence.
	last int64
	// now is the clock (time.Now when nil).
	now func() time.Time
}

// next returns a new uuid.
func (g *uuidGen) next() (string, error) {
	if len(g.unused) == 0 {
		if err := g.fill(min(max(g.left, 1), uuidBlock)); err != nil {
			return "", err
		}
	}
	id := g.unused[:36]
	g.unused = g.unused[36:]
	return id, nil
}

func (g *uuidGen) fill(n int) error {
	var random [uuidRandBytes * uuidBlock]byte
	if _, err := rand.Read(random[:uuidRandBytes*n]); err != nil {
		return err
	}
	now := time.Now
	if g.now != nil {
		now = g.now
	}
	nano := now().UnixNano()
	milli := nano / int64(time.Millisecond)
	// As uuid.NewV7: the sequence is the sub-millisecond time in steps of
	// 256ns, and a uuid made no later than the last takes the next step.
	t := milli<<12 + (nano-milli*int64(time.Millisecond))>>8
	if t <= g.last {
		t = g.last + 1
	}
	var text [36 * uuidBlock]byte
	for i := range n {
		var u uuid.UUID
		ms, seq := t>>12, t&0xfff
		u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
		u[6], u[7] = 0x70|byte(seq>>8)&0x0f, byte(seq)
		copy(u[8:], random[uuidRandBytes*i:uuidRandBytes*(i+1)])
		u[8] = u[8]&0x3f | 0x80 // the variant, 10
		formatUUID(text[36*i:36*i+36], u)
		g.last = t
		t++
	}
	g.unused = string(text[:36*n])
	return nil
}

// formatUUID writes u to dst as uuid.UUID.String does.
func formatUUID(dst []byte, u uuid.UUID) {
	const digits = "0123456789abcdef"
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j], dst[j+1] = digits[b>>4], digits[b&0x0f]
		j += 2
	}
}

// convertEvent turns one decoded PostHog event into an Event, built in
// box; a uuid it makes comes from ids. The Event takes over raw's
// properties Struct; raw must not be used afterwards.
func convertEvent(raw *structpb.Value, c clock, box *eventBox, ids *uuidGen) (*hogwirev1.Event, *fieldError) {
	m, ok := asStruct(raw)
	if !ok {
		return nil, &fieldError{"", ruleInvalid, "event is not a JSON object"}
	}
	f := topFieldsOf(m.Fields)
	name, ok := asString(f.event)
	if !ok || name == "" {
		if !ok && !isNull(f.event) {
			return nil, &fieldError{"event", ruleInvalid, "event name must be a string"}
		}
		return nil, &fieldError{"event", ruleRequired, "event name is missing or empty"}
	}
	var props *structpb.Struct
	if pv := f.properties; !isNull(pv) {
		if props, ok = asStruct(pv); !ok {
			return nil, &fieldError{"properties", ruleInvalid, "properties must be a JSON object"}
		}
	} else {
		props = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	}
	pf := props.Fields

	distinctID := distinctIDOf(f.distinctID)
	if distinctID == "" {
		distinctID = distinctIDOf(f.dollarDistinctID)
	}
	if distinctID == "" {
		distinctID = distinctIDOf(pf["distinct_id"])
	}
	if distinctID == "" {
		return nil, &fieldError{"distinct_id", ruleRequired, "distinct_id is missing or empty"}
	}

	var id string
	if uv := f.uuid; !isNull(uv) {
		u, ok := asString(uv)
		if !ok {
			return nil, &fieldError{"uuid", ruleInvalid, "uuid must be a string"}
		}
		if u != "" {
			parsed, err := uuid.Parse(u)
			if err != nil {
				return nil, &fieldError{"uuid", ruleInvalid, "uuid is not a valid UUID"}
			}
			id = u
			if !canonicalUUID(u) {
				id = parsed.String()
			}
		}
	}
	if id == "" {
		v7, err := ids.next()
		if err != nil {
			// next fails only when crypto/rand does.
			return nil, &fieldError{"uuid", ruleInvalid, "cannot generate a uuid: " + err.Error()}
		}
		id = v7
	}

	if pf == nil {
		pf = map[string]*structpb.Value{}
		props.Fields = pf
	}
	set := mergedObject(pf, f.set, "$set")
	setOnce := mergedObject(pf, f.setOnce, "$set_once")
	groups, fe := groupsOf(pf["$groups"])
	if fe != nil {
		return nil, fe
	}

	sentAt := c.sentAt
	if t, ok := parseTime(f.sentAt); ok {
		sentAt = t
	}
	if iv, ok := pf["$ignore_sent_at"].GetKind().(*structpb.Value_BoolValue); ok && iv.BoolValue {
		sentAt = time.Time{}
	}
	var offset *float64
	if o, ok := asNumber(f.offset); ok {
		offset = &o
	}
	ts, hasTS := parseTime(f.timestamp)

	// As timestamppb.New sets it.
	t := eventTime(ts, hasTS, offset, sentAt, c.now)
	box.ts.Seconds, box.ts.Nanos = t.Unix(), int32(t.Nanosecond())
	ev := &box.ev
	ev.Uuid = id
	ev.Event = name
	ev.DistinctId = distinctID
	ev.Properties = props
	ev.Timestamp = &box.ts
	ev.Groups = groups
	ev.Set = set
	ev.SetOnce = setOnce
	if s, ok := asString(f.elementsChain); ok {
		ev.ElementsChain = s
	} else if s, ok := asString(pf["$elements_chain"]); ok {
		ev.ElementsChain = s
	}
	return ev, nil
}

// canonicalUUID reports whether u, a valid UUID, is already in the form
// uuid.UUID.String gives (36 characters, lower case): most SDKs send
// that, and formatting it again would cost a string per event.
func canonicalUUID(u string) bool {
	if len(u) != 36 {
		return false
	}
	for i := 0; i < len(u); i++ {
		switch c := u[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		default:
			return false
		}
	}
	return true
}

// distinctIDOf returns a distinct id as PostHog stores it: strings as they
// are, other JSON values encoded, cut to 200 characters; "" when absent.
func distinctIDOf(v *structpb.Value) string {
	var s string
	switch k := v.GetKind().(type) {
	case nil, *structpb.Value_NullValue:
		return ""
	case *structpb.Value_StringValue:
		s = k.StringValue
	case *structpb.Value_NumberValue:
		s = strconv.FormatFloat(k.NumberValue, 'f', -1, 64)
	default:
		// encoding/json sorts object keys, as PostHog's serde_json does.
		b, err := json.Marshal(v.AsInterface())
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

// topFields are the fields of an event's top level that convertEvent
// reads, each nil when absent.
type topFields struct {
	event, properties, distinctID, dollarDistinctID, uuid  *structpb.Value
	set, setOnce, sentAt, offset, timestamp, elementsChain *structpb.Value
}

// topFieldsOf picks the fields convertEvent reads out of an event's top
// level in one pass: an event has a handful of them, and a lookup for
// each of the eleven names cost more than the pass.
func topFieldsOf(fields map[string]*structpb.Value) topFields {
	var t topFields
	for k, v := range fields {
		switch k {
		case "event":
			t.event = v
		case "properties":
			t.properties = v
		case "distinct_id":
			t.distinctID = v
		case "$distinct_id":
			t.dollarDistinctID = v
		case "uuid":
			t.uuid = v
		case "$set":
			t.set = v
		case "$set_once":
			t.setOnce = v
		case "sent_at":
			t.sentAt = v
		case "offset":
			t.offset = v
		case "timestamp":
			t.timestamp = v
		case "elements_chain":
			t.elementsChain = v
		}
	}
	return t
}

// mergedObject merges properties[key] and top, the event's own key (the
// latter winning per key, as PostHog's ingestion does) into a new Struct
// that shares no values with the properties; nil when neither is present.
// A $set or $set_once that is not an object is left out of the event's
// set fields but not refused, as PostHog accepts it: it stays in (or, at
// the top level, moves to) the properties, where the person store reports
// and ignores it.
func mergedObject(props map[string]*structpb.Value, top *structpb.Value, key string) *structpb.Struct {
	// Neither error is reported, so neither needs its field's path.
	inProps, fe := objectOrNil(props[key], "")
	if fe != nil {
		inProps = nil
	}
	topObject, fe := objectOrNil(top, "")
	if fe != nil {
		if _, ok := props[key]; !ok && props != nil {
			props[key] = top
		}
		topObject = nil
	}
	if inProps == nil {
		return topObject
	}
	merged := cloneStruct(inProps)
	for k, v := range topObject.GetFields() {
		merged.Fields[k] = v
	}
	return merged
}

// cloneStruct is proto.Clone for the Structs the parser builds (no
// unknown fields), without walking them by reflection.
func cloneStruct(s *structpb.Struct) *structpb.Struct {
	fields := make(map[string]*structpb.Value, len(s.GetFields()))
	for k, v := range s.GetFields() {
		fields[k] = cloneValue(v)
	}
	return &structpb.Struct{Fields: fields}
}

func cloneValue(v *structpb.Value) *structpb.Value {
	switch k := v.GetKind().(type) {
	case nil:
		if v == nil {
			return nil
		}
		return &structpb.Value{}
	case *structpb.Value_NullValue:
		return &structpb.Value{Kind: &structpb.Value_NullValue{NullValue: k.NullValue}}
	case *structpb.Value_NumberValue:
		return &structpb.Value{Kind: &structpb.Value_NumberValue{NumberValue: k.NumberValue}}
	case *structpb.Value_StringValue:
		return &structpb.Value{Kind: &structpb.Value_StringValue{StringValue: k.StringValue}}
	case *structpb.Value_BoolValue:
		return &structpb.Value{Kind: &structpb.Value_BoolValue{BoolValue: k.BoolValue}}
	case *structpb.Value_StructValue:
		if k.StructValue == nil {
			return &structpb.Value{Kind: &structpb.Value_StructValue{}}
		}
		return &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: cloneStruct(k.StructValue)}}
	case *structpb.Value_ListValue:
		if k.ListValue == nil {
			return &structpb.Value{Kind: &structpb.Value_ListValue{}}
		}
		var values []*structpb.Value
		if src := k.ListValue.Values; src != nil {
			values = make([]*structpb.Value, len(src))
			for i, e := range src {
				values[i] = cloneValue(e)
			}
		}
		return &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: &structpb.ListValue{Values: values}}}
	}
	panic(fmt.Sprintf("capture: cloning a Value of kind %T", v.GetKind()))
}

func objectOrNil(v *structpb.Value, field string) (*structpb.Struct, *fieldError) {
	if isNull(v) {
		return nil, nil
	}
	o, ok := asStruct(v)
	if !ok {
		return nil, &fieldError{field, ruleInvalid, field + " must be a JSON object"}
	}
	return o, nil
}

// groupsOf reads $groups: group type to group key. Numeric keys are
// formatted, as PostHog's SDKs allow them; null keys are skipped.
func groupsOf(v *structpb.Value) (map[string]string, *fieldError) {
	const field = "properties.$groups"
	o, fe := objectOrNil(v, field)
	if fe != nil || len(o.GetFields()) == 0 {
		return nil, fe
	}
	groups := make(map[string]string, len(o.Fields))
	for k, gv := range o.Fields {
		switch key := gv.GetKind().(type) {
		case *structpb.Value_NullValue:
		case *structpb.Value_StringValue:
			groups[k] = key.StringValue
		case *structpb.Value_NumberValue:
			groups[k] = strconv.FormatFloat(key.NumberValue, 'f', -1, 64)
		default:
			return nil, &fieldError{field, ruleInvalid, "group key of " + strconv.Quote(k) + " must be a string or a number"}
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
	if y := t.Year(); y < 1 || y > 9999 {
		t = time.Unix(0, 0)
	}
	return t.UTC()
}

// parseTime reads an ISO 8601 or RFC 2822 string, or epoch seconds or
// milliseconds as a number or numeric string. Times without a zone are UTC.
func parseTime(v *structpb.Value) (time.Time, bool) {
	switch t := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		s := strings.TrimSpace(t.StringValue)
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
	case *structpb.Value_NumberValue:
		return epochTime(t.NumberValue)
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

// maxListed bounds the rejections an answer lists, so that a batch of
// ten thousand bad events does not make a huge answer.
const maxListed = 100

// rejections collects why the events of a request were refused.
type rejections struct {
	list []Rejection
	// count is how many there are, listed or not; size says whether any
	// breaks a size limit (413 rather than 400).
	count int
	size  bool
}

func (r *rejections) add(index int, field, rule, reason string) {
	r.count++
	r.size = r.size || eventlimits.Rule(rule).SizeRule()
	if len(r.list) < maxListed {
		r.list = append(r.list, Rejection{Index: index, Field: field, Rule: rule, Reason: reason})
	}
}

// summary describes the rejections in one line, for errors and logs.
func (r *rejections) summary() string {
	first := r.list[0]
	s := fmt.Sprintf("event %d", first.Index)
	if first.Field != "" {
		s += " (" + first.Field + ")"
	}
	s += " breaks " + first.Rule + ": " + first.Reason
	if r.count > 1 {
		s += fmt.Sprintf("; %d events are refused in all, listed in \"rejected\"", r.count)
	}
	return s + "; nothing was stored"
}

// checkLimits checks an event against the limits and returns its stored
// size.
func checkLimits(l eventlimits.Limits, ev *hogwirev1.Event, index int, rej *rejections) int {
	size, v := l.Check(ev)
	if v != nil {
		rej.add(index, v.Field, string(v.Rule), v.Reason)
	}
	return size
}

// cutField returns the top-level field of a raw event that holds a
// container the parser cut (see parseJSON), or false.
func cutField(raw *structpb.Value) (string, bool) {
	m, ok := asStruct(raw)
	if !ok {
		return "", holdsCut(raw)
	}
	for k, v := range m.Fields {
		if holdsCut(v) {
			return k, true
		}
	}
	return "", false
}

func holdsCut(v *structpb.Value) bool {
	if v == cutValue {
		return true
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		for _, e := range k.StructValue.GetFields() {
			if holdsCut(e) {
				return true
			}
		}
	case *structpb.Value_ListValue:
		for _, e := range k.ListValue.GetValues() {
			if holdsCut(e) {
				return true
			}
		}
	}
	return false
}
