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
// payload so userspace can see resets. Connections that start with the
// HTTP/2 client preface (h2c) are remembered in h2_conns and all their
// segments are reported, since HPACK needs every header block in order.
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
	KIND_H2 = 3,      // segment of an h2c connection (from its client preface on)
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

// h2c connections, one entry per direction, keyed by the segment's
// 4-tuple as seen in that direction. An entry is made for both directions
// when a client segment starts with the HTTP/2 client preface ("PRI *
// HT..."); from then on every segment of the connection with payload (or
// FIN) is reported, whatever it starts with: HPACK state is only known to
// userspace if it sees every header block in order. Only connections seen
// from their preface are marked: mid-connection HPACK state is unknowable.
// A direction's entry goes with its FIN, both with a RST; LRU evicts the
// rest (connections that ended while the observer was not looking).
// 16384 entries = 8192 connections, ~2 MiB of kernel memory.
//
// The value follows the direction's frame headers (h2_segment): a segment
// longer than the capture window may hold frame headers past it (the veth
// hands TC whole GSO segments of up to 64 KB, several 16 KB DATA frames),
// and userspace needs every frame header to stay in step.
struct h2key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u32 family; // wider than needed: no padding bytes in the key
};

#define H2_CONNS 16384

// What the kernel knows of one direction's frames.
struct h2dir {
	__u32 next_hdr; // sequence number of the next frame header
	__u32 seen_end; // sequence number after the last byte seen
	__u8 valid;     // next_hdr and seen_end are known
	__u8 part_n;    // bytes of a frame header split by a segment's end (at next_hdr)
	__u8 fresh;     // the server's direction, before its first segment
	__u8 _pad;
	__u8 part[8];
};

// Frame headers read per segment, and records per segment for frame
// headers past the window: beyond them the direction is given up
// (valid = 0) and userspace counts the connection as desynchronised.
#define H2_MAX_WALK 128
#define H2_MAX_SUB 8

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, H2_CONNS);
	__type(key, struct h2key);
	__type(value, struct h2dir);
} h2_conns SEC(".maps");

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

// Follow h2c connections (h2_conns below). Userspace clears it at load
// time to leave HTTP/2 out: the map lookup it costs every non-HTTP/1
// segment with payload (~25 ns in BPF_PROG_TEST_RUN) is then skipped.
volatile const __u8 follow_h2 = 1;

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

// emit_at reports cap bytes (0..CAPTURE_MAX) of the payload from offset
// off as a record described by m (h2c: a part of a segment, with its own
// sequence number and length).
static __always_inline void emit_at(struct pkt *p, const struct tuple *t, const struct meta *m, __u32 off, __u32 cap) {
	__u32 zero = 0;
	struct event_large *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	fill((struct event *)e, t, m);
	__u32 n = cap & ((CAPTURE_MAX << 1) - 1);
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

// emit_large reports a request segment longer than CAPTURE_LEN with up to
// CAPTURE_MAX payload bytes, in a record sized to what was captured.
static __always_inline void emit_large(struct pkt *p, const struct tuple *t, const struct meta *m, __u32 off) {
	__u32 n = m->payload_len;
	if (n > CAPTURE_MAX) {
		n = CAPTURE_MAX;
		count(STAT_TRUNCATED);
	}
	emit_at(p, t, m, off, n);
}

// h2_needs_payload: frame types whose payload userspace reads (HEADERS,
// RST_STREAM, PUSH_PROMISE, GOAWAY, CONTINUATION); of the others it needs
// only the header.
static __always_inline int h2_needs_payload(__u8 type) {
	return type == 1 || type == 3 || type == 5 || type == 7 || type == 9;
}

// h2walk is h2_segment's per-CPU scratch: the frame headers found in a
// segment, and room to reassemble a split header.
struct h2walk {
	__u32 rel[H2_MAX_WALK]; // offset of the frame header in the segment
	__u8 type[H2_MAX_WALK]; // its frame type (0xff: a header split by the segment's end)
	__u8 hdr[16];
	// Headers found, and the first past the window (H2_MAX_WALK: none).
	// Kept here, not in registers, so that the walk's many exits reach
	// the emitting code in one state the verifier can prune.
	__u32 n, first;
	// The segment, handed to h2_tc/h2_xdp (global functions take only
	// the context and scalars).
	struct tuple t;
	struct meta m;
	struct h2key k;
	struct meta sm; // the record being made (kept off the stack: 512 bytes for handle and this)
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2walk);
} h2scratch SEC(".maps");

// h2_control_start: the segment starts with a connection-level control
// frame (SETTINGS, PING or WINDOW_UPDATE on stream 0, of its valid
// length). The server's first bytes can go by before the client's
// preface marks the connection (gRPC servers send their SETTINGS as they
// accept); they cannot hold a header block (no request has reached the
// server), so the server's first segment seen may start its direction
// when it starts with such a frame. userspace applies the same rule.
static __always_inline int h2_control_start(struct pkt *p, struct h2walk *w, __u32 off) {
	if (load(p->ctx, p->xdp, off, w->hdr, 9) < 0)
		return 0;
	__u32 flen = (__u32)w->hdr[0] << 16 | (__u32)w->hdr[1] << 8 | w->hdr[2];
	if (w->hdr[5] | w->hdr[6] | w->hdr[7] | w->hdr[8])
		return 0;
	switch (w->hdr[3]) {
	case 4:
		return flen % 6 == 0 && flen <= 16384;
	case 6:
		return flen == 8;
	case 8:
		return flen == 4;
	}
	return 0;
}

// h2_segment reports a segment of an h2c connection: its first
// CAPTURE_MAX bytes, and when it is longer, a record for each frame
// header past them (the header alone, or up to CAPTURE_MAX bytes of the
// frame when userspace needs its payload). Each record says where it
// starts (seq) and how many segment bytes it stands for (payload_len),
// ending where the next record starts, so that the bytes userspace does
// not get lie inside frames it skips. It walks the direction's frame
// headers from st->next_hdr; a segment seen already (the other hook of a
// router, a retransmission) is not reported again, and after a gap the
// walk is given up and segments are reported plainly.
static __always_inline void h2_segment(struct pkt *p, struct h2walk *w, __u32 off, struct h2dir *st) {
	const struct tuple *t = &w->t;
	const struct meta *m = &w->m;
	__u32 len = m->payload_len;
	__u32 win = len < CAPTURE_MAX ? len : CAPTURE_MAX;
	if (len > CAPTURE_MAX)
		count(STAT_TRUNCATED);
	if (!st->valid || len == 0) {
		emit_at(p, t, m, off, win);
		return;
	}
	__u32 seq = m->seq;
	if ((__s32)(seq + len - st->seen_end) <= 0)
		return; // reported at its first sighting
	if ((__s32)(seq - st->seen_end) > 0 && !(st->fresh && h2_control_start(p, w, off))) {
		st->valid = 0; // bytes missed: the frame positions are lost
		emit_at(p, t, m, off, win);
		return;
	}
	if ((__s32)(seq - st->seen_end) > 0)
		st->next_hdr = seq; // the server's start, past its missed SETTINGS
	st->fresh = 0;
	st->seen_end = seq + len;
	__s64 rel = (__s32)(st->next_hdr - seq); // next header, from the segment's start
	__u32 n = 0;
	w->n = 0;
	w->first = H2_MAX_WALK;
	if (rel < 0) {
		// A header split by the previous segment's end: its first
		// bytes are in st->part, the rest start this segment.
		__u32 have = st->part_n;
		__u32 need = 9 - have;
		if (have < 1 || have > 8 || (__s64)have != -rel || len < need) {
			st->valid = 0;
			goto out;
		}
		__builtin_memcpy(w->hdr, st->part, 8);
		// ((x - 1) & 7) + 1: 1..8 in the verifier's eyes as well.
		if (load(p->ctx, p->xdp, off, &w->hdr[have & 7], ((need - 1) & 7) + 1) < 0) {
			st->valid = 0;
			goto out;
		}
		st->part_n = 0;
		rel += 9 + ((__u32)w->hdr[0] << 16 | (__u32)w->hdr[1] << 8 | w->hdr[2]);
		st->next_hdr = seq + rel;
	}
	// The walk: one header read per frame and nothing decided in the
	// loop but the first header past the window, so that the verifier
	// follows few paths through it.
	for (int i = 0; i < H2_MAX_WALK; i++) {
		if (rel + 9 > len)
			break;
		__u32 r = rel;
		if (load(p->ctx, p->xdp, off + r, w->hdr, 9) < 0) {
			st->valid = 0;
			goto out;
		}
		w->rel[i & (H2_MAX_WALK - 1)] = r;
		w->type[i & (H2_MAX_WALK - 1)] = w->hdr[3];
		n = i + 1;
		w->n = n;
		if (r >= win && w->first == H2_MAX_WALK)
			w->first = i; // the first header past the window
		rel += 9 + ((__u32)w->hdr[0] << 16 | (__u32)w->hdr[1] << 8 | w->hdr[2]);
		st->next_hdr = seq + rel;
	}
	if (rel < len && rel + 9 > len && n < H2_MAX_WALK) {
		// A header split by this segment's end: keep its first bytes
		// for the next segment.
		__u32 r = rel, k = len - r;
		if (k < 1 || k > 8 || load(p->ctx, p->xdp, off + r, st->part, ((k - 1) & 7) + 1) < 0) {
			st->valid = 0;
			goto out;
		}
		st->part_n = k;
		w->rel[n & (H2_MAX_WALK - 1)] = r;
		w->type[n & (H2_MAX_WALK - 1)] = 0xff;
		if (r >= win && w->first == H2_MAX_WALK)
			w->first = n;
		w->n = n + 1;
	} else if (rel < len) {
		st->valid = 0; // more frames than walked: the rest is unknown
	}
	{
		// A frame userspace reads (a header block) that the window
		// cuts gets a record of its own too, so that the first
		// record's cut lies in a frame userspace skips. (Decided here,
		// not in the walk: a branch more per walked frame multiplies
		// the verifier's paths.)
		__u32 f = *(volatile __u32 *)&w->first, nn = *(volatile __u32 *)&w->n;
		if (nn > H2_MAX_WALK)
			nn = H2_MAX_WALK;
		__u32 k = f < nn ? f : nn;
		if (k >= 1) {
			k--;
			__u32 start = w->rel[k & (H2_MAX_WALK - 1)];
			__u32 end = f < nn ? w->rel[f & (H2_MAX_WALK - 1)] : len;
			if (start < win && end > win && h2_needs_payload(w->type[k & (H2_MAX_WALK - 1)]))
				w->first = k;
		}
	}
out:;
	// The segment's first record ends where the first record past the
	// window starts; those follow, each running to the next one's start
	// or the segment's end.
	// Read back through volatile: the compiler would otherwise reuse the
	// values it stored, and the verifier would follow each exit of the
	// walk separately.
	__u32 first = *(volatile __u32 *)&w->first;
	n = *(volatile __u32 *)&w->n;
	if (n > H2_MAX_WALK)
		n = H2_MAX_WALK;
	struct meta *sm = &w->sm;
	*sm = *m;
	__u32 cap = win;
	if (first < n) {
		sm->payload_len = w->rel[first & (H2_MAX_WALK - 1)];
		if (cap > sm->payload_len)
			cap = sm->payload_len;
	}
	emit_at(p, t, sm, off, cap);
	for (int j = 0; j < H2_MAX_SUB; j++) {
		__u32 idx = first + j;
		if (idx >= n)
			break;
		if (j == H2_MAX_SUB - 1 && idx + 1 < n)
			st->valid = 0; // more headers past the window than records
		__u32 r = w->rel[idx & (H2_MAX_WALK - 1)];
		__u32 next = idx + 1 < n ? w->rel[(idx + 1) & (H2_MAX_WALK - 1)] : len;
		__u8 type = w->type[idx & (H2_MAX_WALK - 1)];
		sm->seq = seq + r;
		sm->payload_len = next - r;
		cap = 9;
		if (type == 0xff || h2_needs_payload(type))
			cap = next - r; // a split header, or a payload userspace reads
		emit_at(p, t, sm, off + r, cap);
	}
}

// h2_run reports the segment described in h2scratch and ends its
// direction's entry at a FIN.
static __always_inline int h2_run(void *ctx, int xdp, __u32 off) {
	__u32 zero = 0;
	struct h2walk *w = bpf_map_lookup_elem(&h2scratch, &zero);
	if (!w)
		return 0;
	struct h2dir *st = bpf_map_lookup_elem(&h2_conns, &w->k);
	if (!st)
		return 0;
	struct pkt p = {.ctx = ctx, .xdp = xdp};
	h2_segment(&p, w, off, st);
	if (w->m.flags & 0x01)
		bpf_map_delete_elem(&h2_conns, &w->k); // FIN: nothing more comes this way
	return 0;
}

// h2_tc and h2_xdp are global functions: the verifier checks them once,
// on their own, instead of once for every path through handle() that
// reaches them (the frame walk made that 515k instructions and 3 s per
// program to verify).
__attribute__((noinline)) int h2_tc(struct __sk_buff *skb, __u32 off) {
	return h2_run(skb, 0, off);
}

__attribute__((noinline)) int h2_xdp(struct xdp_md *ctx, __u32 off) {
	return h2_run(ctx, 1, off);
}

// h2_keys fills the h2c map keys of the segment's direction and of the
// reverse one.
static __always_inline void h2_keys(struct h2key *k, struct h2key *rk, const struct tuple *t, const struct tcphdr *tcp) {
	__builtin_memcpy(k->saddr, t->saddr, sizeof(t->saddr));
	__builtin_memcpy(k->daddr, t->daddr, sizeof(t->daddr));
	k->sport = tcp->source;
	k->dport = tcp->dest;
	k->family = t->family;
	__builtin_memcpy(rk->saddr, t->daddr, sizeof(t->daddr));
	__builtin_memcpy(rk->daddr, t->saddr, sizeof(t->saddr));
	rk->sport = tcp->dest;
	rk->dport = tcp->source;
	rk->family = t->family;
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
	// The h2c key of this direction (k) and of the other (rk), built only
	// on the paths that need them.
	struct h2key k = {}, rk = {};
	struct h2dir *h2 = NULL;
	if (flags & 0x04) {
		kind = KIND_RESET;
		payload_len = 0;
		if (follow_h2) {
			h2_keys(&k, &rk, &t, tcp);
			bpf_map_delete_elem(&h2_conns, &k);
			bpf_map_delete_elem(&h2_conns, &rk);
		}
	} else {
		// Bare ACKs leave here: no more work, no map lookup.
		if (payload_len == 0 && !(flags & 0x01))
			return;
		__u64 hbuf;
		__u64 *head = NULL;
		if (payload_len >= 8)
			head = header(p, off, &hbuf, sizeof(hbuf));
		if (head && looks_http(*head)) {
			kind = KIND_PAYLOAD;
			resp = (*head & MASK(7)) == W7("HTTP/1.");
		} else if (!follow_h2) {
			if (payload_len >= 8)
				count(STAT_NON_HTTP);
			return;
		} else {
			h2_keys(&k, &rk, &t, tcp);
			h2 = bpf_map_lookup_elem(&h2_conns, &k);
			__u32 seq = bpf_ntohl(tcp->seq);
			// A preface marks the connection, unless it is the
			// one already marked, seen again (the router's other
			// hook): marking again would rewind the server's
			// state past frames it has sent meanwhile.
			if (head && *head == W8("PRI * HT") && (!h2 || (__s32)(seq - h2->seen_end) >= 0)) {
				// The client's frames start after the 24-byte
				// preface, the server's where the preface's ACK
				// says (it cannot have sent a header block before
				// the client's first request).
				__u32 ack = bpf_ntohl(tcp->ack_seq);
				struct h2dir c = {.next_hdr = seq + 24, .seen_end = seq, .valid = 1};
				struct h2dir s = {.next_hdr = ack, .seen_end = ack, .valid = (flags & 0x10) != 0, .fresh = 1};
				bpf_map_update_elem(&h2_conns, &k, &c, BPF_ANY);
				bpf_map_update_elem(&h2_conns, &rk, &s, BPF_ANY);
				h2 = bpf_map_lookup_elem(&h2_conns, &k);
			}
			if (!h2) {
				if (payload_len >= 8)
					count(STAT_NON_HTTP);
				return;
			}
			kind = KIND_H2;
		}
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
	// sequence numbers); its request is counted as unpaired. h2c segments
	// of either direction take the large window: a header block cut by the
	// window desynchronises the connection's HPACK state.
	if (h2) {
		__u32 zero = 0;
		struct h2walk *w = bpf_map_lookup_elem(&h2scratch, &zero);
		if (!w)
			return;
		w->t = t;
		w->m = m;
		w->k = k;
		if (p->xdp)
			h2_xdp(p->ctx, off);
		else
			h2_tc(p->ctx, off);
		return;
	}
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
