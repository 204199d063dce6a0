package compiler

import "github.com/hogwire/hogwire/hogvm/stl"

// isSTL reports whether name is a function every HogVM provides (HOG.md
// §6): the standard library (package stl), print, and the names PostHog's
// VMs reserve (run, sleep, import). A call of any other name must be a
// local, a captured variable, or a host function passed in
// Options.Functions.
func isSTL(name string) bool {
	switch name {
	case "print", "run", "sleep", "import":
		return true
	}
	return stl.Library().Has(name)
}
