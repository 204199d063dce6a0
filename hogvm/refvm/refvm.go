// Package refvm finds PostHog's reference implementations of Hog — npm
// @posthog/hogvm (the VM) and @posthog/hogql-parser (the parser), installed
// outside the repository by hogvm/compiler/testdata/refvm/install.sh — for
// the conformance tests and bench/hogvm. Plain `go test` never installs
// them; the tests that need them skip and say why.
package refvm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Packages of the reference implementations.
const (
	VM     = "@posthog/hogvm"
	Parser = "@posthog/hogql-parser"
)

// Dir is where install.sh puts the packages: $HOGWIRE_REFVM_DIR, else
// $XDG_CACHE_HOME/hogwire-refvm, else ~/.cache/hogwire-refvm.
func Dir() (string, error) {
	if d := os.Getenv("HOGWIRE_REFVM_DIR"); d != "" {
		return d, nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", errors.New("no home directory to find the reference implementations in; set HOGWIRE_REFVM_DIR")
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "hogwire-refvm"), nil
}

// Find returns node and the install directory holding pkg, or an error
// saying what is missing (for a test to skip with).
func Find(pkg string) (node, dir string, err error) {
	node, err = exec.LookPath("node")
	if err != nil {
		return "", "", fmt.Errorf("node is not installed; %s needs it", pkg)
	}
	if dir, err = Dir(); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(pkg), "package.json")); err != nil {
		return "", "", fmt.Errorf("%s is not installed in %s; run hogvm/compiler/testdata/refvm/install.sh", pkg, dir)
	}
	return node, dir, nil
}
