package vm

import (
	"maps"
	"math"
	"unsafe"
)

// dictIndexThreshold is the size from which a Dict keeps a hash index;
// smaller dicts are scanned, which is faster and allocation-free.
const dictIndexThreshold = 8

// Dict is an ordered map from Hog values to Hog values, keeping insertion
// order; setting an existing key keeps its position. Keys compare like
// JavaScript Map keys (SameValueZero): 1 and '1' are different keys.
type Dict struct {
	keys []Value
	vals []Value
	// Indexes, built once the dict outgrows a linear scan. String keys
	// have their own map: Go hashes plain strings fastest.
	strIndex map[string]int32
	index    map[dictKey]int32
	cost     int64
	// sharedIndex marks indexes borrowed from the dict this one was copied
	// from; they are cloned before this dict adds a key. Lookups verify the
	// key at the found position, so an index that gained entries elsewhere
	// is still safe to read.
	sharedIndex bool
	// frozen marks a dict of the embedder's that will never change again
	// (see Freeze); lazy marks a program's copy of a frozen dict that
	// still shares its values (see own). For both, flat says no value is
	// an array, tuple or dict, and height is how many levels of values lie
	// below the dict (1 for a dict of scalars, 0 for an empty one).
	frozen, lazy, flat bool
	height             uint16
}

type dictKey struct {
	p unsafe.Pointer
	n uint64
	s string
	k Kind
}

func keyOf(v Value) dictKey {
	switch v.k {
	case KindString:
		return dictKey{k: KindString, s: v.str()}
	case KindNumber:
		f := v.num()
		if f == 0 {
			f = 0 // -0 and +0 are the same key
		} else if f != f {
			f = math.NaN()
		}
		return dictKey{k: KindNumber, n: math.Float64bits(f)}
	}
	return dictKey{k: v.k, n: v.n, p: v.p}
}

// Small dicts come in one allocation with room for their entries: most
// dicts a program makes (options, responses, globals) hold one to four
// entries, and allocating three objects for each cost more than the VM's
// work on them.
type (
	dict1 struct {
		d   Dict
		buf [2]Value
	}
	dict2 struct {
		d   Dict
		buf [4]Value
	}
	dict4 struct {
		d   Dict
		buf [8]Value
	}
	// Globals, inputs and events hold five to eight.
	dict6 struct {
		d   Dict
		buf [12]Value
	}
	dict8 struct {
		d   Dict
		buf [16]Value
	}
)

// NewDict returns an empty dict with room for n entries.
func NewDict(n int) *Dict {
	var d *Dict
	var buf []Value
	switch {
	case n <= 0:
		return &Dict{cost: costUnit}
	case n == 1:
		a := &dict1{}
		d, buf = &a.d, a.buf[:]
	case n == 2:
		a := &dict2{}
		d, buf = &a.d, a.buf[:]
	case n <= 4:
		a := &dict4{}
		d, buf, n = &a.d, a.buf[:], 4
	case n <= 6:
		a := &dict6{}
		d, buf, n = &a.d, a.buf[:], 6
	case n <= 8:
		a := &dict8{}
		d, buf, n = &a.d, a.buf[:], 8
	default:
		// Keys and values share one array; appending past n moves each
		// out.
		d, buf = &Dict{}, make([]Value, 2*n)
	}
	d.keys, d.vals, d.cost = buf[:0:n], buf[n:n:2*n], costUnit
	return d
}

// DictBuf is room for a dict of up to eight entries, for an embedder
// that makes one along with other things to put it in their allocation.
type DictBuf struct {
	d   Dict
	buf [16]Value
}

// Dict returns an empty dict with room for n entries: b's own when n is
// at most eight, else a new one. Call it once per DictBuf.
func (b *DictBuf) Dict(n int) *Dict { return bufDict(&b.d, b.buf[:], n) }

// DictBuf6 is DictBuf for dicts of up to six entries, such as globals.
type DictBuf6 struct {
	d   Dict
	buf [12]Value
}

// Dict returns an empty dict with room for n entries: b's own when n is
// at most six, else a new one. Call it once per DictBuf6.
func (b *DictBuf6) Dict(n int) *Dict { return bufDict(&b.d, b.buf[:], n) }

// DictBuf4 is DictBuf for dicts of up to four entries, such as an event's
// person.
type DictBuf4 struct {
	d   Dict
	buf [8]Value
}

// Dict returns an empty dict with room for n entries: b's own when n is
// at most four, else a new one. Call it once per DictBuf4.
func (b *DictBuf4) Dict(n int) *Dict { return bufDict(&b.d, b.buf[:], n) }

// DictBuf2 is DictBuf for dicts of up to two entries, such as the
// response to a fetch.
type DictBuf2 struct {
	d   Dict
	buf [4]Value
}

// Dict returns an empty dict with room for n entries: b's own when n is
// at most two, else a new one. Call it once per DictBuf2.
func (b *DictBuf2) Dict(n int) *Dict { return bufDict(&b.d, b.buf[:], n) }

// DictBuf0 is room for an empty dict, such as an event's groups when it
// has none: the dict grows out of it as DictBuf's does.
type DictBuf0 struct{ d Dict }

// Dict returns an empty dict with room for n entries: b's own when n is
// zero, else a new one. Call it once per DictBuf0.
func (b *DictBuf0) Dict(n int) *Dict { return bufDict(&b.d, nil, n) }

// bufDict makes d a dict in buf, keys in its first half and values in its
// second, when n entries fit; else it returns a new dict.
func bufDict(d *Dict, buf []Value, n int) *Dict {
	if n > len(buf)/2 {
		return NewDict(n)
	}
	n = len(buf) / 2
	*d = Dict{keys: buf[:0:n], vals: buf[n : n : 2*n], cost: costUnit}
	return d
}

// Len returns the number of entries.
func (d *Dict) Len() int { return len(d.keys) }

// Keys returns the keys in insertion order. The slice must not be modified.
func (d *Dict) Keys() []Value { return d.keys }

// Values returns the values in key order. The slice must not be modified.
func (d *Dict) Values() []Value {
	if d.lazy && !d.flat {
		d.own()
	}
	return d.vals
}

func (d *Dict) find(key Value) int {
	if key.k == KindString {
		return d.findString(key.str())
	}
	if d.index != nil {
		if i, ok := d.index[keyOf(key)]; ok && int(i) < len(d.keys) && SameValueZero(d.keys[i], key) {
			return int(i)
		}
		return -1
	}
	for i := range d.keys {
		if SameValueZero(d.keys[i], key) {
			return i
		}
	}
	return -1
}

func (d *Dict) findString(s string) int {
	if d.index != nil {
		if i, ok := d.strIndex[s]; ok && int(i) < len(d.keys) {
			if k := &d.keys[i]; k.k == KindString && k.str() == s {
				return int(i)
			}
		}
		return -1
	}
	for i := range d.keys {
		if k := &d.keys[i]; k.k == KindString && k.str() == s {
			return i
		}
	}
	return -1
}

// hasStringKey reports whether the i-th key, if there is one, is s.
func (d *Dict) hasStringKey(i int, s string) bool {
	if i < 0 || i >= len(d.keys) {
		return false
	}
	k := &d.keys[i]
	return k.k == KindString && k.n == uint64(len(s)) && k.str() == s
}

// Get returns the value for key and whether it is present.
func (d *Dict) Get(key Value) (Value, bool) {
	if i := d.find(key); i >= 0 {
		return d.val(i), true
	}
	return Null, false
}

// GetString returns the value for a string key and whether it is present.
func (d *Dict) GetString(key string) (Value, bool) {
	if i := d.findString(key); i >= 0 {
		return d.val(i), true
	}
	return Null, false
}

// val returns the i-th value, for a caller that may keep it: a container
// of a lazy copy is copied first, as the whole dict would have been.
func (d *Dict) val(i int) Value {
	if d.lazy && isContainer(d.vals[i]) {
		d.own()
	}
	return d.vals[i]
}

func isContainer(v Value) bool {
	return v.k == KindDict || v.k == KindArray || v.k == KindTuple
}

// own gives a lazy copy values of its own: the frozen dict's scalars,
// and lazy copies of its containers.
func (d *Dict) own() {
	vals := make([]Value, len(d.vals))
	for i, e := range d.vals {
		if isContainer(e) {
			// A frozen tree is acyclic and shallow enough (see Freeze)
			// for deepCopy to copy it whole from here.
			e = deepCopy(e, 0)
		}
		vals[i] = e
	}
	d.vals, d.lazy, d.flat, d.height = vals, false, false, 0
}

// Set stores value under key, keeping the position of an existing key.
func (d *Dict) Set(key, value Value) {
	if d.frozen {
		panic("vm: Set on a frozen dict")
	}
	if d.lazy {
		d.own()
	}
	c := refCost(value, unsafe.Pointer(d))
	if i := d.find(key); i >= 0 {
		d.cost += c - costOf(d.vals[i])
		d.vals[i] = value
		return
	}
	d.cost += costOf(key) + c
	if d.sharedIndex {
		d.index, d.strIndex, d.sharedIndex = maps.Clone(d.index), maps.Clone(d.strIndex), false
	}
	d.keys = append(d.keys, key)
	d.vals = append(d.vals, value)
	if d.index != nil {
		d.addIndex(key, len(d.keys)-1)
	} else if len(d.keys) > dictIndexThreshold {
		d.reindex()
	}
}

// SetString stores value under a string key.
func (d *Dict) SetString(key string, value Value) { d.Set(String(key), value) }

// AppendString adds value under a string key that the caller knows d does
// not hold: the keys of a decoded map, or a fixed set of names. It is Set
// without the search for an existing key (a map lookup per key once the
// dict has an index), which an embedder building an event's globals or a
// destination's inputs paid for every key. The cost accounting is Set's.
// Appending a key d holds already is a bug of the caller's: it panics once
// d has more than eight entries, where its index finds the duplicate for
// free; a smaller dict is left holding the key twice.
func (d *Dict) AppendString(key string, value Value) {
	if d.frozen {
		panic("vm: AppendString on a frozen dict")
	}
	if d.lazy {
		d.own()
	}
	k := String(key)
	d.cost += costOf(k) + refCost(value, unsafe.Pointer(d))
	if d.sharedIndex {
		d.index, d.strIndex, d.sharedIndex = maps.Clone(d.index), maps.Clone(d.strIndex), false
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, value)
	if d.index != nil {
		n := len(d.strIndex)
		d.strIndex[key] = int32(len(d.keys) - 1)
		if len(d.strIndex) == n {
			panic("vm: AppendString of a key the dict holds: " + key)
		}
	} else if len(d.keys) > dictIndexThreshold {
		d.reindex()
		if len(d.strIndex)+len(d.index) != len(d.keys) {
			panic("vm: AppendString of a key the dict holds: " + key)
		}
	}
}

// refCost is the cost value adds to the container at parent. Like
// PostHog's accounting, a reference back to the container costs one unit
// rather than the container's whole (and growing) size; the search for such
// a cycle is bounded so that it stays cheap.
func refCost(value Value, parent unsafe.Pointer) int64 {
	if !value.isObject() {
		return costOf(value)
	}
	budget := 64
	if reaches(value, parent, &budget) {
		return costUnit
	}
	return costOf(value)
}

func reaches(v Value, target unsafe.Pointer, budget *int) bool {
	if v.p == target {
		return true
	}
	if v.k == KindDict && (v.dict().frozen || v.dict().lazy) {
		// A frozen tree holds only frozen dicts, and target is not one:
		// nothing can be set in a frozen dict.
		return false
	}
	*budget--
	if *budget < 0 {
		return false
	}
	var elems []Value
	switch v.k {
	case KindArray, KindTuple:
		elems = v.arr().Elems
	case KindDict:
		elems = v.dict().vals
	default:
		return false
	}
	for _, e := range elems {
		if e.isObject() && reaches(e, target, budget) {
			return true
		}
	}
	return false
}

func (d *Dict) addIndex(key Value, i int) {
	if key.k == KindString {
		d.strIndex[key.str()] = int32(i)
	} else {
		d.index[keyOf(key)] = int32(i)
	}
}

// reindex rebuilds the indexes from the key order.
func (d *Dict) reindex() {
	d.sharedIndex = false
	d.index = make(map[dictKey]int32)
	// Size for the capacity the dict was made with, so filling a presized
	// dict (globals from a 30-property event) does not regrow the map.
	d.strIndex = make(map[string]int32, cap(d.keys))
	for i, k := range d.keys {
		d.addIndex(k, i)
	}
}
