package executor

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// WireEvent is an Event read from its protobuf encoding as far as routing
// needs: its name. Its objects stay encoded until NewEventFromWire turns
// them straight into Hog values, without the google.protobuf.Struct
// messages in between — on a typical event those cost more than the rest
// of building the globals.
type WireEvent struct {
	// Name is the event's name.
	Name string

	uuid, distinctID, elementsChain string
	timestamp                       time.Time
	hasTimestamp                    bool
	props, set, setOnce, person     string
	hasSet, hasSetOnce, hasPerson   bool
	groups                          [][2]string
	stored                          *Person // see SetPerson
}

// The Event fields read here, by number. Fields are looked up in the
// generated descriptor so that the numbers cannot drift from the .proto.
var (
	eventFields  = (&hogwirev1.Event{}).ProtoReflect().Descriptor().Fields()
	personFields = (&hogwirev1.Person{}).ProtoReflect().Descriptor().Fields()
)

func fieldNumber(fields protoreflect.FieldDescriptors, name protoreflect.Name) protowire.Number {
	return fields.ByName(name).Number()
}

var (
	fUUID          = fieldNumber(eventFields, "uuid")
	fEvent         = fieldNumber(eventFields, "event")
	fDistinctID    = fieldNumber(eventFields, "distinct_id")
	fProperties    = fieldNumber(eventFields, "properties")
	fTimestamp     = fieldNumber(eventFields, "timestamp")
	fElementsChain = fieldNumber(eventFields, "elements_chain")
	fPerson        = fieldNumber(eventFields, "person")
	fGroups        = fieldNumber(eventFields, "groups")
	fSet           = fieldNumber(eventFields, "set")
	fSetOnce       = fieldNumber(eventFields, "set_once")
	fPersonID      = fieldNumber(personFields, "id")
	fPersonProps   = fieldNumber(personFields, "properties")
)

// ErrMalformedEvent reports an encoding that is not a valid Event.
var ErrMalformedEvent = errors.New("malformed event encoding")

// ParseEvent reads the top level of an encoded hogwire.v1.Event.
func ParseEvent(data []byte) (*WireEvent, error) {
	// A message field that occurs more than once is the merge of its
	// occurrences, which is what decoding their concatenation gives.
	e := &WireEvent{}
	var ts string
	err := eachField(string(data), func(num protowire.Number, typ protowire.Type, v string, _ uint64) error {
		if typ != protowire.BytesType {
			return nil // no field read here is a scalar
		}
		switch num {
		case fUUID:
			e.uuid = v
		case fEvent:
			e.Name = v
		case fDistinctID:
			e.distinctID = v
		case fElementsChain:
			e.elementsChain = v
		case fProperties:
			e.props += v
		case fSet:
			e.set, e.hasSet = e.set+v, true
		case fSetOnce:
			e.setOnce, e.hasSetOnce = e.setOnce+v, true
		case fPerson:
			e.person, e.hasPerson = e.person+v, true
		case fTimestamp:
			ts, e.hasTimestamp = ts+v, true
		case fGroups:
			k, val, err := mapEntry(v, false)
			if err != nil {
				return err
			}
			e.groups = append(e.groups, [2]string{k, val})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if e.hasTimestamp {
		var sec, nanos int64
		err := eachField(ts, func(num protowire.Number, typ protowire.Type, _ string, x uint64) error {
			if typ == protowire.VarintType {
				switch num {
				case 1:
					sec = int64(x)
				case 2:
					nanos = int64(int32(x))
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		e.timestamp = time.Unix(sec, nanos).UTC()
	}
	return e, nil
}

// NewEventFromWire builds the globals of an event read by ParseEvent; the
// result is the same as NewEvent's on the decoded Event.
func NewEventFromWire(e *WireEvent, project *Project) (*Globals, error) {
	p := eventParts{uuid: e.uuid, name: e.Name, distinctID: e.distinctID, elementsChain: e.elementsChain,
		timestamp: e.timestamp, hasTimestamp: e.hasTimestamp, hasPerson: e.hasPerson, groups: e.groups, stored: e.stored}
	dec := wireDecoders.Get().(*wireDecoder)
	defer dec.release()
	var err error
	if p.props, err = dec.wireStruct(e.props, 2, 0); err != nil {
		return nil, err
	}
	if e.hasSet {
		if p.set, err = dec.wireStruct(e.set, 0, 0); err != nil {
			return nil, err
		}
	}
	if e.hasSetOnce {
		if p.setOnce, err = dec.wireStruct(e.setOnce, 0, 0); err != nil {
			return nil, err
		}
	}
	if e.hasPerson {
		var props string
		err := eachField(e.person, func(num protowire.Number, typ protowire.Type, v string, _ uint64) error {
			switch {
			case typ != protowire.BytesType:
			case num == fPersonID:
				p.personID = v
			case num == fPersonProps:
				props += v
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if p.personProps, err = dec.wireStruct(props, 0, 0); err != nil {
			return nil, err
		}
	}
	return p.globals(project), nil
}

// eachField calls f with every field of an encoded message: its number,
// wire type, and its bytes (length-delimited fields) or value (varints and
// fixed-size fields). It reads a string, not a []byte, so that the strings
// of the message are substrings of one copy instead of one copy each.
func eachField(b string, f func(num protowire.Number, typ protowire.Type, v string, x uint64) error) error {
	for len(b) > 0 {
		tag, n := varint(b)
		if n <= 0 || tag>>3 == 0 || tag>>3 > uint64(protowire.MaxValidNumber) {
			return fmt.Errorf("%w: bad field tag", ErrMalformedEvent)
		}
		b = b[n:]
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		var v string
		var x uint64
		switch typ {
		case protowire.VarintType:
			if x, n = varint(b); n <= 0 {
				return fmt.Errorf("%w: bad varint in field %d", ErrMalformedEvent, num)
			}
			b = b[n:]
		case protowire.BytesType:
			size, n := varint(b)
			if n <= 0 || size > uint64(len(b)-n) {
				return fmt.Errorf("%w: field %d overruns the message", ErrMalformedEvent, num)
			}
			v, b = b[n:n+int(size)], b[n+int(size):]
		case protowire.Fixed64Type, protowire.Fixed32Type:
			size := 8
			if typ == protowire.Fixed32Type {
				size = 4
			}
			if len(b) < size {
				return fmt.Errorf("%w: field %d overruns the message", ErrMalformedEvent, num)
			}
			for i := size - 1; i >= 0; i-- { // little-endian
				x = x<<8 | uint64(b[i])
			}
			b = b[size:]
		default:
			// Groups are not used by any message read here.
			return fmt.Errorf("%w: unexpected wire type %d in field %d", ErrMalformedEvent, typ, num)
		}
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// varint decodes a base-128 varint at the start of b and returns it and
// its length, or a length of 0 when b does not start with a valid one.
func varint(b string) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		if i == 9 && c > 1 {
			return 0, 0
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

// mapEntry reads a map<string, …> entry: its key and its value's bytes.
// A message value that occurs more than once is merged.
func mapEntry(b string, message bool) (key string, val string, err error) {
	err = eachField(b, func(num protowire.Number, typ protowire.Type, v string, _ uint64) error {
		if typ == protowire.BytesType {
			switch {
			case num == 1:
				key = v
			case num == 2 && message:
				val += v
			case num == 2:
				val = v
			}
		}
		return nil
	})
	return key, val, err
}

// maxWireDepth bounds nesting of decoded objects, as protobuf's own
// decoder does (its default recursion limit is 10,000; Hog values this
// deep serve nobody). Capture refuses events nested deeper.
const maxWireDepth = eventlimits.MaxDepth

type wireEntry struct {
	key string
	val vm.Value
}

// wireDecoder decodes the objects of one event. An object's entries wait
// in entries until they are sorted into its dict; a nested object's go
// after its parent's and are gone before the parent adds its next, so
// objects share one buffer, reused from event to event, rather than
// allocate one each.
type wireDecoder struct {
	entries []wireEntry
}

var wireDecoders = sync.Pool{New: func() any { return &wireDecoder{entries: make([]wireEntry, 0, 64)} }}

// maxPooledEntries bounds the buffer a decoder keeps for the next event,
// so that one huge event does not pin its size.
const maxPooledEntries = 1024

func (dec *wireDecoder) release() {
	if cap(dec.entries) > maxPooledEntries {
		return
	}
	dec.entries = dec.entries[:0]
	wireDecoders.Put(dec)
}

// wireStruct decodes a google.protobuf.Struct into a dict with room for
// extra more entries, keys in JavaScript's order like dictFromFields.
func (dec *wireDecoder) wireStruct(b string, extra, depth int) (*vm.Dict, error) {
	if depth > maxWireDepth {
		return nil, fmt.Errorf("%w: objects nested too deep", ErrMalformedEvent)
	}
	base := len(dec.entries)
	defer func() {
		// Nothing of this object stays reachable from the buffer.
		clear(dec.entries[base:])
		dec.entries = dec.entries[:base]
	}()
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v string, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		k, val, err := mapEntry(v, true)
		if err != nil {
			return err
		}
		hv, err := dec.wireValue(val, depth+1)
		if err != nil {
			return err
		}
		dec.entries = append(dec.entries, wireEntry{k, hv})
		return nil
	})
	if err != nil {
		return nil, err
	}
	entries := dec.entries[base:]
	d := vm.NewDict(len(entries) + extra)
	if jsOrdered(entries) {
		// No key repeats: each is appended without searching d.
		for _, e := range entries {
			d.AppendString(e.key, e.val)
		}
		return d, nil
	}
	// The entries stay where they are and their positions are sorted:
	// moving entries, which hold pointers, costs a write barrier per move
	// while the collector runs, and sorting them was most of the work of
	// decoding an event. Ties go to the earlier position, so repeated keys
	// are set in wire order and the last one wins, as when protobuf
	// decodes a map.
	var buf [64]int32
	order := buf[:0]
	if len(entries) > len(buf) {
		order = make([]int32, 0, len(entries))
	}
	for i := range entries {
		order = append(order, int32(i))
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := compareJSKeys(entries[a].key, entries[b].key); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	// A repeated key's entries are adjacent, in wire order: only the last
	// one is appended, which is what setting each in turn would leave.
	for j, i := range order {
		if j+1 < len(order) && entries[order[j+1]].key == entries[i].key {
			continue
		}
		d.AppendString(entries[i].key, entries[i].val)
	}
	return d, nil
}

// jsOrdered reports whether entries are already in JavaScript's key order
// with no key repeated, as an encoder that sorts its map keys (or an
// object of one key) leaves them.
func jsOrdered(entries []wireEntry) bool {
	for i := 1; i < len(entries); i++ {
		if compareJSKeys(entries[i-1].key, entries[i].key) >= 0 {
			return false
		}
	}
	return true
}

// valueField reads an encoded google.protobuf.Value: the field number of
// its kind (0: none; 1 null, 2 number, 3 string, 4 bool, 5 struct, 6
// list) and its content: x for a number (its bits) or bool, str for a
// string, msg for a struct or list. The kind is the last one on the wire;
// a struct or list given more than once in a row is merged.
func valueField(b string) (kind protowire.Number, x uint64, str, msg string, err error) {
	err = eachField(b, func(num protowire.Number, typ protowire.Type, v string, xv uint64) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			kind = num
		case (num == 2 && typ == protowire.Fixed64Type) || (num == 4 && typ == protowire.VarintType):
			kind, x = num, xv
		case num == 3 && typ == protowire.BytesType:
			kind, str = num, v
		case (num == 5 || num == 6) && typ == protowire.BytesType:
			if kind == num {
				msg += v
			} else {
				kind, msg = num, v
			}
		}
		return nil
	})
	return kind, x, str, msg, err
}

// wireValue decodes a google.protobuf.Value (see valueField).
func (dec *wireDecoder) wireValue(b string, depth int) (vm.Value, error) {
	kind, x, str, msg, err := valueField(b)
	if err != nil {
		return vm.Null, err
	}
	switch kind {
	case 2:
		return vm.Number(math.Float64frombits(x)), nil
	case 3:
		return vm.String(str), nil
	case 4:
		return vm.Bool(x != 0), nil
	case 5:
		d, err := dec.wireStruct(msg, 0, depth)
		if err != nil {
			return vm.Null, err
		}
		return vm.DictValue(d), nil
	case 6:
		return dec.wireList(msg, depth)
	}
	return vm.Null, nil
}

// wireList decodes a google.protobuf.ListValue.
func (dec *wireDecoder) wireList(b string, depth int) (vm.Value, error) {
	if depth > maxWireDepth {
		return vm.Null, fmt.Errorf("%w: lists nested too deep", ErrMalformedEvent)
	}
	count := 0
	_ = eachField(b, func(num protowire.Number, _ protowire.Type, _ string, _ uint64) error {
		if num == 1 {
			count++
		}
		return nil
	})
	elems := make([]vm.Value, 0, count)
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v string, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		e, err := dec.wireValue(v, depth+1)
		if err != nil {
			return err
		}
		elems = append(elems, e)
		return nil
	})
	if err != nil {
		return vm.Null, err
	}
	return vm.NewArray(elems), nil
}
