package vm

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unsafe"

	"github.com/hogwire/hogwire/jsonscan"
)

// ParseJSON parses JSON into Hog values the way jsonParse() does: objects
// become dicts (keys in JavaScript property order), numbers doubles, and
// objects marked __hogDateTime__, __hogDate__ or __hogError__ become those
// values. Use it to build globals straight from an event's JSON.
func ParseJSON(data []byte) (Value, error) {
	p := jsonParser{data: data}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return Null, err
	}
	p.space()
	if p.pos < len(p.data) {
		return Null, p.errorf("unexpected data after the value")
	}
	return v, nil
}

const maxJSONDepth = 1000

// jsonParser reads JSON by hand: encoding/json's token stream allocates
// for every token, and a response body is parsed on every fetch. It
// accepts exactly what encoding/json accepts and decodes strings the same
// way (invalid UTF-8 and lone surrogates become U+FFFD).
type jsonParser struct {
	data []byte
	pos  int
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("vm: json: "+format+" (offset %d)", append(args, p.pos)...)
}

func (p *jsonParser) space() { p.pos = jsonscan.Space(p.data, p.pos) }

func (p *jsonParser) value(depth int) (Value, error) {
	if depth > maxJSONDepth {
		return Null, errors.New("vm: json: nested too deeply")
	}
	if p.pos >= len(p.data) {
		return Null, errors.New("vm: json: unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		return String(s), err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return Bool(true), p.literal("true")
	case c == 'f':
		return Bool(false), p.literal("false")
	case c == 'n':
		return Null, p.literal("null")
	default:
		return Null, p.errorf("invalid character %q looking for beginning of value", c)
	}
}

func (p *jsonParser) literal(word string) error {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(word)) {
		return p.errorf("invalid literal, expected %s", word)
	}
	p.pos += len(word)
	return nil
}

func (p *jsonParser) object(depth int) (Value, error) {
	p.pos++ // {
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		// An empty object, as many APIs answer: no room for entries.
		p.pos++
		return revive(NewDict(0)), nil
	}
	d := NewDict(4)
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Null, p.errorf("expected a string key")
		}
		key, err := p.string()
		if err != nil {
			return Null, err
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Null, p.errorf("expected ':' after an object key")
		}
		p.pos++
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return Null, err
		}
		d.Set(String(key), v)
		if done, err := p.next('}'); err != nil || done {
			if err != nil {
				return Null, err
			}
			break
		}
	}
	jsOrder(d)
	return revive(d), nil
}

func (p *jsonParser) array(depth int) (Value, error) {
	p.pos++ // [
	elems := []Value{}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return newArray(elems), nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return Null, err
		}
		elems = append(elems, v)
		if done, err := p.next(']'); err != nil || done {
			if err != nil {
				return Null, err
			}
			return newArray(elems), nil
		}
	}
}

// next reads what follows an element: a comma (and the space before the
// next element) or the closing bracket.
func (p *jsonParser) next(closing byte) (bool, error) {
	next, closed, err := jsonscan.AfterElement(p.data, p.pos, closing)
	p.pos = next
	switch {
	case errors.Is(err, jsonscan.ErrEnd):
		return false, errors.New("vm: json: unexpected end of input")
	case err != nil:
		return false, p.errorf("invalid character %q after an element", p.data[p.pos])
	}
	return closed, nil
}

func (p *jsonParser) number() (Value, error) {
	start := p.pos
	end, err := jsonscan.Number(p.data, start)
	p.pos = end
	if err != nil {
		return Null, p.errorf("invalid number")
	}
	// The bytes are only read during the call.
	f, err := strconv.ParseFloat(unsafe.String(&p.data[start], end-start), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return Null, p.errorf("invalid number")
	}
	return Number(f), nil
}

func (p *jsonParser) string() (string, error) {
	b, next, err := jsonscan.String(p.data, p.pos+1, nil)
	p.pos = next
	switch {
	case errors.Is(err, jsonscan.ErrEnd):
		return "", errors.New("vm: json: unexpected end of input")
	case err != nil:
		return "", p.errorf("%s in string literal", err.Error())
	}
	return string(b), nil
}

// revive turns PostHog's marker objects back into dates and errors.
func revive(d *Dict) Value {
	get := func(k string) Value { v, _ := d.GetString(k); return v }
	switch {
	case get("__hogDateTime__").Truthy():
		zone := "UTC"
		if z := get("zone"); z.Truthy() {
			zone = JSString(z)
		}
		return NewDateTime(ToNumber(get("dt")), zone)
	case get("__hogDate__").Truthy():
		return NewDate(int(ToNumber(get("year"))), int(ToNumber(get("month"))), int(ToNumber(get("day"))))
	case get("__hogError__").Truthy():
		return errorValue(get("type"), get("message"), get("payload"))
	}
	return DictValue(d)
}

// arrayIndexKey reports whether s is a canonical array index, which
// JavaScript objects enumerate first, in numeric order.
func arrayIndexKey(s string) (uint32, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n >= math.MaxUint32 {
		return 0, false
	}
	return uint32(n), true
}

// jsOrder reorders a dict with string keys into JavaScript property order.
func jsOrder(d *Dict) {
	first := -1
	for i, k := range d.keys {
		if _, ok := arrayIndexKey(k.AsString()); ok {
			first = i
			break
		}
	}
	if first < 0 {
		return
	}
	idx := make([]int, len(d.keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		na, oka := arrayIndexKey(d.keys[a].AsString())
		nb, okb := arrayIndexKey(d.keys[b].AsString())
		switch {
		case oka && okb:
			return int(int64(na) - int64(nb))
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
	keys, vals := make([]Value, len(idx)), make([]Value, len(idx))
	for i, j := range idx {
		keys[i], vals[i] = d.keys[j], d.vals[j]
	}
	d.keys, d.vals = keys, vals
	if d.index != nil {
		d.reindex()
	}
}

// jsonWriter renders values like JSON.stringify applied to PostHog's
// conversion of Hog values.
type jsonWriter struct {
	buf    []byte
	indent int
	limit  int // stop rendering past this many bytes (0: maxRender)
	// The containers from the root to the value being rendered, to
	// render a cycle as null: the first len(pathBuf) in pathBuf, the
	// rest in pathMore. Not a slice of pathBuf, which would point into
	// the writer itself and so move every writer to the heap.
	pathLen  int
	pathBuf  [8]unsafe.Pointer
	pathMore []unsafe.Pointer
}

// onPath reports whether the container at p is on the writer's path.
func (w *jsonWriter) onPath(p unsafe.Pointer) bool {
	return onPath(w.pathBuf[:min(w.pathLen, len(w.pathBuf))], p) || onPath(w.pathMore, p)
}

func (w *jsonWriter) push(p unsafe.Pointer) {
	if w.pathLen < len(w.pathBuf) {
		w.pathBuf[w.pathLen] = p
	} else {
		w.pathMore = append(w.pathMore, p)
	}
	w.pathLen++
}

func (w *jsonWriter) pop() {
	w.pathLen--
	if w.pathLen >= len(w.pathBuf) {
		w.pathMore = w.pathMore[:len(w.pathMore)-1]
	}
}

// MarshalJSON renders v the way jsonStringify(v) does.
func (v Value) MarshalJSON() ([]byte, error) {
	// Three quarters of the memory estimate hold most values' JSON, and
	// events with URLs and user agents, which outgrow AppendJSON's half
	// of it, in one allocation.
	w := jsonWriter{buf: make([]byte, 0, min(costOf(v)*3/4+16, 1<<20))}
	w.value(v, 0)
	return w.buf, nil
}

// AppendJSON appends v as jsonStringify(v, indent) renders it to dst,
// stopping once the output passes limit bytes (0: the VM's own cap), so a
// caller compares the length with limit to detect that. A nil dst gets a
// buffer sized for v.
func AppendJSON(dst []byte, v Value, indent, limit int) []byte {
	if dst == nil {
		// Half the memory estimate of a value (two units for each entry,
		// plus its strings) is close to its JSON length.
		dst = make([]byte, 0, min(costOf(v)/2+16, 1<<20))
	}
	w := jsonWriter{buf: dst, indent: indent, limit: limit}
	w.value(v, 0)
	return w.buf
}

func (w *jsonWriter) newline(depth int) {
	if w.indent <= 0 {
		return
	}
	w.buf = append(w.buf, '\n')
	for i := 0; i < depth*w.indent; i++ {
		w.buf = append(w.buf, ' ')
	}
}

func (w *jsonWriter) value(v Value, depth int) {
	if len(w.buf) > maxRender || (w.limit > 0 && len(w.buf) > w.limit) {
		return
	}
	switch v.k {
	case KindNull:
		w.buf = append(w.buf, "null"...)
	case KindBool:
		if v.n != 0 {
			w.buf = append(w.buf, "true"...)
		} else {
			w.buf = append(w.buf, "false"...)
		}
	case KindNumber:
		f := v.num()
		if math.IsInf(f, 0) || f != f {
			w.buf = append(w.buf, "null"...)
		} else {
			w.buf = appendNumber(w.buf, f)
		}
	case KindString:
		w.buf = jsonscan.AppendString(w.buf, v.str())
	case KindClosure, KindCallable:
		var b []byte
		var c *Callable
		if v.k == KindClosure {
			c = v.closure().Callable
		} else {
			c = v.callable()
		}
		name := c.Name
		if name == "" {
			name = "lambda"
		}
		b = fmt.Appendf(b, "fn<%s(%d)>", name, c.ArgCount)
		w.buf = jsonscan.AppendString(w.buf, string(b))
	case KindDateTime:
		dt := v.AsDateTime()
		w.object(depth, []string{"__hogDateTime__", "dt", "zone"}, []Value{Bool(true), Number(dt.Seconds), String(dt.Zone)})
	case KindDate:
		d := v.AsDate()
		w.object(depth, []string{"__hogDate__", "year", "month", "day"}, []Value{Bool(true), Int(int64(d.Year)), Int(int64(d.Month)), Int(int64(d.Day))})
	case KindError:
		e := v.AsError()
		keys := []string{"__hogError__", "type", "message"}
		vals := []Value{Bool(true), String(e.Type), String(e.Message)}
		if p := e.Payload; p.k == KindDict {
			// PostHog passes the payload through as a JavaScript Map,
			// which JSON.stringify renders as {}.
			keys, vals = append(keys, "payload"), append(vals, DictValue(NewDict(0)))
		} else if p.k != KindNull {
			keys, vals = append(keys, "payload"), append(vals, p)
		}
		w.object(depth, keys, vals)
	case KindArray, KindTuple, KindDict:
		if w.onPath(v.p) || w.pathLen > maxPrintDepth {
			w.buf = append(w.buf, "null"...)
			return
		}
		w.push(v.p)
		if v.k == KindDict && w.plainKeys(v.dict()) {
			w.plainObject(v.dict(), depth)
		} else if v.k == KindDict {
			d := v.dict()
			keys := make([]string, 0, d.Len())
			vals := d.vals
			allStrings := true
			for _, k := range d.keys {
				if k.k != KindString {
					allStrings = false
					break
				}
				keys = append(keys, k.str())
			}
			if !allStrings {
				// Keys of different types can collide once stringified;
				// as in a JavaScript object, the last value wins.
				keys, vals = keys[:0], make([]Value, 0, d.Len())
				for i, k := range d.keys {
					ks := JSString(k)
					if j := slices.Index(keys, ks); j >= 0 {
						vals[j] = d.vals[i]
						continue
					}
					keys, vals = append(keys, ks), append(vals, d.vals[i])
				}
			}
			w.object(depth, keys, vals)
		} else {
			elems := v.arr().Elems
			if len(elems) == 0 {
				w.buf = append(w.buf, "[]"...)
			} else {
				w.buf = append(w.buf, '[')
				for i, e := range elems {
					if i > 0 {
						w.buf = append(w.buf, ',')
					}
					w.newline(depth + 1)
					w.value(e, depth+1)
				}
				w.newline(depth)
				w.buf = append(w.buf, ']')
			}
		}
		w.pop()
	}
}

// plainKeys reports whether d's keys are strings that JavaScript keeps in
// insertion order (no array-index keys), so d can be written as it is.
func (w *jsonWriter) plainKeys(d *Dict) bool {
	for i := range d.keys {
		k := &d.keys[i]
		if k.k != KindString {
			return false
		}
		if _, ok := arrayIndexKey(k.str()); ok {
			return false
		}
	}
	return true
}

func (w *jsonWriter) plainObject(d *Dict, depth int) {
	if d.Len() == 0 {
		w.buf = append(w.buf, "{}"...)
		return
	}
	w.buf = append(w.buf, '{')
	for i := range d.keys {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.newline(depth + 1)
		w.buf = jsonscan.AppendString(w.buf, d.keys[i].str())
		w.buf = append(w.buf, ':')
		if w.indent > 0 {
			w.buf = append(w.buf, ' ')
		}
		w.value(d.vals[i], depth+1)
	}
	w.newline(depth)
	w.buf = append(w.buf, '}')
}

func (w *jsonWriter) object(depth int, keys []string, vals []Value) {
	if len(keys) == 0 {
		w.buf = append(w.buf, "{}"...)
		return
	}
	var order []int
	for _, k := range keys {
		if _, ok := arrayIndexKey(k); ok {
			order = make([]int, len(keys))
			break
		}
	}
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		na, oka := arrayIndexKey(keys[a])
		nb, okb := arrayIndexKey(keys[b])
		switch {
		case oka && okb:
			return int(int64(na) - int64(nb))
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
	w.buf = append(w.buf, '{')
	for n := range keys {
		i := n
		if order != nil {
			i = order[n]
		}
		if n > 0 {
			w.buf = append(w.buf, ',')
		}
		w.newline(depth + 1)
		w.buf = jsonscan.AppendString(w.buf, keys[i])
		w.buf = append(w.buf, ':')
		if w.indent > 0 {
			w.buf = append(w.buf, ' ')
		}
		w.value(vals[i], depth+1)
	}
	w.newline(depth)
	w.buf = append(w.buf, '}')
}
