package proxy

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// gRPC clients read a call's outcome from the grpc-status trailer, not from
// the HTTP status: a plain-text 503 reaches a gRPC application as an opaque
// "unexpected HTTP status" (or, from some clients, UNKNOWN). So an answer the
// gateway makes itself to a gRPC request (no route, backend down, timeout,
// limits) is a gRPC response: HTTP 200, content-type application/grpc, no
// message, and grpc-status / grpc-message as trailers. Metrics and the access
// log keep the HTTP status the error stands for, so dashboards count it as
// the failure it is.

// isGRPC reports whether a request is a gRPC call (content-type
// application/grpc, application/grpc+proto, ...).
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc") && (len(ct) == len("application/grpc") || ct[len("application/grpc")] == '+' || ct[len("application/grpc")] == ';')
}

// gRPC status codes (google.golang.org/grpc/codes) used for the gateway's
// own answers.
const (
	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

// grpcCodeFor maps the HTTP status of a gateway error to a gRPC status:
// gRPC's own HTTP-to-gRPC table (doc/http-grpc-status-mapping.md), except
// that the gateway's timeouts (408, 504) are DEADLINE_EXCEEDED, which is
// what they are, and header limits (431) RESOURCE_EXHAUSTED.
func grpcCodeFor(status int) int {
	switch status {
	case http.StatusBadRequest:
		return grpcInternal
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return grpcDeadlineExceeded
	case http.StatusRequestHeaderFieldsTooLarge:
		return grpcResourceExhausted
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable:
		return grpcUnavailable
	default:
		return grpcUnknown
	}
}

// writeGRPCError answers a gRPC call with the gRPC status standing for an
// HTTP error status. rec (under w) then records status, not the 200 on the
// wire.
func writeGRPCError(w http.ResponseWriter, rec *recorder, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(grpcCodeFor(status)))
	// grpc-message is percent-encoded (gRPC's PROTOCOL-HTTP2.md).
	h.Set(http.TrailerPrefix+"Grpc-Message", strings.ReplaceAll(url.PathEscape(msg), "%20", " "))
	w.WriteHeader(http.StatusOK)
	if rec.status == http.StatusOK {
		rec.status = status // not when an attempt being retried swallowed it
	}
}

// grpcTimeout parses a call's grpc-timeout header (gRPC's PROTOCOL-HTTP2.md:
// at most 8 digits and a unit, H M S m u n).
func grpcTimeout(r *http.Request) (time.Duration, bool) {
	v := r.Header.Get("Grpc-Timeout")
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
	if err != nil {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > uint64(math.MaxInt64/int64(unit)) {
		return 0, false // beyond what a Duration holds: no deadline worth keeping
	}
	return time.Duration(n) * unit, true
}
