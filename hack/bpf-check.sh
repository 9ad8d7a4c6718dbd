#!/usr/bin/env bash
# Fails when the committed eBPF objects or bindings in bpf/ differ from what
# the C source produces: it regenerates into a temporary copy of bpf/ and
# compares byte for byte (clang output is reproducible with the pinned flags,
# see docs/observer.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Same relative layout so the debug prefix maps and package path match.
mkdir -p "$tmp/bpf"
cp "$root"/bpf/*.c "$root"/bpf/*.h "$root"/bpf/doc.go "$tmp/bpf/"
cp "$root/go.mod" "$root/go.sum" "$tmp/"
(cd "$tmp" && go generate ./bpf/ >/dev/null)

status=0
for f in "$root"/bpf/*_bpfel.go "$root"/bpf/*_bpfel.o; do
	name="$(basename "$f")"
	if ! cmp -s "$f" "$tmp/bpf/$name"; then
		echo "bpf-check: bpf/$name is stale; run hack/bpf-generate.sh" >&2
		status=1
	fi
done
for f in "$tmp"/bpf/*_bpfel.go "$tmp"/bpf/*_bpfel.o; do
	name="$(basename "$f")"
	if [ ! -e "$root/bpf/$name" ]; then
		echo "bpf-check: bpf/$name is missing; run hack/bpf-generate.sh" >&2
		status=1
	fi
done
[ "$status" -eq 0 ] && echo "bpf-check: generated eBPF files are up to date"
exit "$status"
