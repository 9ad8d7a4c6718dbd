package proxy

import (
	"github.com/false-systems/rauta/internal/tracecontext"
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
const traceparentLen = tracecontext.Len

// parseTraceparent reads a traceparent value (internal/tracecontext, shared
// with the observer): future versions are read as version 00 where they
// agree; version ff, uppercase hex and all-zero IDs are invalid.
func parseTraceparent(v string) (tid [16]byte, sid [8]byte, flags byte, ok bool) {
	p, ok := tracecontext.Parse(v)
	return p.TraceID, p.SpanID, p.Flags, ok
}

// appendTraceparent appends the version 00 traceparent of span sid in
// trace tid, sampled.
func appendTraceparent(dst []byte, tid [16]byte, sid [8]byte) []byte {
	return tracecontext.Append(dst, tid, sid)
}

const hexDigits = "0123456789abcdef"

func appendHex(dst, b []byte) []byte { return tracecontext.AppendHex(dst, b) }

// sampler is parent-based with a ratio for roots: a client's sampled flag
// is followed either way, and a request without a valid traceparent is
// sampled when its new trace ID falls under the ratio, the way
// OpenTelemetry's TraceIDRatioBased decides (so every component using that
// rule agrees on a trace ID).
type sampler struct{ ratio tracecontext.Ratio }

func newSampler(ratio float64) sampler { return sampler{tracecontext.NewRatio(ratio)} }

// start makes the trace context of a request whose traceparent is tp ("" for
// none).
func (s sampler) start(tp string) traceCtx {
	var tc traceCtx
	if tid, sid, flags, ok := parseTraceparent(tp); ok {
		tc.traceID, tc.parent, tc.valid, tc.sampled = tid, sid, true, flags&1 != 0
	} else {
		tc.traceID = tracecontext.NewTraceID()
		tc.sampled = s.ratio.Sampled(tc.traceID)
		tc.valid = tc.sampled
	}
	if tc.sampled {
		tc.span = newSpanID()
	}
	return tc
}

// newSpanID returns a random, non-zero span ID without allocating.
func newSpanID() [8]byte { return tracecontext.NewSpanID() }

// traceIDOf is the trace ID a request's access log line shows when the
// gateway does not trace: the client's, from a valid traceparent.
func traceIDOf(tp string) ([16]byte, bool) {
	tid, _, _, ok := parseTraceparent(tp)
	return tid, ok
}
