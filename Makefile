# RAUTA: the two commands that matter are `make demo` and `make test`.
.PHONY: demo test build image lint bpf-generate bpf-check devcluster devcluster-down bench bench-quick bench-scale bench-reload clean

demo: ## build RAUTA and start the demo gateway on loopback
	hack/demo.sh

test: ## run every test tier (what CI runs)
	hack/test.sh

# The version comes from git (hack/version.sh: v0.3.0, v0.3.0-4-gabc1234,
# abc1234-dirty; "dev" outside git). Override: make build VERSION=v1.2.3.
VERSION := $(shell hack/version.sh)
COMMIT := $(shell hack/version.sh commit)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

build:
	mkdir -p bin
	go build -ldflags "$(LDFLAGS)" -o bin/rauta ./cmd/rauta
	go build -ldflags "$(LDFLAGS)" -o bin/rauta-echo ./cmd/rauta-echo

image: ## build the OCI image into dist/ (oci/ layout and a docker/podman-loadable tarball); no Docker needed
	go run ./hack/imagebuild -out dist -version $(VERSION)

lint:
	hack/lint.sh

bpf-generate: ## regenerate the committed eBPF objects from bpf/*.c (needs clang)
	hack/bpf-generate.sh

bpf-check:
	hack/bpf-check.sh

devcluster: ## start the local Kubernetes cluster (no Docker needed)
	hack/devcluster.sh up

devcluster-down:
	hack/devcluster.sh down

bench: ## RAUTA side by side with nginx, HAProxy, Caddy and direct (docs/performance.md)
	bench/run.sh

bench-quick:
	QUICK=1 bench/run.sh

bench-scale: ## translate/compile/lookup at 10, 1k, 10k routes; Maglev build; hot paths
	go run ./bench/scale

bench-reload: ## file change to first 200, and failures during reloads
	mkdir -p bin && go build -o bin/rauta ./cmd/rauta
	go run ./bench/reload -rauta bin/rauta -n 50

clean:
	rm -rf bin dist
