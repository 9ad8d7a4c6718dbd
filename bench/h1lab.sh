#!/usr/bin/env bash
# The HTTP/1.1 lab: one contender at a time against the harness's backend,
# with per-process CPU, context switches and the load side's cost per
# request, for A/B comparisons of RAUTA builds against nginx
# (docs/performance.md, optimisation log).
#
#   [CONNS=64] [BODY=1k] bench/h1lab.sh DIR ROUNDS CONTENDER...
#
# DIR is a directory kept by the harness (`proxybench -contenders rauta,nginx
# -quick -keep` prints it): its backend, nginx and rauta configurations are
# reused. CONTENDER is "nginx" or the path of a rauta binary. Each round runs
# every contender once, in the order given, so drift hits all of them.
# BODY is the response body (1k or 64k).
# Per run: backend nginx and `wrk -t1 -c$CONNS` on CPU 1, the contender on CPU 0
# (rauta with GOMAXPROCS=1, plus $RAUTA_ENV), 2 s warm-up, an 8 s measured
# run with counters read over its middle 6 s. Runs take
# /tmp/rauta-bench.lock so they never overlap another benchmark.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,18p' "$0" >&2
  exit 2
fi
dir=$1 rounds=$2
shift 2
for f in backend.conf nginx.conf rauta; do
  [ -e "$dir/$f" ] || { echo "$dir/$f missing: pass a directory kept by proxybench -keep" >&2; exit 1; }
done
mkdir -p "$dir/nginx-tmp" "$dir/backend-tmp"
wrkout=$(mktemp)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$wrkout"
}
trap cleanup EXIT

# ticks PID: minor faults, utime, stime (clock ticks) of a process.
ticks() { cut -d' ' -f10,14,15 "/proc/$1/stat"; }
# switches PID: context switches of all its threads.
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }

run() { # run CONTENDER: prints one result line
  local c=$1 np pp rp wp
  taskset -c 1 nginx -p "$dir" -c "$dir/backend.conf" -e "$dir/backend-error.log" &
  np=$!; pids=("$np")
  if [ "$c" = nginx ]; then
    taskset -c 0 nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/nginx-error.log" &
    rp=$!; pids+=("$rp"); sleep 1; pp=$(pgrep -P "$rp" | head -1)
  else
    # shellcheck disable=SC2086 # RAUTA_ENV is a list of NAME=VALUE words
    env GOMAXPROCS=1 ${RAUTA_ENV:-} taskset -c 0 "$c" run -f "$dir/rauta" -address 127.0.0.1 \
      -admin-addr 127.0.0.1:18990 -access-log=false -log-level warn &
    rp=$!; pids+=("$rp"); sleep 1; pp=$rp
  fi
  taskset -c 1 wrk -t1 -c${CONNS:-64} -d2s http://127.0.0.1:18000/${BODY:-1k} >/dev/null
  taskset -c 1 wrk -t1 -c${CONNS:-64} -d8s --latency http://127.0.0.1:18000/${BODY:-1k} >"$wrkout" &
  wp=$!
  sleep 1
  local bp a b ca cb wa wb ba bb t0 t1
  bp=$(pgrep -P "$np" | head -1)
  a=$(ticks "$pp"); ca=$(switches "$pp"); wa=$(ticks "$wp"); ba=$(ticks "$bp"); t0=$(date +%s.%N)
  sleep 6
  b=$(ticks "$pp"); cb=$(switches "$pp"); wb=$(ticks "$wp"); bb=$(ticks "$bp"); t1=$(date +%s.%N)
  wait "$wp"
  kill "$rp" "$np"; wait 2>/dev/null || true
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$wrkout")
  p99=$(awk '$1 == "99%" {print $2}' "$wrkout")
  python3 - "$c" "$rps" "$p99" "$t0" "$t1" "$a" "$b" "$ca" "$cb" "$wa" "$wb" "$ba" "$bb" <<'EOF'
import os, sys
c, rps, p99, t0, t1 = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
a, b = [list(map(int, x.split())) for x in sys.argv[6:8]]
cs = int(sys.argv[9]) - int(sys.argv[8])
wa, wb, ba, bb = [list(map(int, x.split())) for x in sys.argv[10:14]]
hz, t = os.sysconf("SC_CLK_TCK"), t1 - t0
n = rps * t
us = lambda ticks: ticks / hz * 1e6 / n
u, s = b[1] - a[1], b[2] - a[2]
print(f"{os.path.basename(c):12} {rps:8.0f} req/s  p99 {p99:>8}  busy {(u + s) / hz / t * 100:3.0f}%  "
      f"user {us(u):5.1f} sys {us(s):5.1f} total {us(u + s):5.1f} us/req  cs/req {cs / n:.3f}  "
      f"load side: wrk {us(sum(wb[1:]) - sum(wa[1:])):5.1f} backend {us(sum(bb[1:]) - sum(ba[1:])):5.1f} us/req")
EOF
}

exec 9>/tmp/rauta-bench.lock
for ((i = 1; i <= rounds; i++)); do
  for c in "$@"; do
    flock 9
    run "$c"
    flock -u 9
  done
done
