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
	g := newRetryGate(rt.Retry, b, c.s.metrics, true, requestDeadline(rt.Timeouts, start))
	defer g.release()
	bodyAt, bodyLen, fields := c.In.R, c.BodyLeft, len(c.fx.req.Fields)
	for {
		status, n, next := c.forward(b, st.fail.ep.Addr, attemptDeadline(rt.Timeouts, start), st, &g)
		if status != retryAttempt {
			return status, n, next
		}
		if !c.backoffWait(g.wait) {
			return statusClientClosed, 0, h1.Close
		}
		moveAttempt(st, b, rreq, ex)
		c.In.R, c.BodyLeft = bodyAt, bodyLen
		c.fx.req.Fields = c.fx.req.Fields[:fields]
	}
}

// backoffWait waits d before a retry, looking at the client's socket at
// most a second apart (as the waits on a backend do, h1.Socket's read
// check): false means the client went away, or the connection was closed
// under it (a shutdown past its grace period), and no retry is sent.
func (c *h1conn) backoffWait(d time.Duration) bool {
	for {
		step := min(d, time.Second)
		time.Sleep(step)
		d -= step
		if c.clientGone() != nil {
			return false
		}
		if d <= 0 {
			return true
		}
	}
}
