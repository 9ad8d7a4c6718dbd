#!/usr/bin/env bash
# Regenerates the flag sections of docs/reference.md from the binary's own help.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/rauta
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/rauta
head=$(sed '/^## rauta run$/,$d' docs/reference.md)
{
  printf '%s\n' "$head"
  echo
  for c in run controller dataplane observe mesh; do
    printf '## rauta %s\n\n```\n' "$c"
    # -h exits non-zero (flag.ErrHelp); its output is what we want.
    { "$bin" "$c" -h 2>&1 || true; } | sed -E -e 's/\(default "[^"]*-[0-9]+"\)$/(default "<hostname>-<pid>")/' \
      -e "s/\\(default \"$(hostname)\"\\)/(default \"<hostname>\")/"
    printf '```\n\n'
  done
} > docs/reference.md.new
mv docs/reference.md.new docs/reference.md
