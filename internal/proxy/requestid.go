package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"unsafe"
)

// Request IDs. Every request forwarded carries X-Request-Id: the client's,
// when it sent exactly one that is short and plain (validRequestID), or
// one the gateway makes. A made one is a per-process random prefix, the
// connection's number and the request's number on it, in hex:
// "5f0c2a9e41d07b3c-1a-3". It is unique per process start without
// crypto/rand per request, and written into a buffer the request or its
// connection holds anyway, so it allocates nothing (docs/telemetry.md).

// maxRequestIDLen bounds a client's X-Request-Id: longer ones are
// replaced, so a client cannot make logs and backends carry kilobytes.
const maxRequestIDLen = 128

// requestIDs makes request IDs for one Server.
type requestIDs struct {
	prefix [16]byte // hex of 8 random bytes
	conns  atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var raw [8]byte
	_, _ = rand.Read(raw[:]) // never fails (crypto/rand panics instead)
	g := &requestIDs{}
	hex.Encode(g.prefix[:], raw[:])
	return g
}

// conn numbers a new connection (or, on net/http's path, a request).
func (g *requestIDs) conn() uint64 { return g.conns.Add(1) }

// appendID appends the ID of request n on connection conn to dst.
func (g *requestIDs) appendID(dst []byte, conn, n uint64) []byte {
	dst = append(dst, g.prefix[:]...)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, conn, 16)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, n, 16)
}

// maxMadeIDLen bounds a made ID: 16 + 1 + 16 + 1 + 16 bytes.
const maxMadeIDLen = 50

// next makes an ID for a request of net/http's path, which has no
// connection state to number requests on: the counter numbers requests
// and the connection part is 0. The string views buf, which must live as
// long as the request and not change.
func (g *requestIDs) next(buf *[maxMadeIDLen]byte) string {
	b := g.appendID(buf[:0], 0, g.conns.Add(1))
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// validRequestID reports a client X-Request-Id the gateway keeps: 1 to
// maxRequestIDLen bytes of letters, digits and -_.:+/=@ (UUIDs, ULIDs,
// base64 and the IDs of other proxies all fit). Anything else (spaces,
// quotes, control bytes, non-ASCII) is replaced, so it is safe to log
// and to pass on.
func validRequestID(v string) bool {
	if len(v) == 0 || len(v) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '/', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// clientRequestID returns the client's X-Request-Id when it is to be
// kept: exactly one valid value.
func clientRequestID(vals []string) (string, bool) {
	if len(vals) != 1 || !validRequestID(vals[0]) {
		return "", false
	}
	return vals[0], true
}
