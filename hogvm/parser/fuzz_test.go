package parser_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hogwire/hogwire/hogvm/parser"
)

// FuzzParse checks that no input makes the parser panic or hang, in any of
// its three modes.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../compiler/testdata/*/*.hog")
	for _, name := range files {
		if src, err := os.ReadFile(name); err == nil {
			f.Add(string(src))
		}
	}
	for _, s := range []string{"", "{", "f'{", "x -> {", "a ?. b", "1.2.3", "`", "(a, b) ->", "if (a, b", "--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, _ = parser.ParseProgram(src)
		_, _ = parser.ParseExpr(src)
		_, _ = parser.ParseTemplate(src)
	})
}
