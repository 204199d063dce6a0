#!/bin/sh
# Installs PostHog's reference HogVM (npm @posthog/hogvm, MIT) and parser
# (npm @posthog/hogql-parser, MIT, WebAssembly) outside the repository, for
# the conformance tests (hogvm/compiler/refvm_test.go and
# hogvm/parser/refparser_test.go). CI runs this once before `go test`; plain
# `go test` never touches the network and skips those tests when the
# packages are not installed.
#
# Target directory: $HOGWIRE_REFVM_DIR, else $XDG_CACHE_HOME/hogwire-refvm,
# else $HOME/.cache/hogwire-refvm.
set -eu
dir="${HOGWIRE_REFVM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hogwire-refvm}"
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"name":"hogwire-refvm","private":true}' > package.json
npm install --no-audit --no-fund --silent @posthog/hogvm@1.0.71 luxon@3 @posthog/hogql-parser@1.3.87
echo "reference HogVM and parser installed in $dir"
