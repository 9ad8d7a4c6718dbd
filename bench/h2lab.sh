#!/usr/bin/env bash
# The HTTP/2 lab: the h2 m=64 cell (h2load -t1 -c1 -m64 over TLS, 1 KiB
# responses) of one contender at a time, for A/B comparisons of RAUTA
# builds against nginx and HAProxy (docs/performance.md, round 22).
#
#   unshare -n sh -c "ip link set lo up && bench/h2lab.sh DIR ROUNDS CONTENDER..."
#
# DIR is a directory kept by the harness (`proxybench -contenders
# rauta,nginx,haproxy -cells http -quick -headline-only -keep` prints it):
# its backend, nginx, HAProxy and rauta configurations are reused.
# CONTENDER is "nginx", "haproxy" or the path of a rauta binary (run with
# GOMAXPROCS=1 plus $RAUTA_ENV). Each round runs every contender once, in
# the order given; at the end each contender's CPU per request and p99
# over the first's, paired within rounds.
# Per run: backend nginx and h2load on CPU 1, the contender on CPU 0, 2 s
# warm-up, then ${SECONDS_RUN:-8} s measured with h2load's per-request log;
# CPU from /proc/PID/stat over the measured run divided by the requests.
# Runs take /tmp/rauta-bench.lock.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,18p' "$0" >&2
  exit 2
fi
dir=$1 rounds=$2
shift 2
for f in backend.conf nginx.conf haproxy.cfg rauta; do
  [ -e "$dir/$f" ] || { echo "$dir/$f missing: pass a directory kept by proxybench -keep" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"
mkdir -p "$dir/nginx-tmp" "$dir/backend-tmp"
pids=()
results=$(mktemp)
log=$(mktemp)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$results" "$log"
}
trap cleanup EXIT
exec 9>/tmp/rauta-bench.lock
flock 9

secs=${SECONDS_RUN:-8}
url=https://127.0.0.1:18443/1k
cpu() { cut -d' ' -f14,15 "/proc/$1/stat" | awk '{print $1 + $2}'; }

taskset -c 1 nginx -p "$dir" -c "$dir/backend.conf" -e "$dir/backend-error.log" &
pids=("$!")
for r in $(seq "$rounds"); do
  for c in "$@"; do
    case $c in
    nginx)
      taskset -c 0 nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/nginx-error.log" &
      rp=$!; sleep 1; pp=$(pgrep -P "$rp" | head -1) ;;
    haproxy)
      taskset -c 0 haproxy -db -f "$dir/haproxy.cfg" >/dev/null 2>&1 &
      rp=$!; sleep 1; pp=$rp ;;
    *)
      # shellcheck disable=SC2086 # RAUTA_ENV is a list of NAME=VALUE words
      env GOMAXPROCS=1 ${RAUTA_ENV:-} taskset -c 0 "$c" run -f "$dir/rauta" -address 127.0.0.1 \
        -admin-addr 127.0.0.1:18990 -access-log=false -log-level warn &
      rp=$!; pp=$rp; sleep 1.5 ;;
    esac
    taskset -c 1 h2load -t1 -c1 -m64 -D 2 "$url" >/dev/null
    : >"$log" # h2load appends to its log
    a=$(cpu "$pp")
    taskset -c 1 h2load -t1 -c1 -m64 -D "$secs" --log-file "$log" "$url" >/dev/null
    b=$(cpu "$pp")
    # clock ticks are 10 ms: us per request = ticks * 10000 / requests
    python3 - "$log" "$r" "$c" "$((b - a))" <<'PY' | tee -a "$results"
import os, sys
lat = sorted(float(f[2]) for f in (l.split("\t") for l in open(sys.argv[1])) if len(f) > 2 and f[1].startswith("2"))
n = len(lat)
print(f"round {sys.argv[2]} {sys.argv[3]} requests {n} cpu_us_per_req {int(sys.argv[4]) * 10000 / n:.2f} "
      f"p50_ms {lat[n // 2] / 1000:.2f} p99_ms {lat[int(n * 0.99)] / 1000:.2f}")
PY
    kill "$rp"; wait "$rp" 2>/dev/null || true
  done
done
# Each contender over the first, paired within a round (bench/pairs.py).
python3 "$(dirname "$0")/pairs.py" "$results" "CPU per request:6,p99:10" "$@"
