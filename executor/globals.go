package executor

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// Source says where the links in the globals point. PostHog builds
// project.url, event.url, person.url, each group's url and source.url from
// its SITE_URL; hogwire builds them from URL, the base address of the console
// or API that serves the project's resources.
type Source struct {
	// URL is the base address, e.g. "https://hogwire.example.com", without
	// a trailing slash. Empty leaves the links empty (project.url still
	// comes from the project's site_url).
	URL string
}

// personDisplayProperties are the person properties PostHog shows as a
// person's name, in order (team.person_display_name_properties' default).
var personDisplayProperties = [...]string{"email", "name", "username"}

// Globals are the Hog globals of one event, built once by NewEvent and shared
// by every destination that runs on it. They are immutable and safe for
// concurrent use: the VM never modifies globals, and every Invoke adds its
// per-destination part (source, inputs) in a dict of its own.
type Globals struct {
	event, person, groups, project vm.Value

	// The filter globals are built on first use: they are as big as all
	// the others together and an event whose destinations have no filters
	// never needs them.
	filterOnce  sync.Once
	filter      vm.Value
	filterParts filterParts

	// props and personProps are the event's and its person's properties,
	// which routing reads before any filter runs.
	props, personProps *vm.Dict

	name       string // the event name
	uuid       string
	distinctID string
	personID   string
	eventURL   string
	projectURL string
	// request is the request global of a source webhook's invocation, and
	// req the request it shows (nil for an event).
	request vm.Value
	req     *Request
	// execCount is the event's $hog_function_execution_count, which
	// postHogCapture uses to stop capture loops.
	execCount float64
	// eventBuf and personBuf hold the event and person dicts, and
	// emptyPersonProps and emptyGroups the person's properties and the
	// groups when the event has none, which live as long as the Globals:
	// one allocation for them all.
	eventBuf                      vm.DictBuf
	personBuf                     vm.DictBuf4
	emptyPersonProps, emptyGroups vm.DictBuf0
}

// Event returns the event's name.
func (g *Globals) Event() string { return g.name }

// UUID returns the event's uuid.
func (g *Globals) UUID() string { return g.uuid }

// DistinctID returns the event's distinct_id.
func (g *Globals) DistinctID() string { return g.distinctID }

// PropertyDicts returns the event's properties and its person's, as the
// filter globals hold them. Callers must not modify them.
func (g *Globals) PropertyDicts() (event, person *vm.Dict) { return g.props, g.personProps }

// Value returns the invocation globals without the per-destination part:
// {event, person, groups, project}. Callers must not modify it.
func (g *Globals) Value() vm.Value {
	d := vm.NewDict(4)
	d.AppendString("event", g.event)
	d.AppendString("person", g.person)
	d.AppendString("groups", g.groups)
	d.AppendString("project", g.project)
	return vm.DictValue(d)
}

// FilterValue returns the filter globals (see package filters), frozen
// (see vm.Freeze): the VM shares them with every filter run rather than
// copying what a filter takes of them, and a Matcher remembers what the
// filters it ran read of them for the next ones.
func (g *Globals) FilterValue() vm.Value {
	g.filterOnce.Do(func() {
		g.filter = filterGlobals(g, g.filterParts)
		g.filterParts = filterParts{}
		vm.Freeze(g.filter)
	})
	return g.filter
}

// filterParts is what filterGlobals needs beyond the Globals' own fields.
type filterParts struct {
	properties, personProps vm.Value
	chain, timestamp        string
	groupIDs                [5]string
}

// Project is the project part of the globals, the same for every event of
// the project: build it once with NewProject.
type Project struct {
	value vm.Value // the project global
	url   string   // the base of the event, person and group links
}

// NewProject builds the project part of the globals.
func NewProject(project *hogwirev1.Project, source Source) *Project {
	p := &Project{}
	if source.URL != "" && project.GetName() != "" {
		p.url = source.URL + "/" + project.GetName()
	}
	d := vm.NewDict(3)
	d.AppendString("id", vm.String(lastSegment(project.GetName())))
	d.AppendString("name", vm.String(project.GetDisplayName()))
	siteURL := project.GetSiteUrl()
	if siteURL == "" {
		siteURL = p.url
	}
	d.AppendString("url", vm.String(siteURL))
	p.value = vm.DictValue(d)
	vm.Freeze(p.value)
	return p
}

// NewEvent builds the globals of one event.
//
// The person is ev.person when the sender gave one; otherwise its id is the
// distinct_id (PostHog would look the person up, and use an empty stub when
// there is none). Either way its properties are updated with what the event
// sets, as PostHog's ingestion does before destinations see the event:
// $set_once where a property is not set yet, then $set (from the event's
// set/set_once fields and the $set/$set_once properties, as PostHog SDKs
// send them). person.name is
// PostHog's display name: the first of the email, name and username
// properties that has a value (JSON-encoded when it is not a string), else
// the distinct_id, trimmed.
//
// Groups come from ev.groups and the $groups property. hogwire has no
// registry of group types, so a group type's index (used by $group_N and
// group_N in filters and by the group's url) is its position among the
// event's group type names in sorted order.
func NewEvent(ev *hogwirev1.Event, project *hogwirev1.Project, source Source) *Globals {
	return newEventGlobals(ev, NewProject(project, source))
}

// eventParts is an event with its objects already Hog dicts: what NewEvent
// reads from an Event message and NewEventFromWire from its encoding.
type eventParts struct {
	uuid, name, distinctID, elementsChain string
	timestamp                             time.Time
	hasTimestamp                          bool
	// props has room for two more entries ($set and $set_once).
	props *vm.Dict
	// set and setOnce are the event's set and set_once fields (nil when
	// absent), personProps the sender's person's properties (nil: none).
	set, setOnce, personProps *vm.Dict
	hasPerson                 bool
	personID                  string
	groups                    [][2]string // the groups field: type, key
	// stored is the person and groups from a person store (nil: none).
	stored *Person
}

// globals builds the Globals; it takes ownership of p's dicts.
func (p *eventParts) globals(project *Project) *Globals {
	g := &Globals{name: p.name, uuid: p.uuid, distinctID: p.distinctID, projectURL: project.url, project: project.value}
	timestamp, personURL := g.eventStrings(p)

	propsDict := p.props
	propSet, hasSet := propsDict.GetString("$set")
	propSetOnce, hasSetOnce := propsDict.GetString("$set_once")
	// PostHog's stored event keeps $set and $set_once among its properties;
	// hogwire's API carries them apart, so put them back for code that reads
	// event.properties.$set.
	if p.set != nil && !hasSet {
		propsDict.AppendString("$set", vm.DictValue(p.set))
	}
	if p.setOnce != nil && !hasSetOnce {
		propsDict.AppendString("$set_once", vm.DictValue(p.setOnce))
	}
	properties := vm.DictValue(propsDict)
	if c, ok := propsDict.GetString("$hog_function_execution_count"); ok && c.Kind() == vm.KindNumber {
		g.execCount = c.AsNumber()
	}

	elementsChain := p.elementsChain
	if elementsChain == "" {
		if c, ok := propsDict.GetString("$elements_chain"); ok && c.Kind() == vm.KindString {
			elementsChain = c.AsString()
		}
	}

	event := g.eventBuf.Dict(7)
	event.AppendString("uuid", vm.String(g.uuid))
	event.AppendString("event", vm.String(g.name))
	event.AppendString("distinct_id", vm.String(g.distinctID))
	event.AppendString("properties", properties)
	event.AppendString("elements_chain", vm.String(elementsChain))
	event.AppendString("timestamp", vm.String(timestamp))
	event.AppendString("url", vm.String(g.eventURL))
	g.event = vm.DictValue(event)

	// Person.
	g.personID = g.distinctID
	if p.hasPerson {
		g.personID = p.personID
	}
	pd := p.personProps
	if !p.hasPerson && p.stored != nil {
		g.personID = p.stored.ID
		pd = vm.FromGo(p.stored.Properties).AsDict()
	}
	if pd == nil {
		pd = g.emptyPersonProps.Dict(0)
	}
	// $set_once where a property is not set yet, then $set, each from the
	// properties and from the event's own field.
	for i, s := range [...]*vm.Dict{propSetOnce.AsDict(), p.setOnce, propSet.AsDict(), p.set} {
		if s == nil {
			continue
		}
		once := i < 2
		vals := s.Values()
		for j, k := range s.Keys() {
			if _, ok := pd.Get(k); ok && once {
				continue
			}
			pd.Set(k, vals[j])
		}
	}
	personProps := vm.DictValue(pd)
	person := g.personBuf.Dict(4)
	person.AppendString("id", vm.String(g.personID))
	person.AppendString("properties", personProps)
	person.AppendString("name", vm.String(personName(pd, g.distinctID)))
	person.AppendString("url", vm.String(personURL))
	g.person = vm.DictValue(person)

	// Groups: the $groups property overlaid with the groups field.
	groupKeys := map[string]string{}
	if gs, ok := propsDict.GetString("$groups"); ok && gs.Kind() == vm.KindDict {
		vals := gs.AsDict().Values()
		for i, t := range gs.AsDict().Keys() {
			switch v := vals[i]; {
			case v.Kind() == vm.KindString:
				groupKeys[t.AsString()] = v.AsString()
			case v.Kind() == vm.KindNumber:
				groupKeys[t.AsString()] = strconv.FormatFloat(v.AsNumber(), 'f', -1, 64)
			}
		}
	}
	for _, tk := range p.groups {
		groupKeys[tk[0]] = tk[1]
	}
	types := make([]string, 0, len(groupKeys))
	for t := range groupKeys {
		types = append(types, t)
	}
	slices.Sort(types)
	groups := g.emptyGroups.Dict(len(types))
	groupIDs := [5]string{}
	for i, t := range types {
		key := groupKeys[t]
		groupURL := ""
		if g.projectURL != "" {
			groupURL = joinURL(g.projectURL, "/groups/"+strconv.Itoa(i)+"/", key, "", "")
		}
		gd := vm.NewDict(5)
		gd.AppendString("id", vm.String(key))
		gd.AppendString("type", vm.String(t))
		gd.AppendString("index", vm.Int(int64(i)))
		gd.AppendString("url", vm.String(groupURL))
		gprops := vm.DictValue(vm.NewDict(0))
		if props, ok := p.stored.groupProperties(t, key); ok {
			gprops = vm.FromGo(props)
		}
		gd.AppendString("properties", gprops)
		groups.AppendString(t, vm.DictValue(gd))
		if i < len(groupIDs) {
			groupIDs[i] = key
		}
	}
	g.groups = vm.DictValue(groups)

	g.props, g.personProps = propsDict, pd
	// Every destination's program reads these: frozen, they are shared
	// with each run rather than copied into it.
	vm.Freeze(g.event)
	vm.Freeze(g.person)
	vm.Freeze(g.groups)
	g.filterParts = filterParts{properties: properties, personProps: personProps, chain: elementsChain, timestamp: timestamp, groupIDs: groupIDs}
	return g
}

// eventStrings sets g.eventURL and returns the event's timestamp and its
// person's link, all three carved from one string: they were three of the
// twelve allocations of decoding a small event and building its globals.
func (g *Globals) eventStrings(p *eventParts) (timestamp, personURL string) {
	var tsBuf [len(isoLayout)]byte
	var ts []byte
	if p.hasTimestamp {
		ts = appendISOTimestamp(tsBuf[:0], p.timestamp)
	}
	base := g.projectURL
	if base == "" {
		return string(ts), ""
	}
	const eventPath, personPath = "/events/", "/person/"
	var sb strings.Builder
	sb.Grow(len(ts) +
		len(base) + len(eventPath) + uriComponentLen(g.uuid) + 1 + uriComponentLen(string(ts)) +
		len(base) + len(personPath) + uriComponentLen(g.distinctID))
	sb.Write(ts)
	sb.WriteString(base)
	sb.WriteString(eventPath)
	writeURIComponent(&sb, g.uuid)
	sb.WriteByte('/')
	writeURIComponent(&sb, string(ts))
	eventEnd := sb.Len()
	sb.WriteString(base)
	sb.WriteString(personPath)
	writeURIComponent(&sb, g.distinctID)
	all := sb.String()
	g.eventURL = all[len(ts):eventEnd]
	return all[:len(ts)], all[eventEnd:]
}

// filterGlobals builds the globals filters read (see package filters).
func filterGlobals(g *Globals, p filterParts) vm.Value {
	return filters.Globals(&filters.Event{
		UUID: g.uuid, Name: g.name, DistinctID: g.distinctID, Timestamp: p.timestamp,
		Properties: p.properties, ElementsChain: p.chain,
		Person: &filters.Person{ID: g.personID, Properties: p.personProps},
		Groups: p.groupIDs,
	})
}

// personName returns PostHog's display name of a person.
func personName(props *vm.Dict, distinctID string) string {
	for _, k := range personDisplayProperties {
		v, ok := props.GetString(k)
		if !ok || !v.Truthy() {
			continue
		}
		if v.Kind() == vm.KindString {
			return strings.TrimSpace(v.AsString())
		}
		if b, err := v.MarshalJSON(); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return strings.TrimSpace(distinctID)
}

func lastSegment(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// isoTimestamp formats t as PostHog's globals show timestamps, in
// time.Format's layout "2006-01-02T15:04:05.000Z", without its layout
// parsing, which was a third of building an event's globals.
func isoTimestamp(t time.Time) string {
	var buf [len(isoLayout)]byte
	return string(appendISOTimestamp(buf[:0], t))
}

// appendISOTimestamp appends isoTimestamp(t) to dst.
func appendISOTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, isoLayout) // a sign or a fifth digit
	}
	hour, minute, sec := t.Clock()
	var b [len(isoLayout)]byte
	digits := func(at, n, v int) {
		for i := at + n - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	digits(0, 4, year)
	b[4] = '-'
	digits(5, 2, int(month))
	b[7] = '-'
	digits(8, 2, day)
	b[10] = 'T'
	digits(11, 2, hour)
	b[13] = ':'
	digits(14, 2, minute)
	b[16] = ':'
	digits(17, 2, sec)
	b[19] = '.'
	digits(20, 3, t.Nanosecond()/1e6) // truncated, as Format does
	b[23] = 'Z'
	return append(dst, b[:]...)
}

const isoLayout = "2006-01-02T15:04:05.000Z"

// protoValue converts a protobuf JSON value to a Hog value.
func protoValue(v *structpb.Value) vm.Value {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return vm.String(k.StringValue)
	case *structpb.Value_NumberValue:
		return vm.Number(k.NumberValue)
	case *structpb.Value_BoolValue:
		return vm.Bool(k.BoolValue)
	case *structpb.Value_StructValue:
		return structValue(k.StructValue)
	case *structpb.Value_ListValue:
		vals := k.ListValue.GetValues()
		elems := make([]vm.Value, len(vals))
		for i, e := range vals {
			elems[i] = protoValue(e)
		}
		return vm.NewArray(elems)
	}
	return vm.Null
}

func structValue(s *structpb.Struct) vm.Value {
	return vm.DictValue(dictFromFields(s.GetFields(), 0))
}

// dictFromFields converts an object's fields to a dict in JavaScript's key
// order, with room for extra more entries.
func dictFromFields(fields map[string]*structpb.Value, extra int) *vm.Dict {
	d := vm.NewDict(len(fields) + extra)
	for _, k := range jsKeyOrder(fields) {
		d.AppendString(k, protoValue(fields[k]))
	}
	return d
}

// jsKeyOrder returns the keys in the order JavaScript gives an object's
// keys: integer-like keys ascending, then the others. A protobuf Struct has
// lost the sender's order, so the others are sorted, as vm.FromGo does.
func jsKeyOrder[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	nIndex := 0
	for k := range m {
		keys = append(keys, k)
		if _, ok := arrayIndex(k); ok {
			nIndex++
		}
	}
	if nIndex == 0 {
		slices.Sort(keys)
		return keys
	}
	slices.SortFunc(keys, compareJSKeys)
	return keys
}

// compareJSKeys orders keys as JavaScript orders an object's keys, for
// keys that were not inserted in a known order.
func compareJSKeys(a, b string) int {
	ai, aok := arrayIndex(a)
	bi, bok := arrayIndex(b)
	switch {
	case aok && bok:
		return cmp.Compare(ai, bi)
	case aok:
		return -1
	case bok:
		return 1
	}
	return strings.Compare(a, b)
}

// arrayIndex reports whether k is a canonical array index ("0", "12", not
// "012"), which JavaScript orders before other keys.
func arrayIndex(k string) (uint64, bool) {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n < 1<<32-1
}

// joinURL returns base+path+encodeURIComponent(a)+sep+encodeURIComponent(b),
// escaping as JavaScript's encodeURIComponent does (PostHog builds the
// globals' links with it), in one allocation: the globals build a link or
// two per event, and concatenating escaped parts cost several.
func joinURL(base, path, a, sep, b string) string {
	var sb strings.Builder
	sb.Grow(len(base) + len(path) + uriComponentLen(a) + len(sep) + uriComponentLen(b))
	sb.WriteString(base)
	sb.WriteString(path)
	writeURIComponent(&sb, a)
	sb.WriteString(sep)
	writeURIComponent(&sb, b)
	return sb.String()
}

// uriUnreserved are the bytes encodeURIComponent leaves as they are.
var uriUnreserved = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-_.!~*'()", byte(c)) >= 0
	}
	return t
}()

// uriComponentLen is the length of encodeURIComponent(s).
func uriComponentLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if !uriUnreserved[s[i]] {
			n += 2
		}
	}
	return n
}

func writeURIComponent(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	// Runs of unreserved bytes (all of a uuid) are written whole rather
	// than byte by byte.
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if uriUnreserved[c] {
			continue
		}
		b.WriteString(s[start:i])
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
		start = i + 1
	}
	b.WriteString(s[start:])
}
