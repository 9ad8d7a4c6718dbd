//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// RAUTA HTTP observer: kernel side.
//
// "eBPF captures, userspace parses." These programs look at TCP segments on
// TC ingress/egress (or XDP ingress), and when the payload starts like an
// HTTP/1.x request line or status line they copy the first bytes (up to
// CAPTURE_LEN, or CAPTURE_MAX for longer request segments), the 4-tuple,
// the TCP sequence and acknowledgment numbers and a CLOCK_MONOTONIC
// timestamp into a ring buffer. Segments with RST set are reported without
// payload so userspace can see resets.
//
// They never drop, redirect or modify a packet: every path returns
// TC_ACT_UNSPEC / XDP_PASS. What they cannot deliver (ring buffer full) is
// counted in the per-CPU "stats" array that userspace exports.
//
// Minimum kernel: 5.8 (BPF ring buffer) for TC via clsact; 6.6 for TCX;
// 5.18 for the XDP program (bpf_xdp_load_bytes).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <stddef.h>

char __license[] SEC("license") = "Dual BSD/GPL";

// Bytes of payload copied per event. The brief's floor is 256; 512 keeps
// Host and User-Agent of typical requests even behind long cookies-free
// header blocks. Must be a power of two (used as a verifier bound).
#define CAPTURE_LEN 512

// Window for request segments longer than CAPTURE_LEN: pipelined requests
// lie beyond the first 512 bytes (eight 200-byte requests are 1.6 KB), and
// userspace finds each message start from the previous message's length.
// One page; the record takes only the bytes captured. Must be a power of
// two.
#define CAPTURE_MAX 4096

enum direction {
	DIR_INGRESS = 0,
	DIR_EGRESS = 1,
};

enum event_kind {
	KIND_PAYLOAD = 1, // payload starts with an HTTP/1.x request or status line
	KIND_RESET = 2,   // segment with RST set (no payload copied)
};

enum stat_index {
	STAT_EVENTS = 0,       // events submitted to the ring buffer
	STAT_RINGBUF_FULL = 1, // events lost because the ring buffer was full
	STAT_NON_HTTP = 2,     // TCP segments with payload that did not start like HTTP/1.x
	STAT_TRUNCATED = 3,    // events whose payload was longer than CAPTURE_MAX
	STAT_MAX = 4,
};

// The record header, shared by both record sizes (72 bytes).
#define EVENT_FIELDS                                                                  \
	__u64 ts_ns;       /* bpf_ktime_get_ns(), CLOCK_MONOTONIC */                  \
	__u32 saddr[4];    /* network byte order; IPv4 uses saddr[0] only */          \
	__u32 daddr[4];                                                               \
	__u32 ifindex;                                                                \
	__u32 seq;         /* TCP sequence number (host order) */                     \
	__u32 ack;         /* TCP acknowledgment number (host order; see ACK flag) */ \
	__u32 payload_len; /* TCP payload length of the segment (may exceed captured) */ \
	__u16 sport;       /* host order */                                           \
	__u16 dport;       /* host order */                                           \
	__u16 captured;    /* bytes valid in data[] */                                \
	__u8 family;       /* 4 or 6 */                                               \
	__u8 direction;    /* enum direction */                                       \
	__u8 kind;         /* enum event_kind */                                      \
	__u8 tcp_flags;    /* FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 */          \
	__u8 _pad[6];

// A record for segments of at most CAPTURE_LEN payload bytes (and resets).
struct event {
	EVENT_FIELDS
	__u8 data[CAPTURE_LEN];
};

// A record for longer segments: same header, larger window.
struct event_large {
	EVENT_FIELDS
	__u8 data[CAPTURE_MAX];
};

// Reference the event structs from globals so they land in BTF and bpf2go
// can generate their Go twins (ObserverEvent); programs never touch them.
const struct event *unused_event __attribute__((unused));
const struct event_large *unused_event_large __attribute__((unused));

// Wake the reader only once this much data is waiting; below it userspace
// finds the records on its next poll (it polls with a short timeout). A
// wakeup per event costs the reader a syscall round trip per event, which
// at tens of thousands of requests per second is most of its CPU.
// Userspace sets it at load time; 0 wakes on every event.
volatile const __u64 wakeup_bytes = 2 << 20;

// Bytes a record of size n takes in the ring: the 8-byte record header
// plus the record, rounded up to 8.
#define RECORD_BYTES(n) (((n) + 8 + 7) & ~7)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); // userspace may resize before load
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 idx) {
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1; // per-CPU slot: no atomics needed
}

#include "http_start.h"

// load copies len bytes at off from the packet; the XDP/TC split is resolved
// at compile time because handle() is always inlined with a constant.
static __always_inline long load(void *ctx, int xdp, __u32 off, void *to, __u32 len) {
	if (xdp)
		return bpf_xdp_load_bytes(ctx, off, to, len);
	return bpf_skb_load_bytes(ctx, off, to, len);
}

// pkt is the frame being looked at: its context and the linear part that
// direct packet access can read.
struct pkt {
	void *ctx;
	void *data;
	void *data_end;
	__u32 len; // whole frame, including non-linear parts
	int xdp;
};

// header returns len bytes at off: a pointer straight into the packet when
// they lie in its linear part (headers nearly always do), else a copy in
// buf made by bpf_*_load_bytes, or NULL past the end. Direct reads cost a
// bounds check; a load_bytes helper call costs tens of ns on a cold cache,
// and every packet needs three to five of them.
static __always_inline void *header(struct pkt *p, __u32 off, void *buf, __u32 len) {
	if (off < 256) { // bound the variable offset for the verifier
		void *h = p->data + off;
		if (h + len <= p->data_end)
			return h;
	}
	if (load(p->ctx, p->xdp, off, buf, len) < 0)
		return NULL;
	return buf;
}

struct tuple {
	__u32 saddr[4];
	__u32 daddr[4];
	__u8 family;
};

// meta is what handle learnt about a segment worth reporting.
struct meta {
	__u32 seq, ack, payload_len, ifindex;
	__u16 sport, dport;
	__u8 dir, kind, flags;
};

// fill writes the record header.
static __always_inline void fill(struct event *e, const struct tuple *t, const struct meta *m) {
	e->ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(e->saddr, t->saddr, sizeof(t->saddr));
	__builtin_memcpy(e->daddr, t->daddr, sizeof(t->daddr));
	e->ifindex = m->ifindex;
	e->seq = m->seq;
	e->ack = m->ack;
	e->payload_len = m->payload_len;
	e->sport = m->sport;
	e->dport = m->dport;
	e->family = t->family;
	e->direction = m->dir;
	e->kind = m->kind;
	e->tcp_flags = m->flags;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	e->captured = 0;
}

// wake_flag: wake the reader only when a record of rec bytes makes the
// queue cross the threshold (avail: queued bytes before it, with_rec:
// whether avail already includes it), not on every record above it: a
// reader that lags would otherwise be sent a wakeup (an irq_work) per
// event exactly when the system is busiest. Records below the threshold,
// or a crossing raced by another CPU, are picked up by the reader's
// periodic poll.
static __always_inline __u64 wake_flag(__u64 rec, int with_rec) {
	if (!wakeup_bytes)
		return 0; // default: wake if the reader waits for this record
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (!with_rec)
		avail += rec;
	return (avail >= wakeup_bytes && avail < wakeup_bytes + rec) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

// emit_small reports a segment of at most CAPTURE_LEN payload bytes (or
// any response: see handle) in a fixed-size record reserved in the ring.
static __always_inline void emit_small(struct pkt *p, const struct tuple *t, const struct meta *m, __u32 off) {
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(STAT_RINGBUF_FULL);
		return;
	}
	fill(e, t, m);
	// Only the payload's bytes are copied (and read by userspace), never
	// the whole window: most requests are far shorter.
	__u32 n = m->payload_len;
	if (n > CAPTURE_LEN) {
		n = CAPTURE_LEN;
		count(STAT_TRUNCATED);
	}
	if (n > 0) {
		// Bound n for the verifier: 1 <= n <= CAPTURE_LEN.
		n &= (CAPTURE_LEN << 1) - 1;
		if (n > CAPTURE_LEN)
			n = CAPTURE_LEN;
		if (n >= 1 && load(p->ctx, p->xdp, off, e->data, n) == 0)
			e->captured = n;
	}
	bpf_ringbuf_submit(e, wake_flag(RECORD_BYTES(sizeof(*e)), 1));
	count(STAT_EVENTS);
}

// Scratch for long request segments: built here, then copied into the ring
// at its own length, so that a 1 KiB request takes 1 KiB of the ring and
// not a page (the ring's reserve only takes constant sizes).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event_large);
} scratch SEC(".maps");

// emit_large reports a request segment longer than CAPTURE_LEN with up to
// CAPTURE_MAX payload bytes, in a record sized to what was captured.
static __always_inline void emit_large(struct pkt *p, const struct tuple *t, const struct meta *m, __u32 off) {
	__u32 zero = 0;
	struct event_large *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	fill((struct event *)e, t, m);
	__u32 n = m->payload_len;
	if (n > CAPTURE_MAX) {
		n = CAPTURE_MAX;
		count(STAT_TRUNCATED);
	}
	// Bound n for the verifier: 1 <= n <= CAPTURE_MAX.
	n &= (CAPTURE_MAX << 1) - 1;
	if (n > CAPTURE_MAX)
		n = CAPTURE_MAX;
	if (n < 1 || load(p->ctx, p->xdp, off, e->data, n) != 0)
		n = 0;
	e->captured = n;
	__u64 size = offsetof(struct event_large, data) + n;
	if (bpf_ringbuf_output(&events, e, size, wake_flag(RECORD_BYTES(size), 0)) < 0) {
		count(STAT_RINGBUF_FULL);
		return;
	}
	count(STAT_EVENTS);
}

static __always_inline void handle(struct pkt *p, __u32 ifindex, __u8 dir) {
	union {
		struct ethhdr eth;
		struct iphdr ip;
		struct ipv6hdr ip6;
		struct tcphdr tcp;
	} buf;
	struct tuple t = {};
	__u32 off = sizeof(struct ethhdr);
	__u32 l4_end;

	struct ethhdr *eth = header(p, 0, &buf, sizeof(*eth));
	if (!eth)
		return;
	__u16 proto = eth->h_proto;

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = header(p, off, &buf, sizeof(*ip));
		if (!ip)
			return;
		if (ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return;
		// A non-first fragment has no TCP header; skip it.
		if (ip->frag_off & bpf_htons(0x1fff))
			return;
		t.family = 4;
		t.saddr[0] = ip->saddr;
		t.daddr[0] = ip->daddr;
		l4_end = off + bpf_ntohs(ip->tot_len);
		off += ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = header(p, off, &buf, sizeof(*ip6));
		if (!ip6)
			return;
		// Extension headers before TCP are rare for HTTP; not followed.
		if (ip6->nexthdr != IPPROTO_TCP)
			return;
		t.family = 6;
		__builtin_memcpy(t.saddr, &ip6->saddr, 16);
		__builtin_memcpy(t.daddr, &ip6->daddr, 16);
		off += sizeof(*ip6);
		l4_end = off + bpf_ntohs(ip6->payload_len);
	} else {
		return;
	}

	struct tcphdr *tcp = header(p, off, &buf, sizeof(*tcp));
	if (!tcp)
		return;
	__u32 doff = tcp->doff * 4;
	__u8 flags = ((__u8 *)tcp)[13];
	if (doff < sizeof(*tcp))
		return;
	off += doff;

	// Ethernet padding can make the frame longer than the IP datagram;
	// trust the IP length, bounded by the frame.
	if (l4_end > p->len)
		l4_end = p->len;
	__u32 payload_len = l4_end > off ? l4_end - off : 0;

	__u8 kind;
	int resp = 0;
	if (flags & 0x04) {
		kind = KIND_RESET;
		payload_len = 0;
	} else {
		// Bare ACKs, and anything shorter than the shortest request or
		// status line prefix we match, leave here: no more work.
		if (payload_len < 8)
			return;
		__u64 hbuf;
		__u64 *head = header(p, off, &hbuf, sizeof(hbuf));
		if (!head)
			return;
		if (!looks_http(*head)) {
			count(STAT_NON_HTTP);
			return;
		}
		kind = KIND_PAYLOAD;
		resp = (*head & MASK(7)) == W7("HTTP/1.");
	}
	struct meta m = {
		.seq = bpf_ntohl(tcp->seq),
		.ack = bpf_ntohl(tcp->ack_seq),
		.payload_len = payload_len,
		.ifindex = ifindex,
		.sport = bpf_ntohs(tcp->source),
		.dport = bpf_ntohs(tcp->dest),
		.dir = dir,
		.kind = kind,
		.flags = flags,
	};
	// Requests longer than CAPTURE_LEN get the large window: pipelined
	// requests lie beyond the first 512 bytes. Responses keep the small
	// one: nearly every response with a body is longer, and copying its
	// body to find a rare second response in the same segment would more
	// than double the response hook's cost (measured: ~85 -> ~260 ns in
	// BPF_PROG_TEST_RUN for a 1 KiB response) and the ring space it takes.
	// A response that is missed is never mis-paired (userspace pairs by
	// sequence numbers); its request is counted as unpaired.
	if (payload_len > CAPTURE_LEN && !resp)
		emit_large(p, &t, &m, off);
	else
		emit_small(p, &t, &m, off);
}

SEC("tc")
int observe_tc_ingress(struct __sk_buff *skb) {
	struct pkt p = {skb, (void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, 0};
	handle(&p, skb->ifindex, DIR_INGRESS);
	return TC_ACT_UNSPEC; // let the next program / the stack decide
}

SEC("tc")
int observe_tc_egress(struct __sk_buff *skb) {
	struct pkt p = {skb, (void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, 0};
	handle(&p, skb->ifindex, DIR_EGRESS);
	return TC_ACT_UNSPEC;
}

// xdp.frags: multi-buffer aware, so attaching does not cap the MTU and
// large (GRO/jumbo) frames are seen whole through bpf_xdp_load_bytes.
SEC("xdp.frags")
int observe_xdp_ingress(struct xdp_md *ctx) {
	// Total length including fragments of multi-buffer frames, which
	// bpf_xdp_load_bytes can read as well.
	struct pkt p = {ctx, (void *)(long)ctx->data, (void *)(long)ctx->data_end, bpf_xdp_get_buff_len(ctx), 1};
	handle(&p, ctx->ingress_ifindex, DIR_INGRESS);
	return XDP_PASS;
}
