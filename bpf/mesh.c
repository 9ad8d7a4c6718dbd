//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// RAUTA mesh: socket-level Service load balancing (kernel side).
//
// cgroup sock_addr programs translate a Service ClusterIP:port into one of
// its ready endpoints when a socket connects (TCP and connected UDP) or
// sends a datagram (unconnected UDP), before any packet exists. No NAT per
// packet, no conntrack, no iptables: the socket talks to the endpoint
// directly, and the hooks below keep the application's view unchanged:
//
//   - getpeername answers the ClusterIP:port the application dialled;
//   - recvmsg on UDP rewrites the endpoint's source address back into the
//     ClusterIP:port the datagram was sent to, so a reply "comes from" it.
//
// The original destination of every translated socket is recorded in
// mesh_orig_dst, keyed by the socket cookie. The node mesh proxy cannot
// see the cookie of a client's socket, only the client's address and port
// on the connection it accepts; a sockops program copies the entry of a
// socket steered to the proxy into mesh_steered, keyed by that address
// and port, once the client's port exists (the handshake's SYN-ACK, before
// the proxy's accept returns), and removes it when the socket closes. So
// the proxy learns where a connection was going without SO_ORIGINAL_DST
// and iptables.
//
// sockmap (the agent's -sockmap): a second sockops program, attached
// instead of the first, also puts every established TCP socket whose two
// addresses are both in mesh_local (the node's mesh proxy and local pods)
// into the mesh_socks sockhash, and mesh_redirect (sk_msg, on that map)
// hands each message such a socket sends straight to the receive queue of
// the connection's other end, skipping TCP/IP and the loopback or veth
// device. A closed socket leaves the sockhash by itself.
//
// Addresses are 16 bytes in every map; IPv4 is stored v4-mapped
// (::ffff:a.b.c.d), so one map serves both families and an IPv6 socket
// that dials a v4-mapped ClusterIP is translated too.
//
// Minimum kernel: 5.18 (bpf_set_retval, so a Service without endpoints
// fails connect with ECONNREFUSED instead of EPERM); getpeername hooks
// need 5.8, recvmsg hooks 4.19.

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual BSD/GPL";

#define ECONNREFUSED 111

// Map bounds. Changing one makes a pinned map of the old size
// incompatible: the agent then refuses to start until the pin is removed
// (docs/mesh.md, "Pinning and restarts").
#define MAX_SERVICES 16384   // frontends: ClusterIP x port x protocol
#define MAX_ENDPOINTS 65536  // endpoint slots over all frontends
#define MAX_ORIG_DST 65536   // translated sockets remembered (LRU)
#define MAX_REV_NAT 32768    // UDP (socket, endpoint) pairs remembered (LRU)
#define MAX_STEERED 32768    // TCP connections to the mesh proxy (LRU)
#define MAX_LOCAL 4096       // addresses of this node (proxy, local pods)
#define MAX_SOCKS 65536      // established sockets between local addresses
#define MAX_OPTOUT 4096      // cgroups of pods that opted out of the mesh

// How many cgroup levels below the hierarchy's root opted_out checks: a
// pod's cgroup is at level 2 to 4 under kubelet's cgroup drivers (deeper
// when the node itself runs in a container's cgroup); a process deeper
// than this is not found and stays meshed.
#define OPTOUT_LEVELS 10

// svc_value.flags
#define SVC_STEER_PROXY 1 // send to the node's mesh proxy (GAMMA routes)

enum hook {
	HOOK_CONNECT = 0,
	HOOK_SENDMSG = 1,
};

enum stat_index {
	STAT_TRANSLATED = 0,   // connects and datagrams sent to an endpoint
	STAT_STEERED = 1,      // sent to the mesh proxy instead
	STAT_NO_ENDPOINTS = 2, // refused: the frontend has no ready endpoint
	STAT_SLOT_MISSING = 3, // the chosen slot was gone (a concurrent shrink); slot 0 used
	STAT_FAMILY = 4,       // refused: an IPv4 socket and an IPv6 endpoint
	STAT_SOCK_ADDED = 5,   // sockmap: local sockets put into mesh_socks
	STAT_REDIRECTED = 6,   // sockmap: messages handed to the peer socket
	STAT_NO_PEER = 7,      // sockmap: peer not in mesh_socks, normal path
	STAT_MAX = 8,
};

// A frontend: ClusterIP, port and protocol. addr is network byte order,
// v4-mapped for IPv4; port is network byte order.
struct svc_key {
	__u32 addr[4];
	__u16 port;
	__u8 proto; // IPPROTO_TCP or IPPROTO_UDP
	__u8 pad;
};

struct svc_value {
	__u32 id;    // endpoint slots are (id, 0..count-1) in mesh_endpoints
	__u16 count; // ready endpoints; 0 refuses with ECONNREFUSED
	__u16 flags; // SVC_*
};

struct ep_key {
	__u32 id;
	__u32 slot;
};

// An endpoint (or the proxy): address and port, network byte order.
struct ep_value {
	__u32 addr[4];
	__u16 port;
	__u16 pad;
};

// What a translated socket was dialled to, and where it went instead.
struct orig_value {
	__u32 vip[4];
	__u32 backend[4];
	__u16 vip_port;
	__u16 backend_port;
	__u32 id;
	__u8 proto;
	__u8 steered; // 1: backend is the mesh proxy
	__u16 pad;
};

// UDP reverse translation: a datagram from backend to this socket appears
// to come from the frontend it was sent to.
struct rev_key {
	__u64 cookie;
	__u32 addr[4];
	__u16 port;
	__u16 pad;
	__u32 pad2;
};

// A TCP client's own address and port (network byte order), as the mesh
// proxy sees its peer.
struct peer_key {
	__u32 addr[4];
	__u16 port;
	__u16 pad;
};

// The node's settings, one entry, written by the agent.
struct node_config {
	struct ep_value proxy4; // v4-mapped; port 0: no proxy, steering is off
	struct ep_value proxy6;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENDPOINTS);
	__type(key, struct ep_key);
	__type(value, struct ep_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_ORIG_DST);
	__type(key, __u64); // socket cookie
	__type(value, struct orig_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_orig_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_REV_NAT);
	__type(key, struct rev_key);
	__type(value, struct ep_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_rev_nat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_STEERED);
	__type(key, struct peer_key);
	__type(value, struct orig_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_steered SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_config SEC(".maps");

// One end of a TCP connection: its own address and port, then its peer's
// (addresses v4-mapped for IPv4, ports in host byte order). The peer's
// entry is this key with the two halves swapped. netns is the network
// namespace's cookie when both addresses are loopback (127.0.0.1 exists in
// every namespace, so such a 4-tuple is unique only with it; both ends are
// then in the one namespace), else 0 (pod and node addresses are unique).
struct sock_key {
	__u32 local[4];
	__u32 remote[4];
	__u32 lport;
	__u32 rport;
	__u64 netns;
};

// Addresses of this node whose connections to each other may bypass TCP:
// the mesh proxy's and the local pods' (filled by the agent).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_LOCAL);
	__type(key, struct ep_value); // port 0
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_local SEC(".maps");

// Cgroup ids (of pods, filled by the agent from the opt-out labels) whose
// processes are not steered to the mesh proxy: a connect to a frontend
// with GAMMA routes from them goes to an endpoint, as if it had none.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_OPTOUT);
	__type(key, __u64);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_optout SEC(".maps");

// Established sockets between two local addresses. Not pinned (the agent
// opts out): it belongs to the agent's sk_msg program, and a closed
// socket leaves it by itself.
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, MAX_SOCKS);
	__type(key, struct sock_key);
	__type(value, __u64);
} mesh_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_stats SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&mesh_stats, &idx);
	if (v)
		*v += 1;
}

// cookie_hash spreads socket cookies (sequential numbers) over slots
// (the murmur3 finalizer).
static __always_inline __u32 cookie_hash(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (__u32)x;
}

static __always_inline int is_v4mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff);
}

static __always_inline int same_addr(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

static __always_inline void copy_addr(__u32 *dst, const __u32 *src)
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
}

// refuse fails the connect or sendmsg with ECONNREFUSED: what a client
// sees from a ClusterIP without endpoints under kube-proxy (its REJECT
// rule), and not a hang.
static __always_inline int refuse(void)
{
	bpf_set_retval(-ECONNREFUSED);
	return 0;
}

static __always_inline void read_dst(struct bpf_sock_addr *ctx, int v4, __u32 *addr)
{
	if (v4) {
		addr[0] = 0;
		addr[1] = 0;
		addr[2] = bpf_htonl(0xffff);
		addr[3] = ctx->user_ip4;
		return;
	}
	addr[0] = ctx->user_ip6[0];
	addr[1] = ctx->user_ip6[1];
	addr[2] = ctx->user_ip6[2];
	addr[3] = ctx->user_ip6[3];
}

static __always_inline void write_dst(struct bpf_sock_addr *ctx, int v4, const __u32 *addr, __u16 port)
{
	if (v4) {
		ctx->user_ip4 = addr[3];
	} else {
		ctx->user_ip6[0] = addr[0];
		ctx->user_ip6[1] = addr[1];
		ctx->user_ip6[2] = addr[2];
		ctx->user_ip6[3] = addr[3];
	}
	ctx->user_port = port;
}

// opted_out says whether the calling process is in an opted-out pod's
// cgroup or below it: its ancestors from level 1 down to its own cgroup
// (the id is 0 past the process's own level), one lookup each.
static __always_inline int opted_out(void)
{
#pragma unroll
	for (int level = 1; level <= OPTOUT_LEVELS; level++) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(level);
		if (id == 0)
			return 0;
		if (bpf_map_lookup_elem(&mesh_optout, &id))
			return 1;
	}
	return 0;
}

// translate is the connect and sendmsg path: look the destination up as a
// frontend, pick an endpoint (or the proxy), rewrite the destination and
// remember the original.
static __always_inline int translate(struct bpf_sock_addr *ctx, int v4, int hook)
{
	__u32 proto = ctx->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 1;

	struct svc_key key = {};
	read_dst(ctx, v4, key.addr);
	key.port = (__u16)ctx->user_port;
	key.proto = (__u8)proto;

	struct svc_value *found = bpf_map_lookup_elem(&mesh_services, &key);
	if (!found)
		return 1;
	// One read of the value: the agent may rewrite it meanwhile.
	struct svc_value svc = *found;

	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct ep_value *be = 0;
	__u8 steered = 0;

	// Only a steered frontend pays for the opt-out check.
	if ((svc.flags & SVC_STEER_PROXY) && !opted_out()) {
		__u32 zero = 0;
		struct node_config *cfg = bpf_map_lookup_elem(&mesh_config, &zero);
		if (cfg) {
			// The proxy of the key's family: a v4-mapped frontend goes to
			// the IPv4 proxy address, whichever the socket's family.
			struct ep_value *p = is_v4mapped(key.addr) ? &cfg->proxy4 : &cfg->proxy6;
			if (p->port != 0) {
				be = p;
				steered = 1;
			}
		}
	}

	if (!be) {
		__u32 n = svc.count;
		if (n == 0) {
			count(STAT_NO_ENDPOINTS);
			return refuse();
		}
		struct ep_key ek = {.id = svc.id};
		// A TCP connect picks at random. Datagrams of one unconnected UDP
		// socket hash its cookie, so a socket keeps talking to one
		// endpoint while the endpoint set stays the same.
		if (hook == HOOK_CONNECT && proto == IPPROTO_TCP)
			ek.slot = bpf_get_prandom_u32() % n;
		else
			ek.slot = cookie_hash(cookie) % n;
		be = bpf_map_lookup_elem(&mesh_endpoints, &ek);
		if (!be) {
			// The agent shrank the set between our two lookups: slots
			// below the new count are all present, and slot 0 is below
			// any count but zero.
			count(STAT_SLOT_MISSING);
			ek.slot = 0;
			be = bpf_map_lookup_elem(&mesh_endpoints, &ek);
			if (!be) {
				count(STAT_NO_ENDPOINTS);
				return refuse();
			}
		}
	}

	if (v4 && !is_v4mapped(be->addr)) {
		count(STAT_FAMILY);
		return refuse();
	}

	struct orig_value orig = {};
	copy_addr(orig.vip, key.addr);
	copy_addr(orig.backend, be->addr);
	orig.vip_port = key.port;
	orig.backend_port = be->port;
	orig.id = svc.id;
	orig.proto = key.proto;
	orig.steered = steered;
	bpf_map_update_elem(&mesh_orig_dst, &cookie, &orig, BPF_ANY);

	if (proto == IPPROTO_UDP) {
		struct rev_key rk = {.cookie = cookie};
		copy_addr(rk.addr, be->addr);
		rk.port = be->port;
		struct ep_value front = {};
		copy_addr(front.addr, key.addr);
		front.port = key.port;
		bpf_map_update_elem(&mesh_rev_nat, &rk, &front, BPF_ANY);
	}

	write_dst(ctx, v4, be->addr, be->port);
	count(steered ? STAT_STEERED : STAT_TRANSLATED);
	return 1;
}

// restore_peer is getpeername: a socket whose peer is the endpoint it was
// translated to shows the frontend instead.
static __always_inline int restore_peer(struct bpf_sock_addr *ctx, int v4)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct orig_value *o = bpf_map_lookup_elem(&mesh_orig_dst, &cookie);
	if (!o)
		return 1;
	__u32 peer[4];
	read_dst(ctx, v4, peer);
	if (!same_addr(peer, o->backend) || (__u16)ctx->user_port != o->backend_port)
		return 1;
	write_dst(ctx, v4, o->vip, o->vip_port);
	return 1;
}

// restore_source is recvmsg on UDP: a datagram from an endpoint this
// socket sent to through a frontend appears to come from that frontend.
static __always_inline int restore_source(struct bpf_sock_addr *ctx, int v4)
{
	struct rev_key rk = {.cookie = bpf_get_socket_cookie(ctx)};
	read_dst(ctx, v4, rk.addr);
	rk.port = (__u16)ctx->user_port;
	struct ep_value *front = bpf_map_lookup_elem(&mesh_rev_nat, &rk);
	if (!front)
		return 1;
	if (v4 && !is_v4mapped(front->addr))
		return 1;
	write_dst(ctx, v4, front->addr, front->port);
	return 1;
}

SEC("cgroup/connect4")
int mesh_connect4(struct bpf_sock_addr *ctx)
{
	return translate(ctx, 1, HOOK_CONNECT);
}

SEC("cgroup/connect6")
int mesh_connect6(struct bpf_sock_addr *ctx)
{
	return translate(ctx, 0, HOOK_CONNECT);
}

SEC("cgroup/sendmsg4")
int mesh_sendmsg4(struct bpf_sock_addr *ctx)
{
	return translate(ctx, 1, HOOK_SENDMSG);
}

SEC("cgroup/sendmsg6")
int mesh_sendmsg6(struct bpf_sock_addr *ctx)
{
	return translate(ctx, 0, HOOK_SENDMSG);
}

SEC("cgroup/recvmsg4")
int mesh_recvmsg4(struct bpf_sock_addr *ctx)
{
	return restore_source(ctx, 1);
}

SEC("cgroup/recvmsg6")
int mesh_recvmsg6(struct bpf_sock_addr *ctx)
{
	return restore_source(ctx, 0);
}

SEC("cgroup/getpeername4")
int mesh_getpeername4(struct bpf_sock_addr *ctx)
{
	return restore_peer(ctx, 1);
}

SEC("cgroup/getpeername6")
int mesh_getpeername6(struct bpf_sock_addr *ctx)
{
	return restore_peer(ctx, 0);
}

// port_host turns a context's remote_port into host byte order: it holds
// the port in network byte order, in the upper 16 bits of the word on
// older kernels and in the lower 16 bits on newer ones.
static __always_inline __u32 port_host(__u32 p)
{
	p = bpf_ntohl(p);
	if (p > 0xffff)
		p >>= 16;
	return p;
}

static __always_inline void v4map(__u32 *a, __u32 ip4)
{
	a[0] = 0;
	a[1] = 0;
	a[2] = bpf_htonl(0xffff);
	a[3] = ip4;
}

static __always_inline int is_loopback(const __u32 *a)
{
	if (is_v4mapped(a))
		return (bpf_ntohl(a[3]) >> 24) == 127;
	return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == bpf_htonl(1);
}

static __always_inline int is_local(const __u32 *a)
{
	struct ep_value k = {};
	copy_addr(k.addr, a);
	return bpf_map_lookup_elem(&mesh_local, &k) != 0;
}

// sockops_sock_key reads the connection's 4-tuple. Every field is loaded
// unconditionally, through volatile: otherwise clang selects a pointer
// into the context by family and loads through it, which the verifier
// refuses ("modified ctx ptr").
static __always_inline void sockops_sock_key(struct bpf_sock_ops *skops, struct sock_key *k)
{
	__u32 family = skops->family;
	__u32 l4 = *(volatile __u32 *)&skops->local_ip4;
	__u32 r4 = *(volatile __u32 *)&skops->remote_ip4;
	k->local[0] = *(volatile __u32 *)&skops->local_ip6[0];
	k->local[1] = *(volatile __u32 *)&skops->local_ip6[1];
	k->local[2] = *(volatile __u32 *)&skops->local_ip6[2];
	k->local[3] = *(volatile __u32 *)&skops->local_ip6[3];
	k->remote[0] = *(volatile __u32 *)&skops->remote_ip6[0];
	k->remote[1] = *(volatile __u32 *)&skops->remote_ip6[1];
	k->remote[2] = *(volatile __u32 *)&skops->remote_ip6[2];
	k->remote[3] = *(volatile __u32 *)&skops->remote_ip6[3];
	if (family == 2 /* AF_INET */) {
		v4map(k->local, l4);
		v4map(k->remote, r4);
	}
	k->lport = *(volatile __u32 *)&skops->local_port;
	k->rport = port_host(*(volatile __u32 *)&skops->remote_port);
}

// local_peer is the socket's own address and port, as its peer sees it.
static __always_inline void local_peer(struct bpf_sock_ops *skops, struct peer_key *k)
{
	struct sock_key sk = {};
	sockops_sock_key(skops, &sk);
	copy_addr(k->addr, sk.local);
	k->port = bpf_htons((__u16)sk.lport);
}

// add_local_sock puts an established socket whose both ends are addresses
// of this node into mesh_socks, where mesh_redirect finds it as a peer.
static __always_inline void add_local_sock(struct bpf_sock_ops *skops)
{
	struct sock_key k = {};
	sockops_sock_key(skops, &k);
	if (!is_local(k.local) || !is_local(k.remote))
		return;
	if (is_loopback(k.local) && is_loopback(k.remote))
		k.netns = bpf_get_netns_cookie(skops);
	if (bpf_sock_hash_update(skops, &mesh_socks, &k, BPF_NOEXIST) == 0)
		count(STAT_SOCK_ADDED);
}

// sockops publishes a connection steered to the mesh proxy under the
// client's address and port when its handshake completes, and withdraws it
// when the connection closes. Sockets that were not steered cost one
// lookup at establishment and nothing after. With sockmap, an established
// connection between two local addresses is also put into mesh_socks.
static __always_inline int sockops(struct bpf_sock_ops *skops, int sockmap)
{
	if (skops->family != 2 && skops->family != 10 /* AF_INET6 */)
		return 1;
	struct peer_key k = {};
	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		if (sockmap)
			add_local_sock(skops);
		return 1;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: {
		if (sockmap)
			add_local_sock(skops);
		__u64 cookie = bpf_get_socket_cookie(skops);
		struct orig_value *o = bpf_map_lookup_elem(&mesh_orig_dst, &cookie);
		if (!o || !o->steered)
			return 1;
		local_peer(skops, &k);
		bpf_map_update_elem(&mesh_steered, &k, o, BPF_ANY);
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		return 1;
	}
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] != BPF_TCP_CLOSE)
			return 1;
		local_peer(skops, &k);
		bpf_map_delete_elem(&mesh_steered, &k);
		return 1;
	}
	return 1;
}

SEC("sockops")
int mesh_sockops(struct bpf_sock_ops *skops)
{
	return sockops(skops, 0);
}

// mesh_sockops_sockmap is mesh_sockops that also fills mesh_socks: the
// agent attaches one or the other (-sockmap).
SEC("sockops")
int mesh_sockops_sockmap(struct bpf_sock_ops *skops)
{
	return sockops(skops, 1);
}

// mesh_redirect runs on every sendmsg of a socket in mesh_socks: the
// payload goes straight into the receive queue of the connection's other
// end (found by the reversed 4-tuple), skipping TCP/IP and loopback or
// veth. A peer not in the map (not yet added, or gone) gets it the normal
// way.
SEC("sk_msg")
int mesh_redirect(struct sk_msg_md *msg)
{
	struct sock_key peer = {};
	__u32 family = msg->family;
	__u32 l4 = *(volatile __u32 *)&msg->local_ip4;
	__u32 r4 = *(volatile __u32 *)&msg->remote_ip4;
	peer.remote[0] = *(volatile __u32 *)&msg->local_ip6[0];
	peer.remote[1] = *(volatile __u32 *)&msg->local_ip6[1];
	peer.remote[2] = *(volatile __u32 *)&msg->local_ip6[2];
	peer.remote[3] = *(volatile __u32 *)&msg->local_ip6[3];
	peer.local[0] = *(volatile __u32 *)&msg->remote_ip6[0];
	peer.local[1] = *(volatile __u32 *)&msg->remote_ip6[1];
	peer.local[2] = *(volatile __u32 *)&msg->remote_ip6[2];
	peer.local[3] = *(volatile __u32 *)&msg->remote_ip6[3];
	if (family == 2 /* AF_INET */) {
		v4map(peer.remote, l4);
		v4map(peer.local, r4);
	}
	peer.rport = *(volatile __u32 *)&msg->local_port;
	peer.lport = port_host(*(volatile __u32 *)&msg->remote_port);
	if (is_loopback(peer.local) && is_loopback(peer.remote))
		peer.netns = bpf_get_netns_cookie(msg);
	if (bpf_msg_redirect_hash(msg, &mesh_socks, &peer, BPF_F_INGRESS) == SK_PASS) {
		count(STAT_REDIRECTED);
		return SK_PASS;
	}
	count(STAT_NO_PEER);
	return SK_PASS;
}
