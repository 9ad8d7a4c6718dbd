#!/usr/bin/env bash
# Builds the third-party binaries the local cluster (test/devcluster) needs into a cache folder
# outside the repository, and only the ones that are missing, so clean checkouts reuse them:
#   ${RAUTA_CACHE:-$HOME/.cache/rauta}/bin/<name>-<version>
# kube-apiserver, kube-controller-manager, kubectl  <- tools/kube (k8s.io/kubernetes)
# etcd                                              <- tools/etcd (go.etcd.io/etcd/server/v3)
# echo-basic                                        <- main module (sigs.k8s.io/gateway-api/conformance)
# Usage: hack/devcluster-build.sh [--print-dir]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${RAUTA_CACHE:-$HOME/.cache/rauta}"
bin="$cache/bin"

# Versions: keep in step with tools/*/go.mod, go.mod and test/devcluster/binaries.go.
kube_version="v1.36.3"
etcd_version="v3.6.16"
gwapi_version="v1.6.3"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false -trimpath"

missing() { [[ ! -x "$bin/$1" ]]; }

# build_into NAME-VERSION MODULE_DIR PACKAGE [LDFLAGS]: builds to a temporary name first so an
# interrupted build never leaves a half-written binary that later runs would trust.
build_into() {
  local target="$1" dir="$2" pkg="$3" ldflags="${4:-}"
  local tmp="$bin/.$target.tmp.$$"
  echo "building $target from $pkg" >&2
  local start=$SECONDS
  (cd "$dir" && go build -ldflags "$ldflags" -o "$tmp" "$pkg")
  mv -f "$tmp" "$bin/$target"
  echo "built $target in $((SECONDS - start))s" >&2
}

# Version stamps so `kubectl version` and the API server's /version report the real release
# instead of v0.0.0-master.
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kube_version"
  kube_ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=36"
  kube_ldflags+=" -X $pkg.gitTreeState=clean"
done
kube_ldflags+=" -s -w"

for name in kube-apiserver kube-controller-manager kubectl; do
  if missing "$name-$kube_version"; then
    build_into "$name-$kube_version" "$repo/tools/kube" "k8s.io/kubernetes/cmd/$name" "$kube_ldflags"
  fi
done

if missing "etcd-$etcd_version"; then
  build_into "etcd-$etcd_version" "$repo/tools/etcd" "go.etcd.io/etcd/server/v3" "-s -w"
fi

if missing "echo-basic-$gwapi_version"; then
  build_into "echo-basic-$gwapi_version" "$repo" "sigs.k8s.io/gateway-api/conformance/echo-basic" "-s -w"
fi

echo "$bin"
