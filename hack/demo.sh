#!/usr/bin/env bash
# Builds RAUTA and starts a working demo gateway on loopback: two demo backends
# and `rauta run -f examples/`. Prints curl lines to try; Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/deps.sh build

mkdir -p bin
echo "building rauta and rauta-echo ..."
go build -o bin/rauta ./cmd/rauta
go build -o bin/rauta-echo ./cmd/rauta-echo

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

bin/rauta-echo -listen 127.0.0.1:9101 -name echo-v1 & pids+=($!)
bin/rauta-echo -listen 127.0.0.1:9102 -name echo-v2 & pids+=($!)
# Admin endpoints (everything) on 127.0.0.1:9091, probes and metrics on
# 127.0.0.1:9090; no drain period, so Ctrl-C stops at once.
bin/rauta run -f examples/ -address 127.0.0.1 -admin-addr 127.0.0.1:9091 -metrics-addr 127.0.0.1:9090 -drain-period 0s -access-log=false & pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null http://127.0.0.1:9090/readyz 2>/dev/null; then break; fi
  sleep 0.1
done
if ! curl -fsS -o /dev/null http://127.0.0.1:9090/readyz; then
  echo "rauta did not become ready; see its log above" >&2
  exit 1
fi

cat <<'TXT'

RAUTA is serving examples/ on 127.0.0.1 (HTTP 8080, HTTPS 8443). Try:

  # host routing: app.example.com -> echo-v1, api.example.com -> echo-v2
  curl -s -H 'Host: app.example.com' http://127.0.0.1:8080/
  curl -s -H 'Host: api.example.com' http://127.0.0.1:8080/
  # path routing: /v2/... -> echo-v2 with the prefix rewritten away
  curl -s -H 'Host: app.example.com' http://127.0.0.1:8080/v2/hello
  # header matching: X-Canary: true -> echo-v2
  curl -s -H 'Host: app.example.com' -H 'X-Canary: true' http://127.0.0.1:8080/
  # a redirect: 301 to /new/page
  curl -si -H 'Host: app.example.com' http://127.0.0.1:8080/old/page | head -3
  # a weighted split: about 80% echo-v1, 20% echo-v2
  for i in $(seq 20); do curl -s -H 'Host: split.example.com' http://127.0.0.1:8080/ | grep -o '"backend":"[^"]*"'; done | sort | uniq -c
  # HTTPS with HTTP/2 (self-signed demo certificate)
  curl -sk --http2 --resolve app.example.com:8443:127.0.0.1 https://app.example.com:8443/ -o /dev/null -w '%{http_version} %{http_code}\n'
  # metrics (probe port), active config and status (admin port, loopback only)
  curl -s http://127.0.0.1:9090/metrics | grep ^http_server_request_duration_seconds_count
  curl -s http://127.0.0.1:9091/config_dump | head -20
  curl -s http://127.0.0.1:9091/status | head -20

Edit a file in examples/ and the change is live at once. Ctrl-C stops the demo.
TXT
wait "${pids[2]}"
