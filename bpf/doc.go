// Package bpf holds the kernel side of the RAUTA HTTP observer: the C source
// (observer.c) and the objects and Go bindings bpf2go generates from it
// (observer_bpfel.go, observer_bpfel.o). The objects are committed so that
// builds need no clang; hack/bpf-generate.sh regenerates them and
// hack/bpf-check.sh fails when they are stale.
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -type event -type event_large -go-package bpf -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -mcpu=v3 -Wall -Werror -I/usr/include/x86_64-linux-gnu" Observer observer.c
