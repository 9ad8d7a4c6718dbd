// Package pair matches HTTP/1.x requests with their responses per TCP
// connection, in order (pipelined and keep-alive requests included), in a
// bounded LRU of connections. Latency comes from kernel timestamps.
package pair

import (
	"net/netip"
	"time"

	"github.com/false-systems/rauta/internal/tracecontext"
)

// Outcome is how an exchange ended.
type Outcome uint8

const (
	// Complete: a response status line was seen.
	Complete Outcome = iota
	// Reset: the connection was reset while the request was pending.
	Reset
	// Timeout: no response within Config.RequestTimeout.
	Timeout
	// Pending: still unanswered, older than Config.OverdueAfter; handed to
	// Config.Overdue by Expire, never emitted as a finished exchange.
	Pending
)

func (o Outcome) String() string {
	switch o {
	case Reset:
		return "reset"
	case Timeout:
		return "timeout"
	case Pending:
		return "pending"
	}
	return "complete"
}

// Exchange is a request with its response (or how it failed).
type Exchange struct {
	Client, Server netip.AddrPort
	Method         string
	Target         string // request-target as captured (bounded)
	Host           string
	UserAgent      string
	// ReqContentLength and RespContentLength are -1 when unknown.
	ReqContentLength  int64
	RespContentLength int64
	Status            int // 0 unless Outcome is Complete
	Outcome           Outcome
	// StartNS and EndNS are CLOCK_MONOTONIC kernel timestamps of the first
	// request segment and of the status line (or of the reset / the
	// timeout check).
	StartNS, EndNS uint64
	// Unparsed: the request line could not be parsed; Method and Target
	// are empty. The exchange is still emitted to keep the connection's
	// request/response order.
	Unparsed bool
	// TargetTruncated: the request-target was cut, by the end of the
	// capture window or at httpparse.MaxTargetLen; Target is a prefix.
	TargetTruncated bool
	// Marks are bits the consumers set while the request was pending (on
	// the Overdue callback): the pairer keeps them with the request and
	// hands them back on later callbacks and on the finished exchange, so
	// that a consumer reports one request once. The pairer never reads them.
	Marks uint8
	// Version is the request's HTTP version, "1.0" or "1.1"; "" when the
	// request line was cut before it.
	Version string
	// Trace is the request's valid traceparent (zero without one), and
	// TraceState its tracestate when the trace is sampled.
	Trace      tracecontext.Parent
	TraceState string
	// RequestIDHash is the request's X-Request-Id hash, 0 without one
	// (httpparse.HashRequestID).
	RequestIDHash uint64
	// Stream is 0 for exchanges seen in TCP segments; for plaintext from
	// inside TLS (library probes) it is the library's connection object
	// (an SSL pointer) in process PID, which read and wrote it.
	Stream uint64
	PID    uint32
	// H2Stream is an HTTP/2 exchange's stream identifier on its
	// connection (0 for HTTP/1.x): unique on the connection for its life,
	// it names the exchange where several streams overlap in time.
	H2Stream uint32
	// GRPC: an HTTP/2 exchange whose request or response content-type is
	// application/grpc*. GRPCStatus is its status code (grpc-status of
	// the trailers, or of a trailers-only response) when Outcome is
	// Complete.
	GRPC       bool
	GRPCStatus uint8
}

// gRPC status codes the observer names (google.golang.org/grpc/codes).
const (
	GRPCOK               = 0
	GRPCUnknown          = 2
	GRPCDeadlineExceeded = 4
	GRPCInternal         = 13
	GRPCUnavailable      = 14
	GRPCDataLoss         = 15
)

// ServerError reports a failure of the server: a 5xx status, or a gRPC
// status that says the server (not the caller) failed: UNKNOWN, INTERNAL,
// UNAVAILABLE, DATA_LOSS, and DEADLINE_EXCEEDED (the server did not answer
// in the caller's time). The others (CANCELLED, INVALID_ARGUMENT,
// NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED,
// FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED,
// UNAUTHENTICATED) are the caller's, as 4xx are. Resets and timeouts are
// judged by their Outcome, not here.
func (e *Exchange) ServerError() bool {
	if e.Outcome != Complete {
		return false
	}
	if e.Status >= 500 {
		return true
	}
	if !e.GRPC {
		return false
	}
	switch e.GRPCStatus {
	case GRPCUnknown, GRPCDeadlineExceeded, GRPCInternal, GRPCUnavailable, GRPCDataLoss:
		return true
	}
	return false
}

// Latency is EndNS-StartNS.
func (e *Exchange) Latency() time.Duration {
	if e.EndNS < e.StartNS {
		return 0
	}
	return time.Duration(e.EndNS - e.StartNS)
}
