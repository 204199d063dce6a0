package vm

import (
	"math"
	"strconv"
	"strings"
)

// formatNumber renders f the way JavaScript's Number.prototype.toString
// does, which is what PostHog's reference VM prints.
func formatNumber(f float64) string {
	return string(appendNumber(nil, f))
}

func appendNumber(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e18 {
		return strconv.AppendInt(b, int64(f), 10)
	}
	switch {
	case f != f:
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	var buf, dbuf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	// e is d[.ddd]e±XX: split into the digits and the exponent, in
	// place (event timestamps such as $time are such numbers).
	digits, x := dbuf[:0], 0
	i := 0
	for ; e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits = append(digits, e[i])
		}
	}
	neg := e[i+1] == '-'
	for _, c := range e[i+2:] {
		x = 10*x + int(c-'0')
	}
	if neg {
		x = -x
	}
	k, n := len(digits), x+1
	switch {
	case k <= n && n <= 21:
		b = append(b, digits...)
		for i := 0; i < n-k; i++ {
			b = append(b, '0')
		}
	case 0 < n && n <= 21:
		b = append(b, digits[:n]...)
		b = append(b, '.')
		b = append(b, digits[n:]...)
	case -6 < n && n <= 0:
		b = append(b, "0."...)
		for i := 0; i < -n; i++ {
			b = append(b, '0')
		}
		b = append(b, digits...)
	default:
		b = append(b, digits[0])
		if k > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'e')
		if n-1 >= 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, int64(n-1), 10)
	}
	return b
}

func isJSSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// stringToNumber is JavaScript's Number(string).
func stringToNumber(s string) float64 {
	s = strings.TrimFunc(s, isJSSpace)
	if s == "" {
		return 0
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			var f float64
			for _, c := range s[2:] {
				d := digitVal(c)
				if d >= base {
					return math.NaN()
				}
				f = f*float64(base) + float64(d)
			}
			return f
		}
	}
	body := s
	if body[0] == '+' || body[0] == '-' {
		body = body[1:]
	}
	if body == "Infinity" {
		if s[0] == '-' {
			return math.Inf(-1)
		}
		return math.Inf(1)
	}
	if n := decimalPrefix(body); n != len(body) || n == 0 {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && f == 0 {
		return math.NaN()
	}
	return f
}

func digitVal(c rune) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

// decimalPrefix returns the length of the longest prefix of s that is a
// JavaScript decimal literal without sign: digits [. digits] [e[±]digits].
func decimalPrefix(s string) int {
	i, digits := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		j := i + 1
		frac := 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
			frac++
		}
		if digits+frac > 0 {
			i = j
			digits += frac
		}
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i
}

// ParseFloatJS is JavaScript's parseFloat applied to a string.
func ParseFloatJS(s string) float64 {
	s = strings.TrimLeftFunc(s, isJSSpace)
	sign := 1.0
	body := s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		if body[0] == '-' {
			sign = -1
		}
		body = body[1:]
	}
	if strings.HasPrefix(body, "Infinity") {
		return sign * math.Inf(1)
	}
	n := decimalPrefix(body)
	if n == 0 {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(body[:n], 64)
	if err != nil && f == 0 {
		return math.NaN()
	}
	return sign * f
}

// ParseIntJS is JavaScript's parseInt(s) with no radix.
func ParseIntJS(s string) float64 {
	s = strings.TrimLeftFunc(s, isJSSpace)
	sign := 1.0
	if s != "" && (s[0] == '+' || s[0] == '-') {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	base := 10
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base = 16
		s = s[2:]
	}
	var f float64
	n := 0
	for _, c := range s {
		d := digitVal(c)
		if d >= base {
			break
		}
		f = f*float64(base) + float64(d)
		n++
	}
	if n == 0 {
		return math.NaN()
	}
	return sign * f
}

// ToNumber is JavaScript's Number(v) for Hog values.
func ToNumber(v Value) float64 {
	switch v.k {
	case KindNumber:
		return v.num()
	case KindNull:
		return 0
	case KindBool:
		if v.n != 0 {
			return 1
		}
		return 0
	case KindString:
		return stringToNumber(v.str())
	case KindArray, KindTuple:
		// Number([]) is 0, Number([x]) is Number(String(x)).
		return stringToNumber(JSString(v))
	}
	return math.NaN()
}

// JSString is JavaScript's String(v), used where PostHog's VM relies on
// implicit conversion (join, template concatenation of raw values).
func JSString(v Value) string {
	switch v.k {
	case KindNull:
		return "null"
	case KindBool:
		if v.n != 0 {
			return "true"
		}
		return "false"
	case KindNumber:
		return formatNumber(v.num())
	case KindString:
		return v.str()
	case KindArray, KindTuple:
		return JoinJS(v.arr().Elems, ",", 0)
	case KindDict:
		return "[object Map]"
	}
	return "[object Object]"
}

// maxJoin caps implicit array-to-string conversions (comparisons, joins of
// nested arrays): shared references can make them exponentially long.
const maxJoin = 1 << 20

func JoinJS(elems []Value, sep string, depth int) string {
	if depth > 64 {
		return ""
	}
	var sb strings.Builder
	for i, e := range elems {
		if sb.Len() > maxJoin {
			break
		}
		if i > 0 {
			sb.WriteString(sep)
		}
		switch e.k {
		case KindNull:
		case KindArray, KindTuple:
			sb.WriteString(JoinJS(e.arr().Elems, ",", depth+1))
		default:
			sb.WriteString(JSString(e))
		}
	}
	return sb.String()
}
