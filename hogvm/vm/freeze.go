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
//
// Like every value a run makes, a copy of a frozen dict is for one
// goroutine at a time: reading a container out of it finishes copying
// that part.
func Freeze(v Value) {
	if !isContainer(v) {
		return
	}
	var path [16]unsafe.Pointer
	budget := maxFreezeNodes
	freeze(v, path[:0], &budget)
}

// freeze freezes what it can of v, below the containers on path, and
// returns the height of v's tree (the levels of values below v, as
// Dict.height) and whether all of it is frozen or immutable.
func freeze(v Value, path []unsafe.Pointer, budget *int) (int, bool) {
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
	*budget--
	if *budget < 0 || len(path) > maxCopyDepth {
		return 0, false
	}
	for _, p := range path {
		if p == v.p {
			return 0, false
		}
	}
	path = append(path, v.p)
	var elems []Value
	if v.k == KindDict {
		elems = v.dict().vals
	} else {
		elems = v.arr().Elems
	}
	height, ok, flat := 0, true, true
	for _, e := range elems {
		h, eok := freeze(e, path, budget)
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

// DictContent identifies the entries of a dict that can no longer change.
// Two dicts with the same DictContent hold the same keys and values.
type DictContent struct {
	keys, vals unsafe.Pointer
	n          int
}

// Content returns what identifies d's entries, when they can no longer
// change: d is frozen, or a program's copy of a frozen dict that still
// shares the frozen dict's entries (see Freeze). ok is false otherwise.
// An embedder may key what it derives from a frozen dict by it, and find
// it again for the program's copies.
func (d *Dict) Content() (c DictContent, ok bool) {
	if !d.frozen && !d.lazy {
		return DictContent{}, false
	}
	return DictContent{keys: unsafe.Pointer(unsafe.SliceData(d.keys)), vals: unsafe.Pointer(unsafe.SliceData(d.vals)), n: len(d.keys)}, true
}
