#!/usr/bin/env bash
# Data-plane benchmark: RAUTA (standalone `rauta run`, and rauta-dataplane
# as deployed per Gateway, fed over a config stream) side by side with nginx,
# HAProxy, Caddy and a direct connection (see docs/performance.md).
#
#   bench/run.sh [RESULTS.json] [proxybench flags...]
#   QUICK=1 bench/run.sh            # smoke test, about 10 minutes
#   CELLS=tls,idle bench/run.sh     # only some cell groups: http, tls, idle,
#                                   # grpc, ws, routes (default all)
#
# Installs the Debian packages it needs where they are missing (as root),
# builds rauta, rauta-dataplane and the harness, runs bench/proxybench, prints the table and
# writes every sample and median to RESULTS.json (default: a file in /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-/tmp/rauta-bench-$(date -u +%Y%m%dT%H%M%SZ).json}
shift || true

if ! command -v go >/dev/null 2>&1; then
  echo "Go 1.26 is required (go not found on PATH)" >&2
  exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
  echo "the benchmark pins the proxy to CPU 0 and the load to CPU 1: it needs 2 CPUs, this machine has $(nproc)" >&2
  exit 1
fi

need=()
for pair in nginx:nginx haproxy:haproxy caddy:caddy wrk:wrk h2load:nghttp2-client openssl:openssl taskset:util-linux; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need[*]}"
  # The nginx and haproxy packages start system services on install; a
  # policy-rc.d that says "no" keeps them from running outside the harness.
  policy=/usr/sbin/policy-rc.d
  added_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -n "$added_policy" ] && rm -f "$policy"
fi
export PATH="$PATH:/usr/sbin"
if [ "$(id -u)" -ne 0 ]; then
  echo "note: not root, so peak RSS is the peak since each contender started (VmHWM cannot be reset)" >&2
fi

bin=$(mktemp -d /tmp/rauta-bench-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
echo "building rauta, rauta-dataplane and proxybench ..."
go build -o "$bin/rauta" ./cmd/rauta
go build -o "$bin/rauta-dataplane" ./cmd/rauta-dataplane
go build -o "$bin/proxybench" ./bench/proxybench

flags=()
[ "${QUICK:-0}" = 1 ] && flags+=(-quick)
[ -n "${CELLS:-}" ] && flags+=(-cells "$CELLS")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/proxybench" -rauta "$bin/rauta" -dataplane "$bin/rauta-dataplane" -out "$out" "${flags[@]}" "$@"
