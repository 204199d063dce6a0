#!/bin/sh
# Installs posthog-js (npm, MIT) outside the repository for the browser
# test of capture (capture/posthogjs_test.go). CI runs this once before
# `go test`; plain `go test` never touches the network and skips that
# test, saying why, when the package is not installed.
#
# Target directory: $HOGWIRE_POSTHOG_JS_DIR, else
# $XDG_CACHE_HOME/hogwire-posthog-js, else $HOME/.cache/hogwire-posthog-js.
set -eu
dir="${HOGWIRE_POSTHOG_JS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hogwire-posthog-js}"
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"name":"hogwire-posthog-js","private":true}' > package.json
npm install --no-audit --no-fund --silent posthog-js@1.449.2
echo "posthog-js installed in $dir"
