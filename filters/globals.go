package filters

import (
	"regexp"
	"slices"

	"github.com/hogwire/hogwire/hogvm/vm"
)

// Event is an event as filters see it, its objects already Hog values.
type Event struct {
	UUID       string
	Name       string // the event name, e.g. "$pageview"
	DistinctID string
	Timestamp  string // ISO 8601
	// Properties is a dict of the event's properties (null reads as {}).
	Properties vm.Value
	// ElementsChain is autocapture's element chain; when empty the
	// $elements_chain property is used.
	ElementsChain string
	// Person is nil when the event has no person.
	Person *Person
	// Groups are the keys of the event's groups by group type index
	// ("" where it has none).
	Groups [5]string
}

// Person is the person an event belongs to.
type Person struct {
	ID         string
	Properties vm.Value // a dict (null reads as {})
}

// The element-chain fields are extracted with the regular expressions of
// ClickHouse's materialized columns, which PostHog's filters reuse.
var (
	chainHref     = regexp.MustCompile(`(?::|")href="(.*?)"`)
	chainText     = regexp.MustCompile(`(?::|")text="(.*?)"`)
	chainID       = regexp.MustCompile(`(?::|")attr_id="(.*?)"`)
	chainElements = regexp.MustCompile(`(?:^|;)(a|button|form|input|select|textarea|label)(?:\.|$|:)`)
)

var (
	groupKeyNames = [5]string{"$group_0", "$group_1", "$group_2", "$group_3", "$group_4"}
	groupNames    = [5]string{"group_0", "group_1", "group_2", "group_3", "group_4"}
)

// Globals returns the filter globals for e (see the package doc). The
// properties are shared, not copied: the VM never modifies globals.
func Globals(e *Event) vm.Value {
	props := e.Properties
	if props.AsDict() == nil {
		props = vm.DictValue(vm.NewDict(0))
	}
	chain := e.ElementsChain
	if chain == "" {
		if c, ok := props.AsDict().GetString("$elements_chain"); ok {
			chain = c.AsString()
		}
	}
	f := vm.NewDict(24)
	f.SetString("event", vm.String(e.Name))
	f.SetString("uuid", vm.String(e.UUID))
	f.SetString("distinct_id", vm.String(e.DistinctID))
	f.SetString("timestamp", vm.String(e.Timestamp))
	f.SetString("properties", props)
	f.SetString("elements_chain", vm.String(chain))
	href, texts, ids, elements := "", []vm.Value{}, []vm.Value{}, []vm.Value{}
	if chain != "" {
		if m := chainHref.FindStringSubmatch(chain); m != nil {
			href = m[1]
		}
		texts, ids, elements = distinctMatches(chainText, chain), distinctMatches(chainID, chain), distinctMatches(chainElements, chain)
	}
	f.SetString("elements_chain_href", vm.String(href))
	f.SetString("elements_chain_texts", vm.NewArray(texts))
	f.SetString("elements_chain_ids", vm.NewArray(ids))
	f.SetString("elements_chain_elements", vm.NewArray(elements))
	if p := e.Person; p != nil {
		pp := p.Properties
		if pp.AsDict() == nil {
			pp = vm.DictValue(vm.NewDict(0))
		}
		person := vm.NewDict(2)
		person.SetString("id", vm.String(p.ID))
		person.SetString("properties", pp)
		f.SetString("person", vm.DictValue(person))
		pdi := vm.NewDict(3)
		pdi.SetString("distinct_id", vm.String(e.DistinctID))
		pdi.SetString("person_id", vm.String(p.ID))
		pdi.SetString("person", vm.DictValue(person))
		f.SetString("pdi", vm.DictValue(pdi))
	} else {
		f.SetString("person", vm.Null)
		f.SetString("pdi", vm.Null)
	}
	for i, key := range e.Groups {
		f.SetString(groupKeyNames[i], vm.String(key))
	}
	// hogwire keeps no group properties, so the five group_N entries share
	// one value: the VM never lets a program change globals.
	gp := vm.NewDict(1)
	gp.SetString("properties", vm.DictValue(vm.NewDict(0)))
	for i := range e.Groups {
		f.SetString(groupNames[i], vm.DictValue(gp))
	}
	f.SetString("variables", vm.Null)
	return vm.DictValue(f)
}

// distinctMatches returns the first group of every match of re, once each.
func distinctMatches(re *regexp.Regexp, s string) []vm.Value {
	out := []vm.Value{}
	var seen []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		if !slices.Contains(seen, m[1]) {
			seen = append(seen, m[1])
			out = append(out, vm.String(m[1]))
		}
	}
	return out
}
