package stl

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

// utf16Units converts s to UTF-16, the unit JavaScript strings count in.
func utf16Units(s string) []uint16 { return utf16.Encode([]rune(s)) }

func fromUTF16(u []uint16) string { return string(utf16.Decode(u)) }

// utf16Len is JavaScript's string length.
func utf16Len(s string) int {
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

// sliceUTF16 is s.slice(start, end) on UTF-16 units, with bounds already
// clamped to [0, length].
func sliceUTF16(s string, start, end int) string {
	if start >= end {
		return ""
	}
	if isASCII(s) {
		return s[start:end]
	}
	return fromUTF16(utf16Units(s)[start:end])
}

// indexUTF16 is s.indexOf(sub) counted in UTF-16 units.
func indexUTF16(s, sub string, byteIndex int) int {
	if byteIndex < 0 {
		return -1
	}
	return utf16Len(s[:byteIndex])
}
