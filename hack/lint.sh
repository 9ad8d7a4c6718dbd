#!/usr/bin/env bash
# Runs golangci-lint with the checked-in .golangci.yml, building the pinned
# version into the cache folder (outside the repo) the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
version=v2.15.0
bin=${RAUTA_CACHE:-$HOME/.cache/rauta}/bin
lint=$bin/golangci-lint-$version
if [ ! -x "$lint" ]; then
  echo "building golangci-lint $version into $bin (once) ..."
  mkdir -p "$bin"
  GOBIN=$(mktemp -d) && export GOBIN
  go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
  mv "$GOBIN/golangci-lint" "$lint"
fi
"$lint" run ./...
