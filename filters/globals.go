package filters

import "regexp"

// Event is an event as filters see it.
type Event struct {
	UUID       string
	Name       string // the event name, e.g. "$pageview"
	DistinctID string
	Timestamp  string // ISO 8601
	Properties map[string]any
	// ElementsChain is autocapture's element chain; when empty the
	// $elements_chain property is used.
	ElementsChain string
	// Person is nil when the event has no person.
	Person *Person
}

// Person is the person an event belongs to.
type Person struct {
	ID         string
	Properties map[string]any
}

// The element-chain fields are extracted with the regular expressions of
// ClickHouse's materialized columns, which PostHog's filters reuse.
var (
	chainHref     = regexp.MustCompile(`(?::|")href="(.*?)"`)
	chainText     = regexp.MustCompile(`(?::|")text="(.*?)"`)
	chainID       = regexp.MustCompile(`(?::|")attr_id="(.*?)"`)
	chainElements = regexp.MustCompile(`(?:^|;)(a|button|form|input|select|textarea|label)(?:\.|$|:)`)
)

// Globals returns the filter globals for e (see the package doc) as
// JSON-like Go data, ready for vm.FromGo. Properties are shared, not
// copied.
func Globals(e *Event) map[string]any {
	props := e.Properties
	if props == nil {
		props = map[string]any{}
	}
	chain := e.ElementsChain
	if chain == "" {
		chain, _ = props["$elements_chain"].(string)
	}
	g := map[string]any{
		"event":                   e.Name,
		"uuid":                    e.UUID,
		"distinct_id":             e.DistinctID,
		"timestamp":               e.Timestamp,
		"properties":              props,
		"elements_chain":          chain,
		"elements_chain_href":     "",
		"elements_chain_texts":    distinctMatches(chainText, chain),
		"elements_chain_ids":      distinctMatches(chainID, chain),
		"elements_chain_elements": distinctMatches(chainElements, chain),
		"person":                  nil,
		"pdi":                     nil,
		"variables":               nil,
	}
	if m := chainHref.FindStringSubmatch(chain); m != nil {
		g["elements_chain_href"] = m[1]
	}
	if p := e.Person; p != nil {
		pp := p.Properties
		if pp == nil {
			pp = map[string]any{}
		}
		person := map[string]any{"id": p.ID, "properties": pp}
		g["person"] = person
		g["pdi"] = map[string]any{"distinct_id": e.DistinctID, "person_id": p.ID, "person": person}
	}
	for _, n := range []string{"0", "1", "2", "3", "4"} {
		key, _ := props["$group_"+n].(string)
		g["$group_"+n] = key
		g["group_"+n] = map[string]any{"properties": map[string]any{}}
	}
	return g
}

func distinctMatches(re *regexp.Regexp, s string) []any {
	out := []any{}
	if s == "" {
		return out
	}
	seen := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}
