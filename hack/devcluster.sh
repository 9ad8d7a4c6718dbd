#!/usr/bin/env bash
# The local Kubernetes cluster for people: builds what is missing, then runs etcd,
# kube-apiserver, kube-controller-manager, the Gateway API CRDs and a node agent in the
# background.
#   hack/devcluster.sh up [-image REPO=BINARY|LAYOUTDIR ...]   start (prints `export KUBECONFIG=...`)
#   hack/devcluster.sh down     stop everything and remove the pods' namespaces and links
#   hack/devcluster.sh status   is it running, and what the API server says
# Environment: RAUTA_CACHE (default ~/.cache/rauta), RAUTA_DEVCLUSTER_POD_CIDR
# (10.244.0.0/24), RAUTA_DEVCLUSTER_BRIDGE (rauta0), RAUTA_DEVCLUSTER_SERVICE_CIDR (10.96.0.0/24).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${RAUTA_CACHE:-$HOME/.cache/rauta}"
state="$cache/devcluster"
run="$cache/devcluster-run"
pidfile="$run/pid"
logfile="$run/devcluster.log"
kubectl="$cache/bin/kubectl-v1.36.3"

running() {
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

up() {
  if running; then
    echo "devcluster already running (pid $(cat "$pidfile"))" >&2
    echo "export KUBECONFIG=$state/kubeconfig"
    return 0
  fi
  if [[ "$(id -u)" != 0 ]]; then
    echo "devcluster: the node agent needs root (network namespaces, a bridge)" >&2
    exit 1
  fi
  "$repo/hack/devcluster-build.sh" >/dev/null
  mkdir -p "$run"
  cd "$repo"
  go build -o "$run/devcluster" ./test/devcluster/cmd/devcluster
  # Started directly from this shell so $! is the launcher itself, which `down` signals.
  nohup "$run/devcluster" -dir "$state" -repo "$repo" "$@" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 600); do
    if [[ -f "$state/ready" ]]; then
      echo "devcluster running (pid $(cat "$pidfile")); logs: $logfile, $state/logs" >&2
      echo "export KUBECONFIG=$state/kubeconfig"
      return 0
    fi
    if ! running; then
      echo "devcluster failed to start:" >&2
      tail -n 30 "$logfile" >&2
      rm -f "$pidfile"
      exit 1
    fi
    sleep 0.5
  done
  echo "devcluster not ready after 5 minutes; see $logfile" >&2
  exit 1
}

down() {
  if ! running; then
    echo "devcluster not running" >&2
    rm -f "$pidfile"
    return 0
  fi
  local pid
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for _ in $(seq 1 120); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      echo "devcluster stopped" >&2
      return 0
    fi
    sleep 0.5
  done
  echo "devcluster (pid $pid) did not stop in 60s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

status() {
  if ! running; then
    echo "devcluster not running"
    exit 1
  fi
  echo "devcluster running (pid $(cat "$pidfile"))"
  echo "export KUBECONFIG=$state/kubeconfig"
  KUBECONFIG="$state/kubeconfig" "$kubectl" get --raw /readyz && echo
  KUBECONFIG="$state/kubeconfig" "$kubectl" get nodes -o wide
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
