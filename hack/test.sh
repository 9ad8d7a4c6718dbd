#!/usr/bin/env bash
# Runs every test tier this machine supports; this is what CI runs (.ci/run).
#   1. static checks: gofmt, go vet, golangci-lint with the checked-in config,
#      the Helm chart (lint and template, in go test ./test/chart)
#   2. generated eBPF objects are in sync with their C sources
#   3. every fuzz target for a bounded time (hack/fuzz.sh; FUZZTIME, 10s each)
#   4. go test ./...: unit, golden and fuzz-seed tests, end-to-end tests that
#      run `rauta run` as a process, h2spec against internal/h2, and (as
#      root) the eBPF and network-namespace tests and the local-cluster tests
# A tier that cannot run says so loudly and makes the run fail in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAUTA_CACHE=${RAUTA_CACHE:-$HOME/.cache/rauta}

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
hack/deps.sh test

step "gofmt"
unformatted=$(git ls-files '*.go' | grep -v '_bpfel\.go$' | xargs gofmt -l)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go.mod and go.sum tidy"
go mod tidy -diff

step "go vet"
go vet ./...

step "golangci-lint"
hack/lint.sh

if [ -x hack/bpf-check.sh ]; then
  step "eBPF objects in sync with bpf/*.c"
  hack/bpf-check.sh
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "!!! NOT ROOT: the eBPF, network-namespace and local-cluster tests will SKIP (each says why)." >&2
  if [ "${CI:-}" = true ]; then
    echo "!!! CI must run every tier: run as root." >&2
    exit 1
  fi
fi

# Built once here, before the tests: the devcluster, integration and
# conformance packages would otherwise each build them at the same time.
step "local cluster binaries (kube-apiserver, kube-controller-manager, kubectl, etcd, echo-basic; cached in $RAUTA_CACHE/bin)"
hack/devcluster-build.sh

# The image users deploy; the deployed-mode and chart tests run it on the
# local cluster (test/testimage), so it is built once here.
step "OCI image (make image: dist/oci, dist/rauta-VERSION.tar)"
RAUTA_TEST_IMAGE_VERSION=$(hack/version.sh)
make image VERSION="$RAUTA_TEST_IMAGE_VERSION"
RAUTA_TEST_IMAGE_LAYOUT=$(pwd)/dist/oci
export RAUTA_TEST_IMAGE_VERSION RAUTA_TEST_IMAGE_LAYOUT

step "h2spec (HTTP/2 conformance tool, cached in $RAUTA_CACHE/bin)"
RAUTA_H2SPEC=$(hack/h2spec.sh)
export RAUTA_H2SPEC
echo "$RAUTA_H2SPEC"

step "fuzz: every target for ${FUZZTIME:-10s} (hack/fuzz.sh)"
hack/fuzz.sh

step "go test ./..."
go test -count=1 -timeout 40m ./...
