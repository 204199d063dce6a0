package vm

import (
	"math"
	"unsafe"
)

// Kind is the type of a Value.
type Kind uint8

// The kinds of Hog values. Numbers are IEEE doubles, as in PostHog's
// reference VM, so integers and floats share one kind.
const (
	KindNull Kind = iota
	KindBool
	KindNumber
	KindString
	KindArray
	KindTuple
	KindDict
	KindDateTime
	KindDate
	KindError
	KindClosure
	KindCallable
)

var kindNames = [...]string{"null", "boolean", "number", "string", "array", "tuple", "object", "datetime", "date", "error", "function", "function"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Value is one Hog value. The zero Value is null.
//
// Scalars and strings are stored inline, without boxing: p holds the string
// data or the object pointer, n the string length, the number bits or the
// boolean.
type Value struct {
	p unsafe.Pointer
	n uint64
	k Kind
}

// Null is the null value.
var Null = Value{}

// Bool returns a boolean value.
func Bool(b bool) Value {
	if b {
		return Value{k: KindBool, n: 1}
	}
	return Value{k: KindBool}
}

// Number returns a numeric value.
func Number(f float64) Value { return Value{k: KindNumber, n: math.Float64bits(f)} }

// Int returns a numeric value holding i (as a double, like PostHog's VM).
func Int(i int64) Value { return Number(float64(i)) }

// String returns a string value.
func String(s string) Value {
	return Value{k: KindString, p: unsafe.Pointer(unsafe.StringData(s)), n: uint64(len(s))}
}

// NewArray returns an array value holding elems (not copied).
func NewArray(elems []Value) Value { return newArray(elems) }

// NewTuple returns a tuple value holding elems (not copied).
func NewTuple(elems []Value) Value {
	v := newArray(elems)
	v.k = KindTuple
	return v
}

// DictValue wraps d as a value.
func DictValue(d *Dict) Value { return Value{k: KindDict, p: unsafe.Pointer(d)} }

// NewDateTime returns a DateTime value: seconds since the epoch in an IANA zone.
func NewDateTime(seconds float64, zone string) Value {
	return Value{k: KindDateTime, p: unsafe.Pointer(&DateTime{Seconds: seconds, Zone: zone})}
}

// NewDate returns a calendar date value.
func NewDate(year, month, day int) Value {
	return Value{k: KindDate, p: unsafe.Pointer(&Date{Year: year, Month: month, Day: day})}
}

// NewError returns a Hog error value as Error(...) or HogError(...) build it.
func NewError(typ, message string, payload Value) Value {
	if typ == "" {
		typ = "Error"
	}
	if message == "" {
		message = "An error occurred"
	}
	return Value{k: KindError, p: unsafe.Pointer(&ErrorValue{Type: typ, Message: message, Payload: payload})}
}

func arrayOrTuple(k Kind, a *Array) Value { return Value{k: k, p: unsafe.Pointer(a)} }

// Kind reports the value's type.
func (v Value) Kind() Kind { return v.k }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.k == KindNull }

// AsBool returns the boolean held by v (false for other kinds).
func (v Value) AsBool() bool { return v.k == KindBool && v.n != 0 }

// AsNumber returns the number held by v (0 for other kinds).
func (v Value) AsNumber() float64 {
	if v.k != KindNumber {
		return 0
	}
	return math.Float64frombits(v.n)
}

func (v Value) num() float64 { return math.Float64frombits(v.n) }

// AsString returns the string held by v ("" for other kinds).
func (v Value) AsString() string {
	if v.k != KindString {
		return ""
	}
	return v.str()
}

func (v Value) str() string { return unsafe.String((*byte)(v.p), int(v.n)) }

// AsArray returns the array or tuple held by v, or nil.
func (v Value) AsArray() *Array {
	if v.k != KindArray && v.k != KindTuple {
		return nil
	}
	return (*Array)(v.p)
}

// AsDict returns the dict held by v, or nil.
func (v Value) AsDict() *Dict {
	if v.k != KindDict {
		return nil
	}
	return (*Dict)(v.p)
}

// AsDateTime returns the DateTime held by v, or nil.
func (v Value) AsDateTime() *DateTime {
	if v.k != KindDateTime {
		return nil
	}
	return (*DateTime)(v.p)
}

// AsDate returns the Date held by v, or nil.
func (v Value) AsDate() *Date {
	if v.k != KindDate {
		return nil
	}
	return (*Date)(v.p)
}

// AsError returns the error value held by v, or nil.
func (v Value) AsError() *ErrorValue {
	if v.k != KindError {
		return nil
	}
	return (*ErrorValue)(v.p)
}

func (v Value) arr() *Array       { return (*Array)(v.p) }
func (v Value) dict() *Dict       { return (*Dict)(v.p) }
func (v Value) closure() *Closure { return (*Closure)(v.p) }
func (v Value) callable() *Callable {
	return (*Callable)(v.p)
}

// isObject reports whether v is a reference value (compared by identity).
func (v Value) isObject() bool { return v.k >= KindArray }

// Array is the storage of an array or tuple. Arrays are reference values:
// every alias sees in-place changes.
type Array struct {
	Elems []Value
	cost  int64 // memory estimate, see costOf
}

// DateTime is an instant with the zone it is shown in.
type DateTime struct {
	Seconds float64
	Zone    string
}

// Date is a calendar date.
type Date struct {
	Year, Month, Day int
}

// ErrorValue is a Hog error object, as thrown by `throw Error(...)`.
type ErrorValue struct {
	Type    string
	Message string
	Payload Value // null when absent
}

// Truthy applies JavaScript truthiness: false, null, 0, NaN and "" are
// falsy; everything else, including empty arrays and dicts, is truthy.
func (v Value) Truthy() bool {
	switch v.k {
	case KindNull:
		return false
	case KindBool:
		return v.n != 0
	case KindNumber:
		f := v.num()
		return f != 0 && f == f
	case KindString:
		return v.n != 0
	}
	return true
}

// errorValue builds an error from Hog values, as Error(message, payload)
// and HogError(type, message, payload) do: falsy parts take the defaults.
func errorValue(typ, msg, payload Value) Value {
	t, m := "", ""
	if typ.Truthy() {
		t = JSString(typ)
	}
	if msg.Truthy() {
		m = JSString(msg)
	}
	return NewError(t, m, payload)
}

// newArray wraps elems (owned by the array from now on) and prices it.
func newArray(elems []Value) Value {
	var cost int64 = costUnit
	for _, e := range elems {
		cost += costOf(e)
	}
	return arrayOrTuple(KindArray, &Array{Elems: elems, cost: cost})
}

func elemsOf(v Value) ([]Value, bool) {
	if v.k == KindArray || v.k == KindTuple {
		return v.arr().Elems, true
	}
	return nil, false
}

// TypeOf is Hog's typeof(v): "null", "boolean", "integer", "float",
// "string", "array", "tuple", "object", "datetime", "date", "error",
// "function", or "sql" for a HogQL AST.
func TypeOf(v Value) string {
	switch v.k {
	case KindNull:
		return "null"
	case KindBool:
		return "boolean"
	case KindNumber:
		if f := v.num(); f == math.Trunc(f) {
			return "integer"
		}
		return "float"
	case KindString:
		return "string"
	case KindArray:
		return "array"
	case KindTuple:
		return "tuple"
	case KindDict:
		if d := v.dict(); d.Len() > 0 {
			if ast, ok := d.GetString("__hx_ast"); ok && ast.Truthy() {
				return "sql"
			}
		}
		return "object"
	case KindDateTime:
		return "datetime"
	case KindDate:
		return "date"
	case KindError:
		return "error"
	case KindClosure, KindCallable:
		return "function"
	}
	return "unknown"
}
