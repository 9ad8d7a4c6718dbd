// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The HTTP/1.x start test shared by the packet programs (observer.c) and
// the TLS plaintext probes (tlsprobe.c).

#ifndef RAUTA_HTTP_START_H
#define RAUTA_HTTP_START_H

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "looks_http assumes little-endian loads (bpfel)"
#endif

// W builds the little-endian word of the first n bytes of s.
#define B(s, i) ((__u64)(__u8)(s)[i] << (8 * (i)))
#define W4(s) (B(s, 0) | B(s, 1) | B(s, 2) | B(s, 3))
#define W5(s) (W4(s) | B(s, 4))
#define W6(s) (W5(s) | B(s, 5))
#define W7(s) (W6(s) | B(s, 6))
#define W8(s) (W7(s) | B(s, 7))
#define MASK(n) ((n) == 8 ? ~0ULL : ((1ULL << (8 * (n))) - 1))

// looks_http reports whether the first 8 payload bytes (w, loaded as a
// little-endian word) begin an HTTP/1.x request (a known method followed by
// a space) or a status line ("HTTP/1."). Comparing whole words keeps the
// verifier away from byte-pointer arithmetic.
static __always_inline int looks_http(__u64 w) {
	__u64 w4 = w & MASK(4), w5 = w & MASK(5), w6 = w & MASK(6), w7 = w & MASK(7);
	return w4 == W4("GET ") || w4 == W4("PUT ") || w5 == W5("POST ") ||
	       w5 == W5("HEAD ") || w6 == W6("PATCH ") || w6 == W6("TRACE ") ||
	       w7 == W7("DELETE ") || w == W8("OPTIONS ") || w == W8("CONNECT ") ||
	       w7 == W7("HTTP/1.");
}

#endif
