# RAUTA: the two commands that matter are `make demo` and `make test`.
.PHONY: demo test build lint bpf-generate bpf-check devcluster devcluster-down bench clean

demo: ## build RAUTA and start the demo gateway on loopback
	hack/demo.sh

test: ## run every test tier (what CI runs)
	hack/test.sh

build:
	mkdir -p bin
	go build -o bin/rauta ./cmd/rauta
	go build -o bin/rauta-echo ./cmd/rauta-echo

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

clean:
	rm -rf bin
