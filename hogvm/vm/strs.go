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

// utf16Units converts s to UTF-16, the unit JavaScript strings count in.
func utf16Units(s string) []uint16 { return utf16.Encode([]rune(s)) }
