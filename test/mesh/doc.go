// Package mesh holds the privileged tests of the mesh's socket-level
// Service load balancer (internal/mesh, bpf/mesh.c): each test makes a
// cgroup v2 of its own, attaches the programs there, and runs clients in it
// (this test binary, re-executed into the cgroup with CLONE_INTO_CGROUP)
// against fake ClusterIPs in 10.96.231.0/24 and fd00:10:96:231::/64, which
// nothing serves. Endpoints are servers on loopback. They need root
// (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN) and a cgroup2 mount, and skip
// loudly without them.
package mesh
