package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/router"
)

// failover is the endpoint a request is using, and what moving the request
// to another endpoint takes when that one fails before any byte of a
// response: the endpoint is ejected (passive health, lb.Balancer.Eject),
// and a request that is safe to repeat is sent once to another endpoint,
// within the backend's retry budget. nginx does the same by default
// (proxy_next_upstream error timeout); Envoy with retry_on
// connect-failure,reset and a retry budget. Both engines use it.
//
// It holds no pointer into the request's stack frame (the router.Request,
// the exchange), so those stay off the heap.
type failover struct {
	b     *router.Backend
	key   uint64 // the request's balancer key
	ep    *lb.Endpoint
	moved bool // sent to a second endpoint already
	// budget says a place in the retry budget is held until end.
	budget bool
}

// begin makes ep the request's endpoint. Call end when the request is done.
func (f *failover) begin(b *router.Backend, rreq *router.Request, ep *lb.Endpoint, ex *exchange) {
	*f = failover{b: b, key: b.Key(rreq), ep: ep}
	ep.Acquire()
	ex.upstream = ep.Addr
}

// end releases the endpoint and the retry budget place, if any, and
// records the endpoint that served last.
func (f *failover) end(ex *exchange) {
	if f.ep == nil {
		return
	}
	ex.upstream = f.ep.Addr
	f.ep.Release()
	if f.budget {
		f.b.EndRetry()
	}
}

// next is called when an attempt on f.ep failed with err before any byte
// of a response. silent says a fresh connection failed before reading
// anything (a reused one may just have been closed while idle; the engines
// retry those on a new connection themselves). safe says the request may
// be sent again: idempotent, and its body still whole. It ejects the
// endpoint when err says it is down, and returns the address of another
// endpoint when the request moves there (each attempt's connect error is
// then counted here; the last one's by the caller).
func (f *failover) next(m *metrics, err error, silent, safe bool, deadline time.Time) (string, bool) {
	if f.ep == nil || (!deadline.IsZero() && !time.Now().Before(deadline)) || !endpointDown(err, silent) {
		return "", false
	}
	if f.b.Eject(f.ep) {
		m.ejections.WithLabelValues(f.b.Name).Inc()
	}
	if f.moved || !safe {
		return "", false
	}
	other := f.b.Retry(f.key, f.ep)
	if other == nil {
		return "", false
	}
	if !f.b.StartRetry() {
		m.retryOverflow.WithLabelValues(f.b.Name).Inc()
		return "", false
	}
	f.budget, f.moved = true, true
	m.connectErrors.WithLabelValues(f.b.Name).Inc()
	m.retries.WithLabelValues(f.b.Name).Inc()
	f.ep.Release()
	f.ep = other
	other.Acquire()
	return other.Addr, true
}

// endpointDown reports failures that say the endpoint, not the request,
// is the problem: a connect that failed (refused, unreachable, timed out),
// or a fresh connection reset or closed before any response byte.
func endpointDown(err error, silent bool) bool {
	if errors.As(err, new(clientError)) {
		return false // the client's body failed, not the backend
	}
	if errors.Is(err, context.Canceled) {
		// The request was given up (its client went away, or the data
		// plane is shutting down) while connecting: nothing is known
		// about the endpoint. Ejecting it here left the only endpoint of
		// a backend out for 30 s during a data plane's rollout.
		return false
	}
	return isDialError(err) || silent && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))
}

// isDialError reports a failure to connect: nothing was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// idempotent is RFC 9110 9.2.2's rule, which nginx's proxy_next_upstream
// follows: a method whose repetition has the effect of one request, or a
// request carrying an idempotency key.
func idempotent(method string, idempotencyKey bool) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return idempotencyKey
}
