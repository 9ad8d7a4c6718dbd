#!/usr/bin/env bash
# Installs what RAUTA's build and tests need, only where it is missing.
#   hack/deps.sh build   Go modules (the demo)
#   hack/deps.sh test    also Debian packages for eBPF, network namespaces and load tools
#   hack/deps.sh bench   also what only the benchmarks use (bench/mesh: iptables, nginx)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-build}

if ! command -v go >/dev/null 2>&1; then
  echo "Go 1.26 is required (go not found on PATH)" >&2
  exit 1
fi

if [ "$what" = test ] || [ "$what" = bench ]; then
  pairs=(clang:clang llvm-strip:llvm bpftool:bpftool ip:iproute2 wrk:wrk h2load:nghttp2-client curl:curl)
  # bench/mesh's sidecar baseline: iptables REDIRECT into an nginx per pod.
  [ "$what" = bench ] && pairs+=(iptables:iptables nginx:nginx-light)
  need=()
  for pair in "${pairs[@]}"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
  done
  [ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "missing Debian packages: ${need[*]} (run as root to install them)" >&2
      exit 1
    fi
    echo "installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

go mod download
