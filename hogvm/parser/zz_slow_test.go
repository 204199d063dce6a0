package parser_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hogwire/hogwire/hogvm/parser"
)

func TestZZSlow(t *testing.T) {
	dir := os.Getenv("CORPUS")
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var worst time.Duration
	var worstName string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		s := string(b)
		// strip "go test fuzz v1\nstring(...)\n"
		lines := s[len("go test fuzz v1\n"):]
		q := lines[len("string(") : len(lines)-2]
		src, err := strconv.Unquote(q)
		if err != nil {
			continue
		}
		st := time.Now()
		parser.ParseProgram(src)
		parser.ParseExpr(src)
		parser.ParseTemplate(src)
		if d := time.Since(st); d > worst {
			worst, worstName = d, f
		}
	}
	t.Logf("%d files, worst %v %s", len(files), worst, worstName)
}
