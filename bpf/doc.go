// Package bpf holds RAUTA's kernel programs: the HTTP observer
// (observer.c, and tlsprobe.c for plaintext inside OpenSSL) and the
// mesh's socket-level Service load balancer (mesh.c), with the objects
// and Go bindings bpf2go generates from them (observer_bpfel.go/.o,
// tlsprobe_bpfel.go/.o, mesh_bpfel.go/.o). The objects are committed so
// that builds need no clang; hack/bpf-generate.sh regenerates them and
// hack/bpf-check.sh fails when they are stale.
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -type event -type event_large -go-package bpf -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -mcpu=v3 -Wall -Werror -I/usr/include/x86_64-linux-gnu" Observer observer.c
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -type svc_key -type svc_value -type ep_key -type ep_value -type orig_value -type rev_key -type peer_key -type node_config -type sock_key -go-package bpf -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -mcpu=v3 -Wall -Werror -I/usr/include/x86_64-linux-gnu" Mesh mesh.c
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -type tls_event -go-package bpf -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -mcpu=v3 -Wall -Werror -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu" Tlsprobe tlsprobe.c
