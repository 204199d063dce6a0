package compiler_test

import (
	"os"
	"testing"

	"github.com/hogwire/hogwire/hogvm/compiler"
)

// BenchmarkCompileDestination compiles a 100-line destination.
func BenchmarkCompileDestination(b *testing.B) {
	src, err := os.ReadFile("testdata/bench/destination.hog")
	if err != nil {
		b.Fatal(err)
	}
	opts := compiler.Options{Functions: []string{"fetch"}}
	if _, err := compiler.Compile(string(src), opts); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compiler.Compile(string(src), opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileFilter compiles a typical filter expression.
func BenchmarkCompileFilter(b *testing.B) {
	const src = "event.event = '$pageview' and properties.$browser = 'Chrome' and person.properties.email ilike '%@example.com'"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compiler.CompileExpr(src, compiler.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileTemplate compiles a typical input template.
func BenchmarkCompileTemplate(b *testing.B) {
	const src = "Hello {person.properties.name ?? 'there'}, you triggered {event.event} on {event.properties.$current_url}"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compiler.CompileTemplate(src, compiler.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
