#!/usr/bin/env bash
# Prints the path of h2spec (the HTTP/2 conformance tool the internal/h2
# tests run), building the pinned version into the cache folder (outside the
# repo) the first time. Build messages go to stderr; stdout is only the path.
set -euo pipefail
version=v2.2.1
bin=${RAUTA_CACHE:-$HOME/.cache/rauta}/bin
h2spec=$bin/h2spec-$version
if [ ! -x "$h2spec" ]; then
  echo "building h2spec $version into $bin (once) ..." >&2
  mkdir -p "$bin"
  GOBIN=$(mktemp -d) && export GOBIN
  work=$(mktemp -d)
  trap 'rm -rf "$GOBIN" "$work"' EXIT
  # h2spec has no go.mod (+incompatible); installing from an empty directory
  # keeps RAUTA's go.mod and go.sum out of it.
  (cd "$work" && go install "github.com/summerwind/h2spec/cmd/h2spec@$version+incompatible") >&2
  mv "$GOBIN/h2spec" "$h2spec"
fi
echo "$h2spec"
