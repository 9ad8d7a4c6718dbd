package proxy

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/router"
	"github.com/false-systems/rauta/internal/upstream"
)

// ServeRequest (h1.Handler) routes and forwards the request in c.Req,
// whose head was headLen bytes. It mirrors Server.route step for step; whatever the engine
// does not do itself (mirrors, h2c backends) it hands to net/http before
// anything is sent or read past the head.
func (c *h1conn) ServeRequest(headLen int) h1.Next {
	lc := c.sock.cfg.Load()
	start := time.Now()
	c.Now = start
	rq := &c.Req
	c.BodyLeft = rq.ContentLength
	received := rq.Path
	path, pathOK := c.s.routePath(nil, rq.Path)
	rq.Path = path // what is matched is what is forwarded
	// The request's state lives in the pooled exchange, not in this
	// frame and routeMatched's (1.6 KB between them): the serving
	// goroutine's stack then stays within 4 KiB, which an idle keep-alive
	// connection keeps, and a request touches less memory.
	c.takeExchange()
	defer c.putExchange()
	rreq, ex := &c.fx.rreq, &c.fx.ex
	rreq.Host, rreq.Path, rreq.Method, rreq.RawQuery = rq.Host, rq.Path, rq.Method, rq.Query
	rreq.Header, rreq.ClientIP = &rq.Fields, c.clientIP
	c.startExchange(ex)
	status, bytes := 0, int64(0)
	next := h1.Keep

	var rt *router.Route
	if pathOK {
		rt = lc.table.Match(rreq)
	}
	switch {
	case !pathOK:
		status = http.StatusBadRequest
		c.WriteError(status, msgBadPath)
	case misdirected(lc.table, c.serverName, rq.Host):
		status = http.StatusMisdirectedRequest
		c.WriteError(status, msgMisdirected)
	case rt == nil:
		status = http.StatusNotFound
		c.WriteError(status, "no route")
	case (hasMirror(rt.Filters) || rt.Retry != nil) && !c.bodyAtHand():
		// Mirrors and retries of a request whose body is not all at
		// hand run on the net/http path, which buffers it for the copy
		// and the replays (mirror.go, retry.go).
		c.unread(headLen)
		return h1.Handoff
	default:
		ex.route = rt
		status, bytes, next = c.routeMatched(lc, rt, rreq, ex, start)
		if next == h1.Handoff {
			c.unread(headLen)
			return h1.Handoff
		}
	}
	if status != 0 {
		c.s.record(lc, rq.Method, rq.Host, received, c.clientIP, ex, status, bytes, start)
	}
	if c.Out.Flush() != nil || c.Req.CloseAfter || !c.discardBody() {
		return h1.Close
	}
	return next
}

// startExchange reads what telemetry needs from the request in c.Req, as
// Server.startExchange does on net/http's path, in one pass over its
// fields; a request ID it makes is written into c.idBuf.
func (c *h1conn) startExchange(ex *exchange) {
	ex.proto = 1 // the engine serves HTTP/1.1 only
	ex.client, ex.local = c.client, c.local
	var id, tp string
	ids, tps := 0, 0
	for i := range c.Req.Fields {
		h := &c.Req.Fields[i]
		switch {
		case h.Is("User-Agent"):
			if ex.userAgent == "" {
				ex.userAgent = h.Value
			}
		case h.Is("X-Request-Id"):
			id = h.Value
			ids++
		case h.Is("Traceparent"):
			tp = h.Value
			tps++
		}
	}
	if ids == 1 && validRequestID(id) {
		ex.requestID = id
	} else {
		c.reqNo++
		c.idBuf = c.s.ids.appendID(c.idBuf[:0], c.connNo, c.reqNo)
		ex.requestID, ex.newID = unsafe.String(unsafe.SliceData(c.idBuf), len(c.idBuf)), true
	}
	if tps != 1 {
		tp = "" // several are invalid (W3C Trace Context 3.2)
	}
	c.s.startTrace(ex, tp)
}

// bodyAtHand reports that the whole request body is in the read buffer.
func (c *h1conn) bodyAtHand() bool { return c.BodyLeft <= int64(c.In.W-c.In.R) }

// unread puts the request head back for net/http.
func (c *h1conn) unread(headLen int) { c.In.R -= headLen }

// routeMatched runs the filters, picks a backend and endpoint and forwards.
// status 0 means nothing was answered (the client went away).
func (c *h1conn) routeMatched(lc *listenerConfig, rt *router.Route, rreq *router.Request, ex *exchange, start time.Time) (status int, bytes int64, next h1.Next) {
	st := &c.fx.st
	defer ex.takeUpstream(st)
	b, ep, status, next := c.pickAndFilter(lc, rt, rreq, ex, st)
	if ep == nil {
		return status, 0, next
	}
	st.fail.begin(b, rreq, ep, ex)
	defer st.fail.end(ex)
	if rt.Retry != nil {
		return c.forwardRetrying(b, rreq, ex, rt, start, st)
	}
	return c.forward(b, ep.Addr, attemptDeadline(rt.Timeouts, start), st, nil)
}

// pickAndFilter builds the outbound request, picks the backend, runs the
// route's and the backend's filters and picks the endpoint. A nil endpoint
// means the request was answered here (status) or goes to net/http
// (next). It is a function of its own so that its frame (filter answers,
// error messages) is gone while the request is forwarded, the deepest the
// serving goroutine's stack gets.
func (c *h1conn) pickAndFilter(lc *listenerConfig, rt *router.Route, rreq *router.Request, ex *exchange, st *filterState) (*router.Backend, *lb.Endpoint, int, h1.Next) {
	rq := &c.Req
	c.buildOutbound(lc.scheme, ex)
	st.scheme, st.path, st.query, st.host = lc.scheme, rq.Path, rq.Query, rq.Host
	st.trace, st.requestID = ex.trace, ex.requestID
	// The backend is picked before the route's filters run, so that a
	// request handed to net/http has had no mirror sent yet (net/http
	// runs the filters again).
	b := rt.PickBackend(rand.Uint64())
	if b != nil && !b.Invalid && (b.H2C || b.TLS != nil || hasMirror(b.Filters) && !c.bodyAtHand()) {
		// TLS and h2c backends: the engine speaks plain HTTP/1.1;
		// net/http's path has their Transports.
		return nil, nil, 0, h1.Handoff
	}
	if hasMirror(rt.Filters) {
		c.holdBodyForMirrors(st)
	}
	if a := c.s.runFilters(&c.fx.req, rreq, rt.Filters, st); a.status != 0 {
		c.writeFilterAnswer(&a, st)
		return nil, nil, a.status, h1.Keep
	}
	switch {
	case b == nil:
		c.WriteError(http.StatusInternalServerError, "route has no backend")
		return nil, nil, http.StatusInternalServerError, h1.Keep
	case b.Invalid:
		c.WriteError(http.StatusInternalServerError, "backend "+b.Name+" is invalid")
		return nil, nil, http.StatusInternalServerError, h1.Keep
	}
	if hasMirror(b.Filters) {
		c.holdBodyForMirrors(st)
	}
	if a := c.s.runFilters(&c.fx.req, rreq, b.Filters, st); a.status != 0 {
		c.writeFilterAnswer(&a, st)
		return nil, nil, a.status, h1.Keep
	}
	st.backend = c.s.backendMetricsFor(lc, b)
	ep := b.Pick(rreq)
	if ep == nil {
		st.up.reason = reasonNoEndpoints
		c.WriteError(http.StatusServiceUnavailable, "no ready endpoints for backend "+b.Name)
		return nil, nil, http.StatusServiceUnavailable, h1.Keep
	}
	return b, ep, 0, h1.Keep
}

// attemptDeadline bounds an attempt beginning now of a request begun at
// start: by the route's request timeout, and its backend request timeout
// from now; zero for neither. The clock is read only for the second: most
// routes have neither.
func attemptDeadline(to ir.Timeouts, start time.Time) time.Time {
	return attemptEnd(requestDeadline(to, start), to.BackendRequest)
}

// attemptEnd bounds an attempt beginning now by the request's deadline
// (zero: none) and a backend request timeout (0: none), whichever ends
// first. The clock is read only for the timeout: most routes have none.
func attemptEnd(deadline time.Time, timeout time.Duration) time.Time {
	if timeout > 0 {
		if d := time.Now().Add(timeout); deadline.IsZero() || d.Before(deadline) {
			return d
		}
	}
	return deadline
}

// requestDeadline is when the route's request timeout ends a request
// begun at start; zero for none.
func requestDeadline(to ir.Timeouts, start time.Time) time.Time {
	if to.Request > 0 {
		return start.Add(to.Request)
	}
	return time.Time{}
}

// h1exchange is the engine's forwarding state of one request: the
// outbound request and the backend exchange, with their buffers and field
// lists. A connection takes one from a shared pool when a request reaches
// a route and gives it back when the response is relayed, so an idle
// keep-alive connection holds none of it (BenchmarkIdleConnMemory).
type h1exchange struct {
	// req is the request sent to the backend, built from the client's
	// (buildOutbound) and edited by filters (Server.runFilters).
	req outbound
	// x is the backend exchange: req's head (and buffered body) in
	// x.Head, the response head in x.Resp, which views x.Scratch.
	x upstream.Exchange
	// rreq, ex and st are the request as routed, its telemetry and its
	// filter state (ServeRequest, routeMatched); st's response modifier
	// list keeps its capacity from request to request.
	rreq router.Request
	ex   exchange
	st   filterState
}

func newH1Exchange() any { return new(h1exchange) }

// takeExchange gives the connection forwarding state for its request.
func (c *h1conn) takeExchange() {
	fx := c.s.fwd.h1Exchanges.Get().(*h1exchange)
	fx.x.Check = c.goneFn
	c.fx = fx
}

// putExchange gives the forwarding state back, less what views this
// connection's buffers and what a large message grew.
func (c *h1conn) putExchange() {
	fx := c.fx
	c.fx = nil
	clear(fx.req.Fields)
	fx.req = outbound{Request: upstream.Request{Fields: fx.req.Fields[:0]}}
	x := &fx.x
	clear(x.Resp.Fields)
	x.Resp.Fields, x.Resp.Reason = x.Resp.Fields[:0], ""
	x.Check, x.Body = nil, nil
	if cap(x.Head) > h1.MaxKeptHead {
		x.Head = nil
	}
	if cap(x.Scratch) > h1.MaxKeptHead {
		x.Scratch = nil
	}
	mods := fx.st.respMods
	clear(mods)
	// Nothing of the request (body copy, trace, route) is kept.
	fx.rreq, fx.ex, fx.st = router.Request{}, exchange{}, filterState{}
	if cap(mods) <= maxKeptRespMods {
		fx.st.respMods = mods[:0]
	}
	c.s.fwd.h1Exchanges.Put(fx)
}

// maxKeptRespMods bounds the response modifier list a pooled exchange
// keeps: a route has a few; a longer list is left to the collector.
const maxKeptRespMods = 16

func hasMirror(fs []router.Filter) bool {
	for i := range fs {
		if fs[i].Kind == router.FilterMirror {
			return true
		}
	}
	return false
}

// buildOutbound makes c.fx.req from c.Req: its fields less the
// hop-by-hop ones (RFC 9110 7.6.1) and with X-Forwarded-* and a made
// X-Request-Id set, exactly as outbound.fromHTTP does for the net/http path. A
// sampled request's traceparent is left out here: forward adds the
// attempt's. Filters run after.
func (c *h1conn) buildOutbound(scheme string, ex *exchange) {
	rq := &c.Req
	out := c.fx.req.Fields[:0]
	conn := rq.ConnNames
	xff, wantTrailers := "", false
	for _, h := range rq.Fields {
		switch {
		case h.Is("Te"):
			wantTrailers = wantTrailers || h1.HasToken(h.Value, "trailers")
			continue
		case h1.IsHopField(h.Name) || (conn && h1.NamedByConnection(rq.Fields, h.Name)):
			continue
		case h.Is("X-Forwarded-For"):
			if xff == "" {
				xff = h.Value
			} else {
				xff += ", " + h.Value
			}
			continue
		case h.Is("X-Forwarded-Proto"), h.Is("X-Forwarded-Host"):
			continue
		case ex.newID && h.Is("X-Request-Id"), ex.trace.sampled && h.Is("Traceparent"):
			continue
		}
		out = append(out, h)
	}
	if wantTrailers {
		out = append(out, h1.Field{Name: "Te", Value: "trailers"}) // gRPC needs it end to end
	}
	ip := c.clientIP
	if xff != "" {
		ip = xff + ", " + ip
	}
	out = append(out,
		h1.Field{Name: "X-Forwarded-For", Value: ip},
		h1.Field{Name: "X-Forwarded-Proto", Value: scheme},
		h1.Field{Name: "X-Forwarded-Host", Value: rq.Host})
	if ex.newID {
		out = append(out, h1.Field{Name: "X-Request-Id", Value: ex.requestID})
	}
	c.fx.req = outbound{Request: upstream.Request{
		Method: rq.Method, Path: rq.Path, Query: rq.Query, ForceQuery: rq.Query == "" && strings.HasSuffix(rq.URI, "?"),
		Host: rq.Host, Fields: out, ContentLength: rq.ContentLength,
	}}
}

// writeFilterAnswer writes the engine's response of a filter's answer:
// the response header modifiers met so far, then the answer's headers,
// and no body.
func (c *h1conn) writeFilterAnswer(a *filterAnswer, st *filterState) {
	c.outResp = c.outResp[:0]
	for _, m := range st.respMods {
		m.ApplyTo(&c.outResp)
	}
	a.set(&c.outResp)
	c.WriteStatusLine(a.status, "")
	for _, h := range c.outResp {
		c.WriteField(h.Name, h.Value)
	}
	c.Out.Buf = append(c.Out.Buf, "Content-Length: 0\r\n"...)
	c.EndHead(false)
}

// writeRequest puts the outbound request head, and as much of the body as
// is already buffered, in the exchange's Head. It returns the body bytes
// still to be read from the client.
func (c *h1conn) writeRequest() int64 {
	b := c.fx.req.AppendHead(c.fx.x.Head[:0])
	n := min(c.BodyLeft, int64(c.In.W-c.In.R))
	b = append(b, c.In.Buf[c.In.R:c.In.R+int(n)]...)
	c.In.R += int(n)
	c.BodyLeft -= n
	c.fx.x.Head = b
	return c.BodyLeft
}

// maxDiscard is the most request body read and dropped to keep a
// connection whose request was answered without it (net/http's limit).
const maxDiscard = 256 << 10

// discardBody reads what is left of the request body, so the next request
// starts where it should. false means the connection must close instead.
func (c *h1conn) discardBody() bool {
	if c.BodyLeft == 0 {
		return true
	}
	if c.BodyLeft > maxDiscard || c.SetReadDeadline(time.Now().Add(c.s.opts.ReadHeaderTimeout)) != nil {
		return false
	}
	for c.BodyLeft > 0 {
		if c.In.R == c.In.W {
			if c.In.Fill(len(c.In.Buf)) != nil {
				return false
			}
		}
		k := min(c.BodyLeft, int64(c.In.W-c.In.R))
		c.In.R += int(k)
		c.BodyLeft -= k
	}
	return true
}

// forward is one attempt (telemetry.go): a sampled request's backend gets
// a traceparent naming the attempt's client span. g, when not nil, is the
// route's retry policy: an attempt it sends again returns retryAttempt.
func (c *h1conn) forward(b *router.Backend, addr string, deadline time.Time, st *filterState, g *retryGate) (int, int64, h1.Next) {
	start, sid := beginAttempt(st)
	if st.trace.sampled {
		c.tpBuf = appendTraceparent(c.tpBuf[:0], st.trace.traceID, sid)
		c.fx.req.Fields = append(c.fx.req.Fields, h1.Field{Name: "Traceparent", Value: unsafe.String(unsafe.SliceData(c.tpBuf), len(c.tpBuf))})
	}
	status, n, next := c.forwardAttempt(b, addr, deadline, st, g)
	if st.fail.ep != nil {
		addr = st.fail.ep.Addr // the endpoint that served last
	}
	c.s.fwd.endAttempt(st, c.Req.Method, b.Name, addr, start, sid)
	return status, n, next
}

// forwardAttempt sends the request to addr and relays the response, over
// one upstream.Exchange: it bounds the waits on the backend, runs the
// client hang-up check while they last, and retries a request safe to
// repeat once on a new connection when a reused one turns out closed.
func (c *h1conn) forwardAttempt(b *router.Backend, addr string, deadline time.Time, st *filterState, g *retryGate) (int, int64, h1.Next) {
	rq := &c.Req
	x := &c.fx.x
	remaining := c.writeRequest()
	keyed := hasIdempotencyKey(&rq.Fields)
	x.HeadRequest = rq.Method == http.MethodHead
	x.Replayable = replayable(rq.Method, rq.ContentLength != 0, keyed)
	x.ResponseTimeout, x.IdleTimeout, x.Deadline = c.s.opts.BackendResponseTimeout, c.s.opts.BackendIdleTimeout, deadline
	x.MaxResponseHead = c.s.opts.MaxResponseHeaderBytes
	x.Body = nil
	if remaining > 0 {
		x.Body = (*h1body)(c)
	}
	for {
		err := x.Do(c.s.fwd.pool, addr, c.Now)
		if err == nil {
			break
		}
		if errors.As(err, new(clientError)) {
			st.up.failed(true, err, deadline)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return c.bodyTimedOut(deadline)
			}
			return statusClientClosed, 0, h1.Close
		}
		// The body is whole while none of it was read past what Head holds.
		safe := c.BodyLeft == remaining && idempotent(rq.Method, keyed)
		if next, ok := st.fail.next(c.s.metrics, err, x.Silent(), safe, deadline); ok {
			addr = next
			continue
		}
		st.up.failed(false, err, deadline)
		if g != nil && g.again(0, true, time.Now()) {
			if isConnectError(err) {
				c.s.metrics.connectErrors.WithLabelValues(b.Name).Inc() // as upstreamFailed would
			}
			return retryAttempt, 0, h1.Keep
		}
		return c.upstreamFailed(b, deadline, err)
	}
	if x.Early {
		// The rest of the body stays unread: this response is the
		// connection's last.
		c.Req.CloseAfter = true
	}
	st.up.status = x.Resp.Status
	if g != nil && g.again(x.Resp.Status, false, time.Now()) {
		// Nothing of this response reaches the client; its connection
		// is closed rather than drained (retries are the rare case).
		x.Finish(c.s.fwd.pool, false, c.Now)
		return retryAttempt, 0, h1.Keep
	}
	status, n, next := c.relayResponse(deadline, st)
	st.up.bytes = n
	if next == h1.Close {
		st.up.reason = "backend failed mid-body"
	}
	return status, n, next
}

// bodyTimedOut answers a request whose body stalled past
// ClientBodyTimeout with 408, or 504 when the route's deadline cut it (the
// net/http paths' rule, bodyTimeoutStatus), and ends the connection: the
// rest of the body will not be read.
func (c *h1conn) bodyTimedOut(deadline time.Time) (int, int64, h1.Next) {
	c.Req.CloseAfter = true
	code, msg := bodyTimeoutStatus(deadline)
	c.WriteError(code, msg)
	return code, 0, h1.Close
}

// clientError is a failure on the client's side of an exchange: its body
// could not be read, or it went away.
type clientError = upstream.ClientError

// h1body is the rest of a Content-Length request body (Exchange.Body),
// streamed from the client to the backend through the client's read
// buffer, each wait for the client bounded by ClientBodyTimeout (and the
// exchange's deadline).
type h1body h1conn

func (b *h1body) WriteTo(w io.Writer) (int64, error) {
	c := (*h1conn)(b)
	c.BoundBodyReads(c.fx.x.Deadline)
	defer c.UnboundReads()
	var relay *[]byte
	var own []byte
	defer func() {
		if relay != nil {
			c.returnBodyBuffer(relay, own)
		}
	}()
	sent := int64(0)
	for c.BodyLeft > 0 {
		if c.In.R == c.In.W {
			if relay == nil && c.BodyLeft > int64(len(c.In.Buf)) {
				relay, own = c.borrowBodyBuffer()
			}
			if relay != nil {
				// Never past the body: what follows it is the next
				// request's, for the connection's own buffer.
				c.In.Buf = (*relay)[:min(int64(cap(*relay)), c.BodyLeft)]
			}
			// FillAfter, not Fill: before it waits for more of the body
			// it acknowledges what came, so a client that holds its last
			// short piece for our ACK (Nagle) does not wait for the
			// delayed-ACK timer (docs/performance.md, round 19).
			if err := c.In.FillAfter(len(c.In.Buf), noFlush); err != nil {
				return sent, err
			}
		}
		k := min(c.BodyLeft, int64(c.In.W-c.In.R))
		if _, err := w.Write(c.In.Buf[c.In.R : c.In.R+int(k)]); err != nil {
			return sent, err
		}
		c.In.R += int(k)
		c.BodyLeft -= k
		sent += k
	}
	return sent, nil
}

// borrowBodyBuffer makes a relay buffer (RelayBufferSize) the connection's
// read buffer for the rest of a body larger than its own, so the body
// moves in reads and writes of up to 68 KiB, not 4 KiB; it returns the
// relay buffer and the own one. Nothing is unread when it is called.
func (c *h1conn) borrowBodyBuffer() (relay *[]byte, own []byte) {
	relay, own = c.Out.Pool.Get().(*[]byte), c.In.Buf
	c.In.Buf, c.In.R, c.In.W = (*relay)[:cap(*relay)], 0, 0
	return relay, own
}

// returnBodyBuffer gives the relay buffer back and the connection its own
// read buffer. Body bytes read and not sent (the backend failed) count as
// consumed: the client sent them, and no later read may wait for them.
func (c *h1conn) returnBodyBuffer(relay *[]byte, own []byte) {
	c.BodyLeft -= int64(c.In.W - c.In.R)
	c.Out.Pool.Put(relay)
	c.In.Buf, c.In.R, c.In.W = own, 0, 0
}

// noFlush is FillAfter's flush for a relay that holds nothing back.
func noFlush() error { return nil }

// replayable is net/http's rule for retrying on a new connection: no body,
// and a method that is safe to repeat or an idempotency key.
func replayable(method string, hasBody, idempotencyKey bool) bool {
	if hasBody {
		return false
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return idempotencyKey
}

// hasIdempotencyKey reports the fields net/http's Transport takes as
// permission to retry any method.
func hasIdempotencyKey(f *h1.Fields) bool {
	_, ok1 := f.Lookup("Idempotency-Key")
	_, ok2 := f.Lookup("X-Idempotency-Key")
	return ok1 || ok2
}

// upstreamFailed answers a request no response came for: 504 when the
// deadline passed, 502 otherwise, counting connection failures.
func (c *h1conn) upstreamFailed(b *router.Backend, deadline time.Time, err error) (int, int64, h1.Next) {
	if errors.Is(err, os.ErrDeadlineExceeded) || (!deadline.IsZero() && !time.Now().Before(deadline)) {
		c.WriteError(http.StatusGatewayTimeout, "backend timed out")
		return http.StatusGatewayTimeout, 0, h1.Keep
	}
	if isConnectError(err) {
		c.s.metrics.connectErrors.WithLabelValues(b.Name).Inc()
	}
	c.WriteError(http.StatusBadGateway, "backend unavailable")
	return http.StatusBadGateway, 0, h1.Keep
}

// relayResponse writes the exchange's response head and relays the body,
// then ends the exchange (its connection pooled if it can serve again).
func (c *h1conn) relayResponse(deadline time.Time, st *filterState) (int, int64, h1.Next) {
	rs := &c.fx.x.Resp
	out := c.outResp[:0]
	conn := rs.ConnNames
	framed := rs.Framing != h1.BodyNone
	for _, h := range rs.Fields {
		if h1.IsHopField(h.Name) || (conn && h1.NamedByConnection(rs.Fields, h.Name)) ||
			(framed && h.Is("Content-Length")) {
			continue
		}
		out = append(out, h)
	}
	c.outResp = out
	for _, m := range st.respMods {
		m.ApplyTo(&c.outResp)
	}
	c.WriteStatusLine(rs.Status, rs.Reason)
	hasDate := rs.HasDate
	mods := len(st.respMods) > 0
	for _, h := range c.outResp {
		if mods && framed && (h.Is("Content-Length") || h.Is("Transfer-Encoding")) {
			continue // a filter cannot change the framing the engine relays
		}
		c.WriteField(h.Name, h.Value)
	}
	if mods {
		_, hasDate = c.outResp.Lookup("Date")
	}
	switch rs.Framing {
	case h1.BodyLength:
		c.Out.Buf = append(c.Out.Buf, "Content-Length: "...)
		c.Out.Buf = strconv.AppendInt(c.Out.Buf, rs.ContentLength, 10)
		c.Out.Buf = append(c.Out.Buf, "\r\n"...)
	case h1.BodyChunked, h1.BodyToEOF:
		c.Out.Buf = append(c.Out.Buf, "Transfer-Encoding: chunked\r\n"...)
	}
	c.EndHead(hasDate)

	c.fx.x.Relay()
	n, err := relayBody(&bodySource{uc: c.fx.x.Conn, framing: rs.Framing, length: rs.ContentLength}, (*h1sink)(c))
	c.fx.x.Finish(c.s.fwd.pool, err == nil, c.Now)
	if err != nil {
		// A truncated body: close both ends so the client cannot take it
		// for a complete one.
		return rs.Status, n, h1.Close
	}
	return rs.Status, n, h1.Keep
}
