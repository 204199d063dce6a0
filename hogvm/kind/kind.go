// Package kind describes the kinds of Hog code a PostHog-style pipeline
// runs, each with its own globals and host functions:
//
//   - destination: a program run for every matching event, with the
//     invocation globals (event, person, groups, project, source, inputs;
//     events instead of event, person and groups for code that delivers
//     in batches) and the host functions fetch and postHogCapture, as PostHog's
//     compile_hog allows for destinations;
//   - transformation: a program that returns the changed event (or null
//     to drop it), with event, project, source and inputs and the host
//     function geoipLookup: it runs inside ingestion, where fetch is not
//     available;
//   - source_webhook: a program run on an inbound HTTP request (PostHog's
//     source webhook), with request, project, source and inputs and the
//     host functions postHogCapture and verifyWebhookSignature; it
//     returns nothing, or {httpResponse: {status, body}} to choose the
//     answer;
//   - filter: an expression over the filter globals, which mirror
//     ClickHouse's events table (see package filters), with no host
//     functions.
//
// Compile compiles source as a kind: host functions other than the kind's
// are compile errors, and reading a global the kind does not have is
// reported as a warning. Plain compiler.Compile stays strict: no host
// functions at all.
package kind

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/compiler"
)

// Kind is a kind of Hog code.
type Kind struct {
	// Name is "destination", "transformation", "source_webhook" or
	// "filter".
	Name string
	// Globals are the global variables the code can read.
	Globals []string
	// Functions are the host functions it may call besides the standard
	// library.
	Functions []string
	// Expression: the code is one expression (a filter), not a program.
	Expression bool
}

// Destination is the code of a destination (PostHog's HogFunction of type
// destination).
func Destination() Kind {
	return Kind{
		Name:      "destination",
		Globals:   []string{"event", "events", "person", "groups", "project", "source", "inputs"},
		Functions: []string{"fetch", "postHogCapture"},
	}
}

// Transformation is the code of a transformation.
func Transformation() Kind {
	return Kind{
		Name:      "transformation",
		Globals:   []string{"event", "project", "source", "inputs"},
		Functions: []string{"geoipLookup"},
	}
}

// SourceWebhook is the code of an inbound webhook.
func SourceWebhook() Kind {
	return Kind{
		Name:      "source_webhook",
		Globals:   []string{"request", "project", "source", "inputs"},
		Functions: []string{"postHogCapture", "verifyWebhookSignature"},
	}
}

// Filter is a filter expression.
func Filter() Kind {
	return Kind{
		Name: "filter",
		Globals: []string{"event", "uuid", "distinct_id", "timestamp", "properties", "elements_chain",
			"elements_chain_href", "elements_chain_texts", "elements_chain_ids", "elements_chain_elements",
			"person", "pdi", "$group_0", "$group_1", "$group_2", "$group_3", "$group_4",
			"group_0", "group_1", "group_2", "group_3", "group_4", "variables"},
		Expression: true,
	}
}

// All returns the kinds, in the order above.
func All() []Kind { return []Kind{Destination(), Transformation(), SourceWebhook(), Filter()} }

// Lookup returns the kind with the given name.
func Lookup(name string) (Kind, error) {
	for _, k := range All() {
		if k.Name == name {
			return k, nil
		}
	}
	var names []string
	for _, k := range All() {
		names = append(names, k.Name)
	}
	return Kind{}, fmt.Errorf("unknown kind %q: use %s", name, strings.Join(names, ", "))
}

// Options returns the compiler options for the kind; warn, when not nil,
// receives reads of globals the kind does not have (and the compiler's
// other warnings).
func (k Kind) Options(warn func(compiler.Warning)) compiler.Options {
	o := compiler.Options{Functions: slices.Clone(k.Functions), Warn: warn}
	if warn != nil {
		o.Globals = slices.Clone(k.Globals)
	}
	return o
}

// Compile compiles src as code of this kind: a program, or for filters
// one expression.
func (k Kind) Compile(src string, warn func(compiler.Warning)) (*bytecode.Program, error) {
	if k.Expression {
		return compiler.CompileExpr(src, k.Options(warn))
	}
	return compiler.Compile(src, k.Options(warn))
}
