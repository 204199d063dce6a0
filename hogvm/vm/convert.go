package vm

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"
)

// FromGo converts JSON-like Go data to a Hog value: nil, bool, integers,
// floats, json.Number, string, []any, []string, map[string]any,
// map[string]string, time.Time (a UTC DateTime) and Value itself. Map keys
// are ordered as JavaScript orders object keys (integer-like keys first,
// then the rest sorted, since Go maps have no order). Unsupported types
// become null.
func FromGo(x any) Value { return fromGo(x, 0) }

func fromGo(x any, depth int) Value {
	if depth > maxJSONDepth {
		return Null
	}
	switch v := x.(type) {
	case nil:
		return Null
	case Value:
		return v
	case bool:
		return Bool(v)
	case int:
		return Int(int64(v))
	case int8:
		return Int(int64(v))
	case int16:
		return Int(int64(v))
	case int32:
		return Int(int64(v))
	case int64:
		return Int(v)
	case uint:
		return Number(float64(v))
	case uint8:
		return Number(float64(v))
	case uint16:
		return Number(float64(v))
	case uint32:
		return Number(float64(v))
	case uint64:
		return Number(float64(v))
	case float32:
		return Number(float64(v))
	case float64:
		return Number(v)
	case json.Number:
		f, _ := strconv.ParseFloat(string(v), 64)
		return Number(f)
	case string:
		return String(v)
	case time.Time:
		return NewDateTime(float64(v.UnixMilli())/1000, "UTC")
	case []any:
		out := make([]Value, len(v))
		for i, e := range v {
			out[i] = fromGo(e, depth+1)
		}
		return newArray(out)
	case []string:
		out := make([]Value, len(v))
		for i, e := range v {
			out[i] = String(e)
		}
		return newArray(out)
	case []Value:
		return newArray(slices.Clone(v))
	case map[string]any:
		keys := sortedKeys(v)
		d := NewDict(len(keys))
		for _, k := range keys {
			d.Set(String(k), fromGo(v[k], depth+1))
		}
		jsOrder(d)
		return DictValue(d)
	case map[string]string:
		keys := sortedKeys(v)
		d := NewDict(len(keys))
		for _, k := range keys {
			d.Set(String(k), String(v[k]))
		}
		jsOrder(d)
		return DictValue(d)
	}
	return Null
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ToGo converts a value to JSON-like Go data: nil, bool, float64 (int64
// for integral numbers within ±2^53), string, []any, map[string]any (keys
// in their string form). Dates, errors and functions become the marker
// maps PostHog uses (e.g. {"__hogDateTime__": true, "dt": …, "zone": …}).
// Cycles become nil.
func (v Value) ToGo() any { return toGo(v, 0) }

func toGo(v Value, depth int) any {
	if depth > maxCopyDepth {
		return nil
	}
	switch v.k {
	case KindNull:
		return nil
	case KindBool:
		return v.n != 0
	case KindNumber:
		f := v.num()
		if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
			return int64(f)
		}
		return f
	case KindString:
		return v.str()
	case KindArray, KindTuple:
		elems := v.arr().Elems
		out := make([]any, len(elems))
		for i, e := range elems {
			if e.isObject() && e.p == v.p {
				continue
			}
			out[i] = toGo(e, depth+1)
		}
		return out
	case KindDict:
		d := v.dict()
		out := make(map[string]any, d.Len())
		for i, k := range d.keys {
			e := d.vals[i]
			if e.isObject() && e.p == v.p {
				out[JSString(k)] = nil
				continue
			}
			out[JSString(k)] = toGo(e, depth+1)
		}
		return out
	case KindDateTime:
		dt := v.AsDateTime()
		return map[string]any{"__hogDateTime__": true, "dt": dt.Seconds, "zone": dt.Zone}
	case KindDate:
		d := v.AsDate()
		return map[string]any{"__hogDate__": true, "year": int64(d.Year), "month": int64(d.Month), "day": int64(d.Day)}
	case KindError:
		e := v.AsError()
		m := map[string]any{"__hogError__": true, "type": e.Type, "message": e.Message}
		if e.Payload.k != KindNull {
			m["payload"] = toGo(e.Payload, depth+1)
		}
		return m
	case KindClosure, KindCallable:
		return Format(v)
	}
	return nil
}
