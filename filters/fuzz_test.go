package filters_test

import (
	"errors"
	"testing"
	"unicode/utf8"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/compiler"
)

var quoteSeeds = []string{
	"", "plain", "$browser", "it's", `back\slash`, "`tick`", "a\nb\r\tc", "\x00nul", "\\'", "''", "{x}", "\\{",
	"\x07\x08\x0b\x0c", "ünïcödé 😀", "\xff\xfe invalid utf-8", "%_", `\x41`, `\0`, "-- not a comment", "/* nor this */",
}

// FuzzQuoteString checks that QuoteString yields a literal Hog reads back
// as exactly the input.
func FuzzQuoteString(f *testing.F) {
	for _, s := range quoteSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := compiler.CompileExpr(filters.QuoteString(s), compiler.Options{})
		if err != nil {
			t.Fatalf("QuoteString(%q) = %s does not compile: %v", s, filters.QuoteString(s), err)
		}
		if len(p.Code) != 3 || p.Code[0] != int64(bytecode.String) || p.Code[1] != s {
			t.Fatalf("QuoteString(%q) = %s compiles to %#v", s, filters.QuoteString(s), p.Code)
		}
	})
}

// FuzzPropertyFilter checks that any key and value compile, and that an
// exact filter matches an event that has exactly that property.
func FuzzPropertyFilter(f *testing.F) {
	for _, s := range quoteSeeds {
		f.Add(s, s)
	}
	f.Add("$browser", "Chrome")
	f.Fuzz(func(t *testing.T, key, value string) {
		if !utf8.ValidString(key) || !utf8.ValidString(value) {
			return // protobuf strings are UTF-8
		}
		fl := props(prop(t, key, exact, value))
		bc, err := filters.Compile(fl)
		if key == "" {
			var fe *filters.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("empty key: err = %v, want a FieldError", err)
			}
			return
		}
		if err != nil {
			src, _ := filters.Source(fl)
			t.Fatalf("key %q value %q: %v (source %s)", key, value, err, src)
		}
		if !run(t, bc, globals("e", map[string]any{key: value}, nil)) {
			src, _ := filters.Source(fl)
			t.Fatalf("key %q value %q: the filter does not match its own property (source %s)", key, value, src)
		}
		if run(t, bc, globals("e", map[string]any{key + "x": value}, nil)) {
			t.Fatalf("key %q value %q: the filter matches another key", key, value)
		}
	})
}

// FuzzExpression checks that an expression that compiles alone also
// compiles combined with the other filters, whatever it ends with.
func FuzzExpression(f *testing.F) {
	for _, s := range []string{"true", "event = 'a' -- comment", "1 /* c */", "(a) or (b", "a) or (b", "properties.x\n", "f'{event}'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if _, err := compiler.CompileExpr(expr, compiler.Options{}); err != nil {
			return
		}
		fl := &hogwirev1.Filters{
			Events:     []*hogwirev1.EventFilter{{Event: "a"}, {Event: "b"}},
			Expression: expr,
		}
		if _, err := filters.Compile(fl); err != nil {
			t.Fatalf("expression %q compiles alone but not in filters: %v", expr, err)
		}
	})
}
