//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// RAUTA HTTP observer, TLS side: plaintext from inside TLS libraries.
//
// The packet programs (observer.c) see only ciphertext on TLS connections.
// These programs hook the TLS library calls that carry the plaintext:
// OpenSSL's SSL_write/SSL_read (and the _ex variants) with a uprobe at the
// entry (remember the buffer) and a uretprobe at the return (the buffer
// now holds what was written or read, and the return value says how
// much). When the plaintext starts like an HTTP/1.x request or status line,
// its first bytes go into the "tls_events" ring with the process, the
// connection (the SSL pointer), the direction and the plaintext stream
// offsets of both directions, which userspace uses as TCP sequence and
// acknowledgment numbers for pairing.
//
// The connection's 4-tuple is learned from the kernel socket the library
// call writes to or reads from: raw tracepoint programs on the stable
// tracepoints sock_send_length and sock_recv_length (after every
// sock_sendmsg/sock_recvmsg), running on the thread of a pending SSL call,
// copy the socket's addresses into that connection's state (struct sock
// read with CO-RE). OpenSSL does its socket I/O on the calling thread,
// inside the call, so the first call that touches the socket names it.
// Raw tracepoints and not kprobes or fentry: they need neither
// CONFIG_KPROBES nor tracefs, and the VM kernel this project tests on has
// no kprobes and refuses fentry programs (lockdown).
//
// Minimum kernel: 5.8 (BPF ring buffer) for the plaintext; 6.3 for the
// two tracepoints (before it, events carry no addresses: family 0).

#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char __license[] SEC("license") = "Dual BSD/GPL";

// Plaintext bytes copied per event, as on the packet path: a request gets
// up to TLS_CAPTURE_MAX (pipelined requests lie beyond the first 512
// bytes), a response TLS_CAPTURE_LEN (its head; the body is not parsed).
// Powers of two (verifier bounds).
#define TLS_CAPTURE_LEN 512
#define TLS_CAPTURE_MAX 4096

enum tls_dir {
	TLS_READ = 0,
	TLS_WRITE = 1,
};

enum tls_lib {
	LIB_OPENSSL = 1,
	LIB_GO = 2, // Go's crypto/tls
};

enum tls_stat {
	TSTAT_EVENTS = 0,      // events submitted
	TSTAT_RINGBUF_FULL = 1, // events lost: ring full
	TSTAT_NON_HTTP = 2,    // calls whose plaintext did not start like HTTP/1.x
	TSTAT_TRUNCATED = 3,   // events whose call carried more than was copied
	TSTAT_CALLS_LOST = 4,  // returns without their entry (calls map full)
	TSTAT_MAX = 5,
};

// One record per HTTP-looking read or write (104-byte header).
struct tls_event {
	__u64 ts_ns;     // bpf_ktime_get_ns() at the call's return
	__u64 conn;      // the library's connection object (SSL *, *tls.Conn)
	__u64 cgroup;    // bpf_get_current_cgroup_id()
	__u32 saddr[4];  // sender of the bytes (write: local, read: peer); network order
	__u32 daddr[4];
	__u32 tgid;      // process id
	__u32 seq;       // plaintext offset of data[0] in its direction
	__u32 ack;       // plaintext bytes carried the other way so far
	__u32 len;       // bytes of the call (may exceed captured)
	__u16 sport;     // host order
	__u16 dport;
	__u16 captured;  // bytes valid in data[]
	__u8 family;     // 4, 6, or 0: socket not seen yet
	__u8 direction;  // enum tls_dir
	__u8 lib;        // enum tls_lib
	__u8 _pad[7];
	char comm[16];
	// TLS_CAPTURE_MAX bytes at most are valid; the 8 more give the
	// verifier room for a read continued at offset pre < 8.
	__u8 data[TLS_CAPTURE_MAX + 8];
};

const struct tls_event *unused_tls_event __attribute__((unused));

#define TLS_HDR_LEN (sizeof(struct tls_event) - TLS_CAPTURE_MAX - 8)

struct conn_key {
	__u64 conn;
	__u32 tgid;
	__u32 _pad;
};

// Per connection: plaintext offsets of both directions and the socket's
// addresses, local first.
struct conn_state {
	__u32 rd_off;
	__u32 wr_off;
	__u32 laddr[4];
	__u32 raddr[4];
	__u16 lport;
	__u16 rport;
	__u8 family;
	__u8 tail_len; // bytes in tail
	__u8 _pad[2];
	// A read too short to tell whether it starts a message (Go's net/http
	// server reads one byte ahead of the next request), kept for the read
	// that continues it: tail_end is the offset right after it.
	__u32 tail_end;
	__u8 tail[16];
};

// A library call between its entry and its return.
struct call {
	struct conn_key key;
	__u64 buf;
	__u64 ex_len; // SSL_*_ex: where the library stores the byte count
	__u8 dir;
	__u8 _pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); // userspace may resize before load
} tls_events SEC(".maps");

// Bounded by max_entries; the least recently used connection goes first
// (a connection that comes back starts at offset 0 again, which userspace
// sees as a new connection's start).
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384); // userspace may resize before load
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} tls_conns SEC(".maps");

// Keyed by pid_tgid: a thread is in at most one SSL call at a time.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct call);
} tls_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_event);
} tls_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TSTAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tls_stats SEC(".maps");

static __always_inline void tcount(__u32 idx) {
	__u64 *v = bpf_map_lookup_elem(&tls_stats, &idx);
	if (v)
		*v += 1;
}

#include "http_start.h"

// tls_looks_http: 1 for a request, 2 for a response, 0 otherwise.
static __always_inline int tls_looks_http(__u64 w) {
	if (!looks_http(w))
		return 0;
	return (w & MASK(7)) == W7("HTTP/1.") ? 2 : 1;
}

struct in6_addr {
	union {
		__u32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

// Kernel socket fields, located by CO-RE in the running kernel's BTF.
struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

#define AF_INET 2
#define AF_INET6 10

static __always_inline int enter(struct pt_regs *ctx, __u8 dir, __u64 ex_len) {
	struct call c = {};
	c.key.conn = PT_REGS_PARM1(ctx);
	c.key.tgid = bpf_get_current_pid_tgid() >> 32;
	c.buf = PT_REGS_PARM2(ctx);
	c.ex_len = ex_len;
	c.dir = dir;
	__u64 id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&tls_calls, &id, &c, BPF_ANY);
	return 0;
}

// conn_of returns the state of a connection, made on first use.
static __always_inline struct conn_state *conn_of(struct conn_key *key) {
	struct conn_state *s = bpf_map_lookup_elem(&tls_conns, key);
	if (s)
		return s;
	struct conn_state zero = {};
	bpf_map_update_elem(&tls_conns, key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&tls_conns, key);
}

// emit accounts n plaintext bytes of a call on connection key and, when
// they start like HTTP/1.x, submits a record with their first bytes.
static __always_inline int emit(struct conn_key key, struct conn_state *s, __u64 buf, long n, __u8 dir, __u8 lib) {
	__u32 seq, ack;
	if (dir == TLS_WRITE) {
		seq = s->wr_off;
		ack = s->rd_off;
		s->wr_off += n;
	} else {
		seq = s->rd_off;
		ack = s->wr_off;
		s->rd_off += n;
	}
	// pre: bytes of an earlier short read that this read continues.
	__u32 pre = 0;
	if (dir == TLS_READ) {
		if (s->tail_len && s->tail_end == seq)
			pre = s->tail_len & 7;
		s->tail_len = 0;
		if (n < 8) {
			if (pre + n <= 7) {
				if (bpf_probe_read_user(s->tail + pre, n & 7, (void *)buf))
					return 0;
				s->tail_len = pre + n;
				s->tail_end = seq + n;
			}
			tcount(TSTAT_NON_HTTP);
			return 0;
		}
	}
	if (n < 8) {
		tcount(TSTAT_NON_HTTP);
		return 0;
	}
	__u32 zero = 0;
	struct tls_event *e = bpf_map_lookup_elem(&tls_scratch, &zero);
	if (!e)
		return 0;
	__u64 head = 0;
	if (pre) {
		__builtin_memcpy(e->data, s->tail, 8);
		if (bpf_probe_read_user(e->data + pre, 8, (void *)buf))
			return 0;
		head = *(__u64 *)e->data;
	} else if (bpf_probe_read_user(&head, sizeof(head), (void *)buf)) {
		return 0;
	}
	int kind = tls_looks_http(head);
	if (!kind) {
		tcount(TSTAT_NON_HTTP);
		return 0;
	}
	seq -= pre;

	e->ts_ns = bpf_ktime_get_ns();
	e->conn = key.conn;
	e->cgroup = bpf_get_current_cgroup_id();
	e->tgid = key.tgid;
	e->seq = seq;
	e->ack = ack;
	e->len = n + pre;
	e->family = s->family;
	e->direction = dir;
	e->lib = lib;
	if (dir == TLS_WRITE) {
		__builtin_memcpy(e->saddr, s->laddr, sizeof(e->saddr));
		__builtin_memcpy(e->daddr, s->raddr, sizeof(e->daddr));
		e->sport = s->lport;
		e->dport = s->rport;
	} else {
		__builtin_memcpy(e->saddr, s->raddr, sizeof(e->saddr));
		__builtin_memcpy(e->daddr, s->laddr, sizeof(e->daddr));
		e->sport = s->rport;
		e->dport = s->lport;
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	// The call's bytes go after the earlier read's (pre <= 7), within
	// the window.
	__u32 window = (kind == 2 ? TLS_CAPTURE_LEN : TLS_CAPTURE_MAX) - pre;
	__u32 cap = n;
	if (cap > window) {
		cap = window;
		tcount(TSTAT_TRUNCATED);
	}
	barrier_var(cap);
	if (cap > TLS_CAPTURE_MAX)
		cap = TLS_CAPTURE_MAX;
	pre &= 7;
	if (bpf_probe_read_user(e->data + pre, cap, (void *)buf))
		return 0;
	cap += pre;
	e->captured = cap;
	if (bpf_ringbuf_output(&tls_events, e, TLS_HDR_LEN + cap, BPF_RB_NO_WAKEUP)) {
		tcount(TSTAT_RINGBUF_FULL);
		return 0;
	}
	tcount(TSTAT_EVENTS);
	return 0;
}

// leave handles an OpenSSL call's return.
static __always_inline int leave(struct pt_regs *ctx, long ret) {
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&tls_calls, &id);
	if (!c) {
		tcount(TSTAT_CALLS_LOST);
		return 0;
	}
	long n = ret;
	if (c->ex_len) {
		// SSL_*_ex return 1 on success and store the count.
		__u64 cnt = 0;
		if (ret != 1 || bpf_probe_read_user(&cnt, sizeof(cnt), (void *)c->ex_len))
			n = 0;
		else
			n = cnt;
	}
	struct conn_key key = c->key;
	__u64 buf = c->buf;
	__u8 dir = c->dir;
	bpf_map_delete_elem(&tls_calls, &id);
	if (n <= 0)
		return 0;
	struct conn_state *s = conn_of(&key);
	if (!s)
		return 0;
	return emit(key, s, buf, n, dir, LIB_OPENSSL);
}

// int SSL_write(SSL *ssl, const void *buf, int num)
SEC("uprobe/SSL_write")
int tls_ssl_write(struct pt_regs *ctx) { return enter(ctx, TLS_WRITE, 0); }

// int SSL_read(SSL *ssl, void *buf, int num)
SEC("uprobe/SSL_read")
int tls_ssl_read(struct pt_regs *ctx) { return enter(ctx, TLS_READ, 0); }

// int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written)
SEC("uprobe/SSL_write_ex")
int tls_ssl_write_ex(struct pt_regs *ctx) { return enter(ctx, TLS_WRITE, PT_REGS_PARM4(ctx)); }

// int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes)
SEC("uprobe/SSL_read_ex")
int tls_ssl_read_ex(struct pt_regs *ctx) { return enter(ctx, TLS_READ, PT_REGS_PARM4(ctx)); }

// The return value is an int for SSL_read/SSL_write (negative on error).
SEC("uretprobe/SSL_ret")
int tls_ssl_ret(struct pt_regs *ctx) { return leave(ctx, (int)PT_REGS_RC(ctx)); }

// fill_addrs copies a socket's addresses into a connection's state.
static __always_inline void fill_addrs(struct conn_state *s, struct sock *sk) {
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		s->laddr[0] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		s->raddr[0] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		s->family = 4;
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&s->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&s->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
		s->family = 6;
	} else {
		return;
	}
	s->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	s->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
}

// sock_seen names the connection whose OpenSSL call is running on this
// thread with the socket it sends to or receives from, once.
static __always_inline int sock_seen(struct sock *sk) {
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&tls_calls, &id);
	if (!c)
		return 0;
	struct conn_key key = c->key;
	struct conn_state *s = conn_of(&key);
	if (!s || s->family)
		return 0;
	fill_addrs(s, sk);
	return 0;
}

// TP_PROTO(struct sock *sk, int ret, int flags), after sock_sendmsg.
SEC("raw_tracepoint/sock_send_length")
int tls_sock_send(struct bpf_raw_tracepoint_args *ctx) { return sock_seen((struct sock *)ctx->args[0]); }

// TP_PROTO(struct sock *sk, int ret, int flags), after sock_recvmsg.
SEC("raw_tracepoint/sock_recv_length")
int tls_sock_recv(struct bpf_raw_tracepoint_args *ctx) { return sock_seen((struct sock *)ctx->args[0]); }

// Go's crypto/tls. Go's register ABI (amd64): arguments in RAX, RBX, RCX,
// RDI, ...; results in RAX, RBX, ...; R14 holds the running goroutine (g).
// (*Conn).Write(b []byte) is read at its entry: it writes all of b or
// fails. (*Conn).Read(b []byte) is remembered at its entry per goroutine
// and read at each of its RET instructions (userspace finds them by
// disassembly): never with a uretprobe, whose return trampoline breaks
// when the goroutine's stack moves. A goroutine can change threads inside
// Read, so the key is the g, not the thread.

// The observer's own process: its TLS (OTLP, the API server) is not what
// it observes, and its binary is a Go binary with crypto/tls like any
// other. Set by userspace at load.
volatile const __u32 self_tgid = 0;

struct go_key {
	__u64 g;
	__u32 tgid;
	__u32 _pad;
};

struct go_read {
	__u64 conn;
	__u64 buf;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct go_key);
	__type(value, struct go_read);
} tls_go_reads SEC(".maps");

// Kernel file table, to name a Go connection's socket from its fd.
struct inode {
	unsigned short i_mode;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
	struct files_struct *files;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

#define S_IFMT 00170000
#define S_IFSOCK 0140000

// go_name_socket finds the socket of a *tls.Conn whose conn field holds a
// *net.TCPConn: tls.Conn.conn (interface: itab, data) at 0, TCPConn's
// *netFD at 0, netFD.pfd.Sysfd at 16 (after fdMutex's 16 bytes); these
// layouts have not changed since Go 1.12. The fd is looked up in the
// process's file table and must be a socket.
static __always_inline void go_name_socket(struct conn_state *s, __u64 conn) {
	__u64 tcpconn = 0, netfd = 0;
	__s64 fd = -1;
	if (bpf_probe_read_user(&tcpconn, sizeof(tcpconn), (void *)(conn + 8)) || !tcpconn)
		return;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)tcpconn) || !netfd)
		return;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + 16)) || fd < 0 || fd > 1 << 20)
		return;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || (__u64)fd >= BPF_CORE_READ(fdt, max_fds))
		return;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (sk)
		fill_addrs(s, sk);
}

static __always_inline struct conn_state *go_conn(struct conn_key *key) {
	struct conn_state *s = conn_of(key);
	if (s && !s->family)
		go_name_socket(s, key->conn);
	return s;
}

// func (c *Conn) Write(b []byte) (int, error)
SEC("uprobe/go_tls_write")
int tls_go_write(struct pt_regs *ctx) {
	struct conn_key key = {};
	key.conn = ctx->rax;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	if (key.tgid == self_tgid)
		return 0;
	long n = (long)ctx->rcx;
	if (n <= 0)
		return 0;
	struct conn_state *s = go_conn(&key);
	if (!s)
		return 0;
	return emit(key, s, ctx->rbx, n, TLS_WRITE, LIB_GO);
}

// func (c *Conn) Read(b []byte) (int, error), entry.
SEC("uprobe/go_tls_read")
int tls_go_read(struct pt_regs *ctx) {
	struct go_key gk = {};
	gk.g = ctx->r14;
	gk.tgid = bpf_get_current_pid_tgid() >> 32;
	if (gk.tgid == self_tgid)
		return 0;
	struct go_read r = {};
	r.conn = ctx->rax;
	r.buf = ctx->rbx;
	bpf_map_update_elem(&tls_go_reads, &gk, &r, BPF_ANY);
	return 0;
}

// At each RET of (*Conn).Read: RAX holds n.
SEC("uprobe/go_tls_read_ret")
int tls_go_read_ret(struct pt_regs *ctx) {
	struct go_key gk = {};
	gk.g = ctx->r14;
	gk.tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_read *r = bpf_map_lookup_elem(&tls_go_reads, &gk);
	if (!r) {
		tcount(TSTAT_CALLS_LOST);
		return 0;
	}
	struct conn_key key = {};
	key.conn = r->conn;
	key.tgid = gk.tgid;
	__u64 buf = r->buf;
	bpf_map_delete_elem(&tls_go_reads, &gk);
	long n = (long)ctx->rax;
	if (n <= 0)
		return 0;
	struct conn_state *s = go_conn(&key);
	if (!s)
		return 0;
	return emit(key, s, buf, n, TLS_READ, LIB_GO);
}
