package executor

import (
	"slices"
	"testing"

	"github.com/hogwire/hogwire/inputs"
	"github.com/hogwire/hogwire/liquid"
)

// A dict template holds each key once, where it first appears, with the
// last value given for it, as rendering into a dict key by key would
// leave it: render appends its keys without searching for them.
func TestDictTemplateKeysAreDistinct(t *testing.T) {
	v := inputs.Value{Kind: inputs.Object, Keys: []string{"a", "b", "a"},
		Elems: []inputs.Value{inputs.Str("{{ first }}"), inputs.Str("{{ b }}"), inputs.Str("{{ last }}")}}
	tm, err := liquidTemplate(v)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tm.keys, []string{"a", "b"}) {
		t.Fatalf("keys %q, want [a b]", tm.keys)
	}
	for i, want := range []string{"3", "2"} {
		got, err := tm.vals[i].liq.Render(map[string]any{"first": "1", "b": "2", "last": "3"}, liquid.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s renders %q, want %q", tm.keys[i], got, want)
		}
	}
}
