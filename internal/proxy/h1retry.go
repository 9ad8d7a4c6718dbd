package proxy

import (
	"time"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/router"
)

// retryAttempt is the status forwardAttempt returns for an attempt its
// retryGate sends again: nothing of it reached the client.
const retryAttempt = -1

// forwardRetrying sends a request of a route with a retry policy
// (retry.go) on the engine's pooled path. ServeRequest hands the requests
// whose body did not all come with the head to net/http, so here the body
// is in the read buffer, and each retry sends the same bytes again: the
// head is rebuilt (a sampled request's traceparent names the new attempt)
// over the same body.
func (c *h1conn) forwardRetrying(b *router.Backend, rreq *router.Request, ex *exchange, rt *router.Route, start time.Time, st *filterState) (int, int64, h1.Next) {
	var deadline time.Time
	if t := rt.Timeouts.Request; t > 0 {
		deadline = start.Add(t)
	}
	g := newRetryGate(rt.Retry, b, c.s.metrics, true, deadline)
	defer g.release()
	bodyAt, bodyLen, fields := c.In.R, c.BodyLeft, len(c.fx.req.Fields)
	for {
		status, n, next := c.forward(b, st.fail.ep.Addr, attemptDeadline(rt.Timeouts, start, time.Now()), st, &g)
		if status != retryAttempt {
			return status, n, next
		}
		// The backoff is not cut short when the client goes: it is
		// bounded (ten times the policy's minimum at most), and the
		// client is checked before the next attempt.
		time.Sleep(g.wait)
		if c.clientGone() != nil {
			return statusClientClosed, 0, h1.Close
		}
		moveAttempt(st, b, rreq, ex)
		c.In.R, c.BodyLeft = bodyAt, bodyLen
		c.fx.req.Fields = c.fx.req.Fields[:fields]
	}
}
