package proxy

import (
	"net/http"

	"golang.org/x/net/http2"
)

// recorder remembers the status and counts the body bytes of a response for
// metrics and the access log. Unwrap lets http.ResponseController reach the
// engine's Flush and Hijack.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	// grpc: the request is a gRPC call, so the gateway's own errors are
	// gRPC statuses (grpcerror.go).
	grpc bool
	// idBuf holds the request ID the gateway makes for this request
	// (requestid.go): the recorder is allocated per request anyway, so
	// the ID's string views it instead of costing an allocation.
	idBuf [maxMadeIDLen]byte
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	} else if code == http.StatusSwitchingProtocols {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// streamResetter is an HTTP/2 stream that a handler can reset with a code
// of its choosing (internal/h2).
type streamResetter interface {
	ResetStream(code http2.ErrCode) bool
}

// ResetStream relays a backend's stream reset (see relayReset). Before a
// status was written it counts as the 502 an HTTP/1.1 client gets.
func (r *recorder) ResetStream(code http2.ErrCode) bool {
	rs, ok := r.ResponseWriter.(streamResetter)
	if !ok || !rs.ResetStream(code) {
		return false
	}
	if r.status == 0 {
		r.status = http.StatusBadGateway
	}
	return true
}

// recorderOf finds the recorder under w (an attempt of a retried request
// wraps it), nil when there is none.
func recorderOf(w http.ResponseWriter) *recorder {
	r, _ := underWriter[*recorder](w)
	return r
}
