#!/usr/bin/env bash
# The TLS lab: CPU per new TLS connection (TCP connect, handshake, one
# HTTP/1.1 GET with Connection: close, close) of one contender at a time,
# for A/B comparisons of RAUTA builds against nginx (docs/performance.md,
# round 21).
#
#   unshare -n sh -c "ip link set lo up && PB=path/to/proxybench bench/tlslab.sh DIR ROUNDS VERSION RESUME CONTENDER..."
#
# DIR is a directory kept by the harness (`proxybench -contenders rauta,nginx
# -quick -keep` prints it): its backend, nginx and rauta configurations and
# certificates are reused. VERSION is 1.2 or 1.3, RESUME 1 for session
# resumption (0 for full handshakes), CONTENDER "nginx" or the path of a
# rauta binary. Each round runs every contender once, in the order given;
# at the end each contender's CPU per operation over the first's, paired
# within rounds.
# Per run: backend nginx and `proxybench client -kind tls` (16 connections,
# ECDSA P-256) on CPU 1, the contender on CPU 0 (rauta with GOMAXPROCS=1),
# 1 s warm-up, then 5 s measured; CPU from /proc/PID/stat over the run
# divided by the operations. Runs take /tmp/rauta-bench.lock.
set -euo pipefail
if [ $# -lt 5 ] || [ -z "${PB:-}" ]; then
  sed -n '2,19p' "$0" >&2
  exit 2
fi
dir=$1 rounds=$2 ver=$3 resume=$4
shift 4
for f in backend.conf nginx.conf rauta cert.pem rsa-cert.pem; do
  [ -e "$dir/$f" ] || { echo "$dir/$f missing: pass a directory kept by proxybench -keep" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"
mkdir -p "$dir/nginx-tmp" "$dir/backend-tmp"
pids=()
results=$(mktemp)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$results"
}
trap cleanup EXIT
exec 9>/tmp/rauta-bench.lock
flock 9

client=(taskset -c 1 "$PB" client -kind tls -addr 127.0.0.1:18443 -conns 16 -size 1024 -tls "$ver" -ca "$dir/cert.pem,$dir/rsa-cert.pem")
[ "$resume" = 1 ] && client+=(-resume)
cpu() { cut -d' ' -f14,15 "/proc/$1/stat" | awk '{print $1 + $2}'; }

taskset -c 1 nginx -p "$dir" -c "$dir/backend.conf" -e "$dir/backend-error.log" &
pids=("$!")
for r in $(seq "$rounds"); do
  for c in "$@"; do
    if [ "$c" = nginx ]; then
      taskset -c 0 nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/nginx-error.log" &
      rp=$!; sleep 1; pp=$(pgrep -P "$rp" | head -1)
    else
      env GOMAXPROCS=1 taskset -c 0 "$c" run -f "$dir/rauta" -address 127.0.0.1 \
        -admin-addr 127.0.0.1:18990 -access-log=false -log-level warn &
      rp=$!; pp=$rp; sleep 1.5
    fi
    "${client[@]}" -d 1s >/dev/null
    a=$(cpu "$pp")
    out=$("${client[@]}" -d 5s | grep CLIENTRESULT)
    b=$(cpu "$pp")
    ops=$(sed 's/.*"ops":\([0-9]*\).*/\1/' <<<"$out")
    # clock ticks are 10 ms: us per op = ticks * 10000 / ops
    echo "round $r $c ops $ops cpu_us_per_op $(awk -v t=$((b - a)) -v n="$ops" 'BEGIN {printf "%.2f", t * 10000 / n}')" | tee -a "$results"
    kill "$rp"; wait "$rp" 2>/dev/null || true
  done
done
# Each contender over the first, paired within a round (bench/pairs.py).
python3 "$(dirname "$0")/pairs.py" "$results" "CPU per operation:6" "$@"
