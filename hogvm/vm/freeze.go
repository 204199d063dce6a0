package vm

import "unsafe"

// maxFreezeNodes bounds the walk of one Freeze: values shared many times
// over through arrays could otherwise take it exponentially long.
const maxFreezeNodes = 1 << 20

// Freeze marks the dicts in v as the embedder's for good: neither the
// embedder nor anyone else will change them from now on, and they may be
// read from several goroutines at once. A run that reads a frozen dict
// from its globals then shares its values with it until the program
// changes its copy or takes a container out of it, instead of copying
// the whole tree up front; what the program sees is the same.
//
// Dicts whose tree is cyclic, deeper than a copy goes, or holds
// functions, errors or a program's copies are left as they are: reading
// them copies them whole, as before. Changing a frozen dict with Set
// panics.
func Freeze(v Value) {
	f := freezer{budget: maxFreezeNodes}
	f.walk(v)
}

type freezer struct {
	path   []unsafe.Pointer // the containers being walked, for cycles
	budget int
}

// walk freezes what it can of v and returns the height of v's tree (the
// levels of values below v, as Dict.height) and whether all of it is
// frozen or immutable.
func (f *freezer) walk(v Value) (int, bool) {
	switch v.k {
	case KindDict, KindArray, KindTuple:
	case KindClosure, KindCallable, KindError:
		// Functions hold upvalues, which snapshots look for; errors
		// hold payloads deepCopy does not copy.
		return 0, false
	default:
		return 0, true
	}
	if v.k == KindDict {
		d := v.dict()
		if d.frozen {
			return int(d.height), true
		}
		if d.lazy {
			return 0, false
		}
	}
	f.budget--
	if f.budget < 0 || len(f.path) > maxCopyDepth {
		return 0, false
	}
	for _, p := range f.path {
		if p == v.p {
			return 0, false
		}
	}
	f.path = append(f.path, v.p)
	defer func() { f.path = f.path[:len(f.path)-1] }()
	var elems []Value
	if v.k == KindDict {
		elems = v.dict().vals
	} else {
		elems = v.arr().Elems
	}
	height, ok, flat := 0, true, true
	for _, e := range elems {
		h, eok := f.walk(e)
		ok = ok && eok
		flat = flat && !isContainer(e)
		height = max(height, h+1)
	}
	if !ok || height > maxCopyDepth {
		return 0, false
	}
	if v.k == KindDict {
		d := v.dict()
		d.frozen, d.flat, d.height = true, flat, uint16(height)
	}
	return height, true
}
