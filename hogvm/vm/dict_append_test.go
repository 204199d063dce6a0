package vm

import (
	"fmt"
	"testing"
)

// AppendString leaves a dict as SetString of the same new keys does: the
// same entries in the same order, the same cost (a value holding the dict
// itself included), and an index that finds every key once it is big
// enough to have one.
func TestAppendStringMatchesSetString(t *testing.T) {
	for _, n := range []int{0, 1, 3, 8, 9, 30} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			set, app := NewDict(n), NewDict(n)
			for i := range n {
				k := fmt.Sprintf("k%d", i)
				var v Value
				switch i % 4 {
				case 0:
					v = String(k + "-value")
				case 1:
					v = Number(float64(i))
				case 2:
					inner := NewDict(1)
					inner.SetString("x", NewArray([]Value{String("a"), Null}))
					v = DictValue(inner)
				case 3:
					v = Null
				}
				set.SetString(k, v)
				app.AppendString(k, v)
			}
			// A value that reaches the dict costs one unit, as in Set.
			set.SetString("self", NewArray([]Value{DictValue(set)}))
			app.AppendString("self", NewArray([]Value{DictValue(app)}))
			if set.cost != app.cost {
				t.Errorf("cost %d, want %d", app.cost, set.cost)
			}
			if len(set.keys) != len(app.keys) {
				t.Fatalf("%d keys, want %d", len(app.keys), len(set.keys))
			}
			for i, k := range set.keys {
				if app.keys[i].str() != k.str() {
					t.Errorf("key %d is %q, want %q", i, app.keys[i].str(), k.str())
				}
				if got, ok := app.GetString(k.str()); !ok || (i < n && !SameValueZero(got, set.vals[i])) {
					t.Errorf("%s: got %v %v", k.str(), got, ok)
				}
			}
			if (set.index == nil) != (app.index == nil) {
				t.Errorf("indexed %v, want %v", app.index != nil, set.index != nil)
			}
		})
	}
}

// A key appended twice is the caller's bug: an indexed dict says so
// rather than holding the key twice, and a frozen dict refuses as Set does.
func TestAppendStringPanics(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	mustPanic("repeated while indexed", func() {
		d := NewDict(0)
		for i := range 12 {
			d.AppendString(fmt.Sprint(i), Null)
		}
		d.AppendString("3", Null)
	})
	mustPanic("repeated, then indexed", func() {
		d := NewDict(0)
		d.AppendString("a", Null)
		d.AppendString("a", Null)
		for i := range 8 {
			d.AppendString(fmt.Sprint(i), Null)
		}
	})
	mustPanic("frozen", func() {
		d := NewDict(1)
		Freeze(DictValue(d))
		d.AppendString("a", Null)
	})
}
