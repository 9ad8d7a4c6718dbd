// Package mesh is the node agent of RAUTA's mesh ("rauta mesh"): Service
// load balancing at the socket, with no kube-proxy and no iptables.
//
// Kernel programs (bpf/mesh.c) attached to a cgroup v2 rewrite a connect
// or a datagram to a Service ClusterIP:port into one of its ready
// endpoints. This package loads and attaches them, pinning maps and links
// so that a restarted agent takes over without a gap (datapath.go,
// cgroup.go); turns Services and EndpointSlices into the frontends and
// endpoints the maps hold (kubestate.go, a pure function; model.go,
// encode.go); writes changes as diffs that never leave a serving frontend
// without endpoints (writer.go); tells the mesh proxy where a connection
// was going (origdst.go); and keeps the maps in sync with the API server
// (watch.go, run.go, config.go, metrics.go).
//
// GAMMA: HTTPRoutes whose parent is a Service (translated by
// translate.TranslateMesh) steer that Service's connections to the node's
// mesh proxy, which hands each one, by its original destination and its
// client's namespace, to the gateway's HTTP engine serving the producer or
// consumer routes, or relays it (gamma.go, gammasync.go, proxy.go); the
// agent holding a Lease writes the routes' status (status.go). See
// docs/mesh.md.
package mesh
