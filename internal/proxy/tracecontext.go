package proxy

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// W3C Trace Context (https://www.w3.org/TR/trace-context/): the gateway
// reads a request's traceparent, decides whether the request is sampled,
// and when it is, makes a server span and a client span per attempt and
// sends backends a traceparent naming the client span. An unsampled
// request's traceparent (and every tracestate) passes through unchanged.

// traceCtx is one request's trace context; the zero value is "no trace".
type traceCtx struct {
	traceID [16]byte
	// parent is the client's span, zero for a trace the gateway started.
	parent [8]byte
	// span is the gateway's server span (sampled requests only).
	span [8]byte
	// valid: traceID names a trace that reaches somewhere (the client's,
	// or one the gateway started and samples), so logs may show it.
	valid   bool
	sampled bool
}

// traceparentLen is the length of a version 00 traceparent.
const traceparentLen = 55

// parseTraceparent reads a traceparent value. Future versions are read as
// version 00 where they agree, as the specification asks; version ff,
// uppercase hex and all-zero IDs are invalid.
func parseTraceparent(v string) (tid [16]byte, sid [8]byte, flags byte, ok bool) {
	if len(v) < traceparentLen || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return tid, sid, 0, false
	}
	ver, ok1 := hexByte(v[0], v[1])
	if !ok1 || ver == 0xff || (ver == 0 && len(v) != traceparentLen) ||
		(len(v) > traceparentLen && v[traceparentLen] != '-') {
		return tid, sid, 0, false
	}
	if !decodeHex(tid[:], v[3:35]) || !decodeHex(sid[:], v[36:52]) || tid == ([16]byte{}) || sid == ([8]byte{}) {
		return tid, sid, 0, false
	}
	flags, ok = hexByte(v[53], v[54])
	return tid, sid, flags, ok
}

// appendTraceparent appends the version 00 traceparent of span sid in
// trace tid, sampled.
func appendTraceparent(dst []byte, tid [16]byte, sid [8]byte) []byte {
	dst = append(dst, "00-"...)
	dst = appendHex(dst, tid[:])
	dst = append(dst, '-')
	dst = appendHex(dst, sid[:])
	return append(dst, "-01"...)
}

const hexDigits = "0123456789abcdef"

func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false // uppercase is invalid in traceparent
}

func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexVal(hi)
	l, ok2 := hexVal(lo)
	return h<<4 | l, ok1 && ok2
}

func decodeHex(dst []byte, s string) bool {
	for i := range dst {
		b, ok := hexByte(s[2*i], s[2*i+1])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
}

// sampler is parent-based with a ratio for roots: a client's sampled flag
// is followed either way, and a request without a valid traceparent is
// sampled when its new trace ID falls under the ratio, the way
// OpenTelemetry's TraceIDRatioBased decides (so every component using that
// rule agrees on a trace ID).
type sampler struct {
	bound uint64 // trace IDs whose last 8 bytes >> 1 are below it are sampled
}

func newSampler(ratio float64) sampler {
	switch {
	case ratio >= 1:
		return sampler{bound: math.MaxUint64}
	case ratio <= 0:
		return sampler{}
	}
	return sampler{bound: uint64(ratio * (1 << 63))}
}

// start makes the trace context of a request whose traceparent is tp ("" for
// none).
func (s sampler) start(tp string) traceCtx {
	var tc traceCtx
	if tid, sid, flags, ok := parseTraceparent(tp); ok {
		tc.traceID, tc.parent, tc.valid, tc.sampled = tid, sid, true, flags&1 != 0
	} else {
		binary.BigEndian.PutUint64(tc.traceID[:8], rand.Uint64())
		lo := rand.Uint64() | 1 // never all zero
		binary.BigEndian.PutUint64(tc.traceID[8:], lo)
		tc.sampled = lo>>1 < s.bound || s.bound == math.MaxUint64
		tc.valid = tc.sampled
	}
	if tc.sampled {
		tc.span = newSpanID()
	}
	return tc
}

// newSpanID returns a random, non-zero span ID; math/rand/v2's generator
// is per goroutine-scheduler state and does not allocate.
func newSpanID() [8]byte {
	var sid [8]byte
	binary.BigEndian.PutUint64(sid[:], rand.Uint64()|1<<63)
	return sid
}

// traceIDOf is the trace ID a request's access log line shows when the
// gateway does not trace: the client's, from a valid traceparent.
func traceIDOf(tp string) ([16]byte, bool) {
	tid, _, _, ok := parseTraceparent(tp)
	return tid, ok
}
