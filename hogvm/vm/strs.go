package vm

import (
	"unicode/utf16"
	"unicode/utf8"
)

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// UTF16Units converts s to UTF-16, the unit JavaScript strings count in.
func UTF16Units(s string) []uint16 { return utf16.Encode([]rune(s)) }

// FromUTF16 converts UTF-16 units to a string.
func FromUTF16(u []uint16) string { return string(utf16.Decode(u)) }

// UTF16Len is JavaScript's string length.
func UTF16Len(s string) int {
	if isASCII(s) {
		return len(s)
	}
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// SliceUTF16 is s.slice(start, end) on UTF-16 units, with bounds already
// clamped to [0, length].
func SliceUTF16(s string, start, end int) string {
	if start >= end {
		return ""
	}
	if isASCII(s) {
		return s[start:end]
	}
	return FromUTF16(UTF16Units(s)[start:end])
}

// IndexUTF16 is s.indexOf(sub) counted in UTF-16 units.
func IndexUTF16(s, sub string, byteIndex int) int {
	if byteIndex < 0 {
		return -1
	}
	return UTF16Len(s[:byteIndex])
}
