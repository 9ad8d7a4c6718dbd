package proxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/router"
)

// Retries (HTTPRoute retry) run on the net/http paths only: the HTTP/1.1
// engine hands requests of routes with a retry policy to net/http, as it
// does mirrored ones. Each attempt is forwarded through an attemptWriter:
// when its status asks for a retry, and a retry may happen (attempts left,
// the backend's retry budget, time before the request's deadline), the
// status and body are swallowed and the request is sent again after the
// backoff, to another endpoint of the same backend when there is one;
// otherwise the response passes through to the client untouched. A body
// larger than Options.MirrorBodyLimit is not held for a replay, so such a
// request gets one attempt.

// maxBackoffFactor caps the doubling backoff at this many times the
// configured minimum.
const maxBackoffFactor = 10

// attemptWriter stands between one attempt's forwarding and the client.
type attemptWriter struct {
	http.ResponseWriter
	// retry decides, for a final status, whether the attempt is retried;
	// upstream says the status is the gateway's own answer to a failed
	// exchange (connection refused or reset, backend timeout).
	retry    func(code int, upstream bool) bool
	upstream bool
	decided  bool
	discard  bool
}

func (a *attemptWriter) WriteHeader(code int) {
	if a.decided {
		return
	}
	if code < 200 {
		if !a.discard {
			a.ResponseWriter.WriteHeader(code)
		}
		return
	}
	a.decided = true
	if a.retry(code, a.upstream) {
		a.discard = true
		clear(a.Header()) // nothing was sent: the next attempt starts clean
		return
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *attemptWriter) Write(p []byte) (int, error) {
	if !a.decided {
		a.WriteHeader(http.StatusOK)
	}
	if a.discard {
		return len(p), nil
	}
	return a.ResponseWriter.Write(p)
}

// Flush keeps the attempt's bytes back while they may still be discarded.
func (a *attemptWriter) Flush() {
	if a.discard || !a.decided {
		return
	}
	if f, ok := a.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController and the deadline lookup through.
func (a *attemptWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// markUpstreamFailed tells an attemptWriter under w that the status about
// to be written is the gateway's answer to a failed exchange.
func markUpstreamFailed(w http.ResponseWriter) {
	if a, ok := w.(*attemptWriter); ok {
		a.upstream = true
	}
}

// forwardRetrying forwards out with the route's retry policy.
func (s *Server) forwardRetrying(w http.ResponseWriter, r *http.Request, out *outbound, b *router.Backend, rreq *router.Request,
	ex *exchange, policy *ir.Retry, timeout time.Duration, st *filterState) {
	// The body is held for replays under the client body timeout; the
	// forwarder bounds every later wait itself.
	d := findDeadliner(w)
	if d != nil {
		_ = d.SetReadDeadline(time.Now().Add(s.opts.ClientBodyTimeout)) // unsupported: h2 bounds stream bodies itself
	}
	body, replayable := s.fwd.bufferBody(out, st)
	if d != nil {
		_ = d.SetReadDeadline(time.Time{})
	}
	attempts := 1
	if replayable {
		attempts += policy.Attempts
	}
	deadline, _ := out.ctx.Deadline()
	for i := 0; ; i++ {
		wait := backoff(policy.Backoff, i+1)
		reserved := false
		aw := &attemptWriter{ResponseWriter: w}
		aw.retry = func(code int, upstream bool) bool {
			if i+1 >= attempts || !upstream && !slices.Contains(policy.Codes, code) {
				return false
			}
			if !deadline.IsZero() && time.Until(deadline) <= wait || out.ctx.Err() != nil {
				return false // the request's own timeout answers instead
			}
			if !b.StartRetry() {
				s.metrics.retryOverflow.WithLabelValues(b.Name).Inc()
				return false
			}
			reserved = true
			return true
		}
		if replayable {
			out.body, out.ContentLength = replayBody(body), int64(len(body))
		}
		s.attempt(aw, r, out, b, st.fail.ep.Addr, timeout, st)
		if !aw.discard {
			if reserved {
				b.EndRetry()
			}
			return
		}
		s.metrics.retries.WithLabelValues(b.Name).Inc()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-out.ctx.Done():
			t.Stop()
			b.EndRetry()
			writeError(w, http.StatusGatewayTimeout, "request timed out during a retry backoff")
			return
		}
		b.EndRetry()
		next := b.Retry(b.Key(rreq), st.fail.ep)
		if next == nil {
			next = st.fail.ep // the only usable endpoint: try it again
		}
		s.moveAttempt(st, b, rreq, next, ex)
	}
}

// attempt forwards one attempt. A backend that fails mid-body aborts the
// client's response (http.ErrAbortHandler); on an attempt being discarded
// nothing reached the client yet, so the retry goes on instead.
func (s *Server) attempt(aw *attemptWriter, r *http.Request, o *outbound, b *router.Backend, addr string, timeout time.Duration, st *filterState) {
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) || !aw.discard {
				panic(v)
			}
		}
	}()
	s.fwd.forward(aw, r, o, b, addr, timeout, st)
}

// moveAttempt makes next the request's endpoint for the next attempt.
func (s *Server) moveAttempt(st *filterState, b *router.Backend, rreq *router.Request, next *lb.Endpoint, ex *exchange) {
	st.fail.end(ex)
	st.fail.begin(b, rreq, next, ex)
}

// backoff is the wait before retry n (1-based): the minimum doubled per
// retry, capped, plus up to half again of jitter so that clients retrying
// together spread out; never less than the minimum.
func backoff(minimum time.Duration, n int) time.Duration {
	d := minimum
	for i := 1; i < n && d < maxBackoffFactor*minimum; i++ {
		d *= 2
	}
	d = min(d, maxBackoffFactor*minimum)
	if d > 0 {
		d += rand.N(d/2 + 1)
	}
	return d
}

// replayBody is a fresh reader over a buffered body (http.NoBody for none).
func replayBody(b []byte) io.ReadCloser {
	if len(b) == 0 {
		return http.NoBody
	}
	return io.NopCloser(bytes.NewReader(b))
}
