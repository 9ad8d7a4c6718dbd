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
	"github.com/false-systems/rauta/internal/router"
)

// Retries (HTTPRoute retry). The HTTP/1.1 engine retries the requests
// whose whole body came with the head (h1retry.go); it hands the others
// to net/http, as it does mirrored ones, and HTTP/2 requests are served
// there anyway. Both decide through a retryGate: an attempt whose status
// is one of the policy's codes, or that got no response (connection
// refused or reset, backend timeout), is sent again when a retry may
// happen (retries left, the backend's retry budget, time before the
// request's deadline for the backoff), after the backoff, to another
// endpoint of the same backend when there is one; otherwise its response
// passes through to the client untouched. On net/http each attempt is
// forwarded through an attemptWriter, which swallows a retried attempt's
// status and body. A body larger than Options.MirrorBodyLimit is not held
// for a replay, so such a request gets one attempt.

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

// retryGate is a request's retry policy at work; both paths decide
// through one (the engine's in h1retry.go).
type retryGate struct {
	policy *ir.Retry
	b      *router.Backend
	m      *metrics
	// limit is how many retries the request may have (0 when its body
	// cannot be replayed); done how many it had.
	limit, done int
	// deadline is the request's own (its route's request timeout), zero
	// for none: no retry is made whose backoff would outlast it.
	deadline time.Time
	// wait is the backoff before the retry decided last.
	wait time.Duration
	// held: a place in b's retry budget is held, from the decision to
	// retry until the retry's attempt ends (Envoy counts a retry budget
	// the same way: retries in flight).
	held bool
}

func newRetryGate(policy *ir.Retry, b *router.Backend, m *metrics, replayable bool, deadline time.Time) retryGate {
	g := retryGate{policy: policy, b: b, m: m, deadline: deadline}
	if replayable {
		g.limit = policy.Attempts
	}
	return g
}

// again reports whether an attempt that ended with code is sent again;
// upstream says code is the gateway's own answer to a failed exchange
// (connection refused or reset, backend timeout), which is retried
// whatever the policy's codes (Gateway API: implementations must retry
// connection errors when a retry is configured). A yes counts the retry
// and holds a place in the backend's retry budget until the next call or
// release; the caller waits g.wait first.
func (g *retryGate) again(code int, upstream bool, now time.Time) bool {
	g.release()
	if g.done >= g.limit || !upstream && !slices.Contains(g.policy.Codes, code) {
		return false
	}
	g.wait = backoff(g.policy.Backoff, g.done+1)
	if !g.deadline.IsZero() && g.deadline.Sub(now) <= g.wait {
		return false // the request's own timeout answers instead
	}
	if !g.b.StartRetry() {
		g.m.retryOverflow.WithLabelValues(g.b.Name).Inc()
		return false
	}
	g.held = true
	g.done++
	g.m.retries.WithLabelValues(g.b.Name).Inc()
	return true
}

// release gives back the retry budget place, if one is held.
func (g *retryGate) release() {
	if g.held {
		g.held = false
		g.b.EndRetry()
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
	g := newRetryGate(policy, b, s.metrics, replayable, out.deadline)
	defer g.release()
	for {
		aw := &attemptWriter{ResponseWriter: w}
		aw.retry = func(code int, upstream bool) bool {
			return out.ctx.Err() == nil && g.again(code, upstream, time.Now())
		}
		if replayable {
			out.body, out.ContentLength = replayBody(body), int64(len(body))
		}
		s.attempt(aw, r, out, b, st.fail.ep.Addr, timeout, st)
		if !aw.discard {
			return
		}
		// The gate let no backoff run past the request's deadline, so
		// only the client's going away ends one early; it is answered
		// as writeUpstreamError answers a gone client: not at all.
		t := time.NewTimer(g.wait)
		select {
		case <-t.C:
		case <-out.ctx.Done():
			t.Stop()
			st.up.err, st.up.reason = upClient, "client went away during a retry backoff"
			return
		}
		moveAttempt(st, b, rreq, ex)
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

// moveAttempt makes another endpoint of b than the last attempt's the
// request's endpoint for the next attempt, or the same one when it is the
// only one usable.
func moveAttempt(st *filterState, b *router.Backend, rreq *router.Request, ex *exchange) {
	next := b.Retry(b.Key(rreq), st.fail.ep)
	if next == nil {
		next = st.fail.ep
	}
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
