// Package httpparse parses the first bytes of HTTP/1.x messages as the
// kernel captured them: a request line or status line and the few headers
// the observer uses (Host, User-Agent, Content-Length). Input may be cut
// anywhere; what is cut is reported, never guessed.
package httpparse

import (
	"bytes"
	"errors"

	"github.com/false-systems/rauta/internal/tracecontext"
)

// Errors. ErrMalformed wraps everything that is not HTTP/1.x.
var (
	ErrMalformed = errors.New("malformed HTTP/1.x message")
	// ErrTruncated: the start line is cut before its end, so the fields
	// that need it (version, status) cannot be read.
	ErrTruncated = errors.New("start line truncated")
)

// Limits: longer values are cut and flagged, keeping what userspace
// stores per request bounded.
const (
	MaxTargetLen    = 256
	MaxHostLen      = 128
	MaxUserAgentLen = 128
	// MaxTraceStateLen: the W3C limit of what a vendor must propagate.
	MaxTraceStateLen = 512
)

// BodyLen reports the length of the request body when the head says so:
// Content-Length, or 0 without Content-Length and Transfer-Encoding
// (RFC 9112 6.3). ok is false for chunked or unknown bodies.
func (r *Request) BodyLen() (n int64, ok bool) {
	switch {
	case !r.HeadersComplete || r.Chunked:
		return 0, false
	case r.ContentLength >= 0:
		return r.ContentLength, true
	}
	return 0, true
}

// BodyLen reports the length of the response body when it is known from
// the head (Content-Length, or none for 1xx, 204 and 304) or from a chunked
// body captured whole. A response to HEAD also has none, which only the
// caller knows (head).
func (r *Response) BodyLen(head bool) (n int64, ok bool) {
	switch {
	case !r.HeadersComplete:
		return 0, false
	case head || r.Status < 200 || r.Status == 204 || r.Status == 304:
		return 0, true
	case r.Chunked:
		if !r.ChunkedComplete {
			return 0, false
		}
		return r.ChunkedLen, true
	case r.ContentLength >= 0:
		return r.ContentLength, true
	}
	return 0, false // delimited by connection close
}

// Request is a parsed request head.
type Request struct {
	Method        string
	Target        string // request-target, cut at MaxTargetLen
	Minor         int    // 0 or 1: HTTP/1.<Minor>
	Host          string
	UserAgent     string
	ContentLength int64 // -1 when absent or invalid
	// TargetTruncated: the line was cut inside the request-target; Target
	// holds the part that was captured, and Minor is unknown (-1).
	TargetTruncated bool
	// HeadersComplete: the blank line ending the head was captured, so
	// absent headers are really absent.
	HeadersComplete bool
	// HeadLen is the length of the head including the blank line; 0 unless
	// HeadersComplete.
	HeadLen int
	// Chunked: Transfer-Encoding ends in chunked.
	Chunked bool
	// Trace is the W3C trace context of a valid traceparent header; zero
	// when there is none, it is invalid, or it is repeated (the
	// specification's rule: a repeated traceparent is not one context).
	Trace tracecontext.Parent
	// TraceState is the first tracestate header, cut at MaxTraceStateLen;
	// read only when Trace is valid and sampled, the one case a span is
	// made from it, so that other requests allocate nothing for it.
	TraceState string
	// RequestIDHash is HashRequestID of the one X-Request-Id header; 0
	// without one or with several. The gateway sends exactly one to its
	// backends, which is how the observer finds a request's upstream leg
	// (internal/observe/join).
	RequestIDHash uint64
}

// HashRequestID hashes a request ID (64-bit FNV-1a; never 0 for a
// non-empty ID): no allocation per exchange, and with the join's time
// window and endpoint a collision cannot pick a wrong leg in practice.
func HashRequestID[T string | []byte](id T) uint64 {
	if len(id) == 0 {
		return 0
	}
	h := uint64(14695981039346656037) // FNV-1a offset basis
	for i := range len(id) {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	if h == 0 {
		return 1
	}
	return h
}

// Response is a parsed response head.
type Response struct {
	Minor           int
	Status          int
	ContentLength   int64 // -1 when absent or invalid
	HeadersComplete bool
	HeadLen         int
	Chunked         bool
	// ChunkedLen is the length of a chunked body, framing included, when
	// all of it was captured (ChunkedComplete).
	ChunkedLen      int64
	ChunkedComplete bool
}

// ParseRequest parses a request head from b. It allocates only the strings
// it returns. A request line cut inside the target still yields Method and
// the captured part of Target with TargetTruncated set.
func ParseRequest(b []byte, r *Request) error { return parseRequest(b, r, nil) }

// parseRequest takes the strings it returns from in (nil: allocates them).
func parseRequest(b []byte, r *Request, in *Interner) error {
	*r = Request{ContentLength: -1, Minor: -1}
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 || sp > 16 {
		return malformed("request method")
	}
	method := b[:sp]
	if !isToken(method) {
		return malformed("request method")
	}
	r.Method = internMethod(method)
	rest := b[sp+1:]

	eol := bytes.IndexByte(rest, '\n')
	if eol < 0 {
		// Cut inside the request line. Keep the target if what we have of
		// it is clean; it is a prefix of the real one.
		t := rest
		if i := bytes.IndexByte(t, ' '); i >= 0 {
			// Target complete, version cut: still only partially known,
			// but what is there of the version must be HTTP/1.x's.
			if v := t[i+1:]; !isVersionPrefix(v) {
				return malformed("request version")
			}
			t = t[:i]
		}
		if len(t) == 0 {
			return ErrTruncated
		}
		if !isTarget(t) || !isTargetForm(method, t, false) {
			return malformed("request target")
		}
		r.Target = in.cut(t, MaxTargetLen)
		r.TargetTruncated = true
		return nil
	}
	// method SP request-target SP HTTP-version CRLF (RFC 9112 3): text
	// protocols' "GET key\r\n" (memcached, redis inline) and body bytes
	// that happen to start with a method word fail here. A bare LF ends
	// the line as servers accept it (RFC 9112 2.2); the version and the
	// target's form are what tell HTTP from the rest.
	line := trimCR(rest[:eol])
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp2 <= 0 {
		return malformed("request line")
	}
	target, version := line[:sp2], line[sp2+1:]
	if !isTarget(target) || !isTargetForm(method, target, true) {
		return malformed("request target")
	}
	minor, ok := parseVersion(version)
	if !ok {
		return malformed("request version")
	}
	r.Minor = minor
	r.Target = in.cut(target, MaxTargetLen)
	if len(target) > MaxTargetLen {
		r.TargetTruncated = true
	}
	start := sp + 1 + eol + 1
	var traceparents, requestIDs int
	var tracestate []byte
	used, err := parseHeaders(b[start:], func(name, value []byte) {
		switch {
		case equalFold(name, "host"):
			r.Host = in.cut(value, MaxHostLen)
		case equalFold(name, "user-agent"):
			r.UserAgent = in.cut(value, MaxUserAgentLen)
		case equalFold(name, "content-length"):
			r.ContentLength = mergeContentLength(r.ContentLength, value)
		case equalFold(name, "transfer-encoding"):
			r.Chunked = isChunked(value)
		case equalFold(name, "traceparent"):
			traceparents++
			r.Trace, _ = tracecontext.Parse(value)
		case equalFold(name, "x-request-id"):
			requestIDs++
			r.RequestIDHash = HashRequestID(value)
		case equalFold(name, "tracestate"):
			if tracestate == nil {
				tracestate = value
			}
		}
	})
	if used > 0 {
		r.HeadersComplete, r.HeadLen = true, start+used
	}
	switch {
	case traceparents > 1:
		r.Trace = tracecontext.Parent{}
	case r.Trace.Sampled() && len(tracestate) > 0:
		r.TraceState = string(tracestate[:min(len(tracestate), MaxTraceStateLen)])
	}
	if requestIDs > 1 {
		r.RequestIDHash = 0
	}
	if r.ContentLength < 0 {
		r.ContentLength = -1 // conflicting values (-2) are unknown too
	}
	return err
}

// ParseResponse parses a response head from b.
func ParseResponse(b []byte, r *Response) error {
	*r = Response{ContentLength: -1}
	// "HTTP/1.x NNN" is 12 bytes; the reason phrase may be empty.
	if len(b) < 12 {
		if len(b) >= 5 && string(b[:5]) == "HTTP/" {
			return ErrTruncated
		}
		return malformed("status line")
	}
	minor, ok := parseVersion(b[:8])
	if !ok || b[8] != ' ' {
		return malformed("response version")
	}
	s0, s1, s2 := b[9], b[10], b[11]
	if !isDigit(s0) || !isDigit(s1) || !isDigit(s2) {
		return malformed("status code")
	}
	status := int(s0-'0')*100 + int(s1-'0')*10 + int(s2-'0')
	if status < 100 || status > 599 {
		return malformed("status code")
	}
	if len(b) > 12 && b[12] != ' ' && b[12] != '\r' && b[12] != '\n' {
		return malformed("status code")
	}
	r.Minor, r.Status = minor, status
	eol := bytes.IndexByte(b, '\n')
	if eol < 0 {
		return nil // reason phrase cut; status is known
	}
	used, err := parseHeaders(b[eol+1:], func(name, value []byte) {
		switch {
		case equalFold(name, "content-length"):
			r.ContentLength = mergeContentLength(r.ContentLength, value)
		case equalFold(name, "transfer-encoding"):
			r.Chunked = isChunked(value)
		}
	})
	if used > 0 {
		r.HeadersComplete, r.HeadLen = true, eol+1+used
		if r.Chunked {
			r.ChunkedLen = chunkedLen(b[r.HeadLen:])
			r.ChunkedComplete = r.ChunkedLen >= 0
		}
	}
	if r.ContentLength < 0 {
		r.ContentLength = -1 // conflicting values (-2) are unknown too
	}
	return err
}

func malformed(what string) error {
	return &fieldError{field: what}
}

type fieldError struct{ field string }

func (e *fieldError) Error() string { return "malformed HTTP/1.x " + e.field }
func (e *fieldError) Unwrap() error { return ErrMalformed }
