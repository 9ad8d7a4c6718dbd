// Package ebpf holds the privileged integration tests of the eBPF HTTP
// observer: real HTTP servers and clients in network namespaces joined by
// veth pairs through a router namespace where the observer attaches. They
// need root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2, and skip
// loudly without them.
package ebpf
