#!/usr/bin/env bash
# Regenerates the committed eBPF objects and Go bindings in bpf/ with bpf2go.
# Needs clang-14, llvm-strip-14 and libbpf-dev (Debian 12). The flags are
# pinned in bpf/doc.go so that the output is byte-for-byte reproducible.
set -euo pipefail
cd "$(dirname "$0")/.."
go generate ./bpf/
