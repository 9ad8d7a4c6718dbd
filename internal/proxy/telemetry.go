package proxy

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"
)

// Telemetry of the attempts a request sends to backends: each attempt (a
// route retry's too) is observed in http_client_request_duration_seconds
// and, when the request is sampled, gets a client span whose ID the
// backend receives in traceparent. Both engines call beginAttempt and
// endAttempt around an attempt.

// upstreamResult is what an attempt sent to a backend got.
type upstreamResult struct {
	status int // the backend's status, 0 when no response head came
	err    upstreamError
	// reason says why the attempt failed, for the access log; "" when
	// it did not.
	reason string
	bytes  int64 // response body bytes relayed
}

// reasonNoEndpoints is the access log's error of a request answered 503
// because its backend has no ready endpoint (none in its EndpointSlices;
// ejected ones are still picked, as Envoy's panic mode does).
const reasonNoEndpoints = "no ready endpoints"

// failed records an attempt that got no response: the client went away
// (clientGone, or err says so), a timeout passed, the connection failed,
// or the backend answered something malformed.
func (u *upstreamResult) failed(clientGone bool, err error, deadline time.Time) {
	u.status = 0
	u.err = upstreamErrorOf(clientGone, err, deadline)
	u.reason = u.err.String() + ": " + err.Error()
}

func upstreamErrorOf(clientGone bool, err error, deadline time.Time) upstreamError {
	switch {
	case clientGone, errors.Is(err, errClientGone):
		return upClient
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, errBackendTimeout), !deadline.IsZero() && !time.Now().Before(deadline):
		return upTimeout
	case isConnectError(err):
		return upConnect
	}
	return upOther
}

// takeUpstream copies what the request's last attempt got into ex.
func (ex *exchange) takeUpstream(st *filterState) { ex.up = st.up }

// beginAttempt starts an attempt: its clock, and its client span's ID when
// the request is sampled (zero otherwise).
func beginAttempt(st *filterState) (time.Time, [8]byte) {
	st.up = upstreamResult{}
	var sid [8]byte
	if st.trace.sampled {
		sid = newSpanID()
	}
	return time.Now(), sid
}

// endAttempt observes an attempt to backend b at addr.
func (f *forwarder) endAttempt(st *filterState, method, backend, addr string, start time.Time, sid [8]byte) {
	end := time.Now()
	st.backend.observe(method, st.up.status, st.up.err, end.Sub(start).Seconds(), st.up.bytes)
	if st.trace.sampled && f.tracer != nil {
		f.tracer.emit(&span{
			traceID: st.trace.traceID, id: sid, parent: st.trace.span, kind: spanClient,
			start: start, end: end, method: strings.Clone(method), status: st.up.status,
			errorType: st.up.err.String(), backend: backend, peer: addr, requestID: strings.Clone(st.requestID),
		})
	}
}
