#!/usr/bin/env bash
# Builds the Go vulnerability database that `make vulncheck` hands to
# govulncheck, from the golang.org/x/vulndb module: its data/osv reports,
# indexed by its own cmd/indexdb into the layout vuln.go.dev serves. Only the
# Go module proxy is needed, so the check runs where vuln.go.dev cannot be
# reached. The database lands in bin/vulndb-<version>/ and is rebuilt only
# when that folder is missing.
#
# Usage: hack/vulndb.sh <version|latest>
# Prints the database folder, for `govulncheck -db file://<folder>`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mod=golang.org/x/vulndb
version=${1:?usage: vulndb.sh <version|latest>}

# Module queries run outside podgate's module, so they leave its go.mod and
# go.sum alone.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"

if [[ $version == latest ]]; then
  version=$(go list -m -f '{{.Version}}' "$mod@latest")
fi
dest="$root/bin/vulndb-$version"
if [[ ! -f "$dest/index/db.json" ]]; then
  echo "indexing $mod $version (cached afterwards in ${dest#$root/})" >&2
  src=$(go mod download -json "$mod@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -d $src/data/osv ]] || { echo "vulndb.sh: $mod@$version has no data/osv" >&2; exit 1; }
  rm -rf "$dest.tmp"
  go run "$mod/cmd/indexdb@$version" -vulns "$src/data/osv" -out "$dest.tmp"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
fi
echo "$dest"
