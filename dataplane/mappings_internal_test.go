package dataplane

import (
	"slices"
	"testing"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// A destination with mappings is indexed under its enabled mappings'
// event names when its own filters name none: an event no mapping can
// match never reaches its filters.
func TestMappingEventNames(t *testing.T) {
	on := func(name string, events ...string) *hogwirev1.Mapping {
		f := &hogwirev1.Filters{}
		for _, e := range events {
			f.Events = append(f.Events, &hogwirev1.EventFilter{Event: e})
		}
		return &hogwirev1.Mapping{Name: name, Filters: f}
	}
	named := func(events ...string) *hogwirev1.Filters {
		f := &hogwirev1.Filters{}
		for _, e := range events {
			f.Events = append(f.Events, &hogwirev1.EventFilter{Event: e})
		}
		return f
	}
	off := on("off")
	off.Disabled = true
	for _, c := range []struct {
		name  string
		d     *hogwirev1.Destination
		names []string
		all   bool
	}{
		{"no mappings", &hogwirev1.Destination{}, nil, true},
		{"the destination's names", &hogwirev1.Destination{Filters: named("a"), Mappings: []*hogwirev1.Mapping{on("m", "b")}}, []string{"a"}, false},
		{"the mappings' names", &hogwirev1.Destination{Mappings: []*hogwirev1.Mapping{on("m", "b", "c"), on("n", "c", "d"), off}}, []string{"b", "c", "d"}, false},
		{"a mapping for every event", &hogwirev1.Destination{Mappings: []*hogwirev1.Mapping{on("m", "b"), on("n")}}, nil, true},
		{"the names the expression requires", &hogwirev1.Destination{Filters: &hogwirev1.Filters{Expression: "event = 'a'"}, Mappings: []*hogwirev1.Mapping{on("m", "b")}}, []string{"a"}, false},
		{"the names a mapping's expression requires", &hogwirev1.Destination{Mappings: []*hogwirev1.Mapping{on("m", "b"), {Name: "n", Filters: &hogwirev1.Filters{Expression: "event in ('c', 'd')"}}}}, []string{"b", "c", "d"}, false},
		{"every mapping disabled", &hogwirev1.Destination{Mappings: []*hogwirev1.Mapping{off}}, nil, false},
	} {
		names, all := eventNames(c.d)
		if all != c.all || !slices.Equal(names, c.names) {
			t.Errorf("%s: %v, %v; want %v, %v", c.name, names, all, c.names, c.all)
		}
	}
}
