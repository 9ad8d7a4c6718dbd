package proxy

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/router"
)

// handler is the http.Handler of one socket.
type handler struct {
	s     *Server
	sock  *socket
	plain bool // clear-text listener: Upgrade: h2c is possible
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.plain && isH2CUpgrade(r) && h.serveH2CUpgrade(w, r) {
		return
	}
	if !h.plain {
		setTLSState(r)
	}
	if r.ProtoMajor == 1 && h.sock.draining.Load() {
		// net/http closes the connection after this response (drain.go).
		w.Header().Set("Connection", "close")
	}
	h.serveProxied(w, r)
}

// serveProxied routes and forwards one request using the socket's current
// config, loaded once.
func (h *handler) serveProxied(w http.ResponseWriter, r *http.Request) {
	h.s.serve(w, r, h.sock.cfg.Load())
}

// exchange is what one request did, for metrics, the access log and
// traces.
type exchange struct {
	route    *router.Route
	upstream string
	// requestID is the X-Request-Id sent to the backend (requestid.go);
	// newID says the gateway made it, so the client's is replaced.
	requestID string
	newID     bool
	userAgent string
	proto     uint8 // protoIndex
	trace     traceCtx
	// up is what the last attempt sent to a backend got.
	up upstreamResult
	// client and local are the client connection's addresses, stream the
	// request's HTTP/2 stream on it, for the timing record
	// (reqtimings.go); zero when that is off.
	client, local netip.AddrPort
	stream        uint32
}

// statusClientClosed is recorded (never sent) when the client went away
// before a response; nginx's convention.
const statusClientClosed = 499

func (s *Server) serve(w http.ResponseWriter, r *http.Request, lc *listenerConfig) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, grpc: r.ProtoMajor == 2 && isGRPC(r)}
	var ex exchange
	s.startExchange(&ex, r, &rec.idBuf)
	// Deferred so that an aborted response (http.ErrAbortHandler) is still
	// counted and logged.
	defer func() {
		status := rec.status
		if status == 0 {
			status = statusClientClosed
			if r.Context().Err() == nil {
				status = http.StatusOK // net/http answers 200 for an empty handler
			}
		}
		path, _ := requestPath(r)
		s.record(lc, r.Method, r.Host, path, clientIP(r.RemoteAddr), &ex, status, rec.bytes, start)
	}()
	s.route(rec, r, lc, &ex)
}

// startExchange reads what telemetry needs from a request of net/http's
// path: protocol, user agent, request ID (made into idBuf) and trace
// context.
func (s *Server) startExchange(ex *exchange, r *http.Request, idBuf *[maxMadeIDLen]byte) {
	ex.proto = protoIndex(r.ProtoMajor, r.ProtoMinor)
	s.setRequestAddrs(ex, r)
	if ua := r.Header["User-Agent"]; len(ua) > 0 {
		ex.userAgent = ua[0]
	}
	if id, ok := clientRequestID(r.Header["X-Request-Id"]); ok {
		ex.requestID = id
	} else {
		ex.requestID, ex.newID = s.ids.next(idBuf), true
	}
	var tp string
	if v := r.Header["Traceparent"]; len(v) == 1 {
		tp = v[0] // several are invalid (W3C Trace Context 3.2)
	}
	s.startTrace(ex, tp)
}

// startTrace sets the request's trace context from its traceparent: the
// sampling decision when tracing is on, else only the client's trace ID
// for the access log.
func (s *Server) startTrace(ex *exchange, tp string) {
	switch {
	case s.tracer != nil:
		ex.trace = s.tracer.start(tp)
	case s.accessLog != nil && tp != "":
		ex.trace.traceID, ex.trace.valid = traceIDOf(tp)
	}
}

// protoNames are the access log's protocol values by protoIndex.
var protoNames = [...]string{"HTTP/1.0", "HTTP/1.1", "HTTP/2"}

// record counts one request in the route's metrics, the access log and its
// server span; both HTTP engines call it.
func (s *Server) record(lc *listenerConfig, method, host, path, client string, ex *exchange, status int, bytes int64, start time.Time) {
	end := time.Now()
	elapsed := end.Sub(start)
	rm := lc.noRoute
	routeName := ""
	if ex.route != nil {
		rm = s.routeMetricsFor(lc, ex.route)
		routeName = ex.route.Name
	}
	if pm := s.metrics.peer; pm != nil {
		pm.observe(rm, client, ex.upstream, method, lc.scheme, ex.proto, status, elapsed.Seconds(), bytes)
	} else {
		rm.observe(method, lc.scheme, ex.proto, status, elapsed.Seconds(), bytes)
	}
	s.recordTiming(lc, routeName, ex, status, start, end)
	if s.accessLog != nil {
		s.accessLog.write(start, &accessEntry{
			Gateway:        lc.gateway,
			Route:          routeName,
			Method:         method,
			Host:           host,
			Path:           path,
			Protocol:       protoNames[ex.proto],
			UserAgent:      ex.userAgent,
			RequestID:      ex.requestID,
			TraceID:        ex.trace.traceID,
			HasTrace:       ex.trace.valid,
			Status:         status,
			UpstreamStatus: ex.up.status,
			Error:          ex.up.reason,
			Bytes:          bytes,
			DurationMS:     float64(elapsed.Microseconds()) / 1000,
			Upstream:       ex.upstream,
			Client:         client,
		})
	}
	if ex.trace.sampled {
		// The HTTP/1.1 engine's strings view buffers the next request
		// reuses; the span outlives them, so it copies.
		tc := &ex.trace
		s.tracer.emit(&span{
			traceID: tc.traceID, id: tc.span, parent: tc.parent, kind: spanServer,
			start: start, end: end,
			method: strings.Clone(method), route: routeName, scheme: lc.scheme, proto: protoVersions[ex.proto],
			host: strings.Clone(host), target: strings.Clone(path), userAgent: strings.Clone(ex.userAgent),
			client: client, requestID: strings.Clone(ex.requestID), gateway: lc.gateway, status: status,
		})
	}
}

// route matches r, runs the filters and hands the request to a backend.
func (s *Server) route(w http.ResponseWriter, r *http.Request, lc *listenerConfig, ex *exchange) {
	if len(r.RequestURI) > h1.MaxRequestURI {
		refuse(w, r, http.StatusRequestURITooLong, "request URI too long")
		return
	}
	if headerFields(r) > s.opts.MaxHeaderFields {
		refuse(w, r, http.StatusRequestHeaderFieldsTooLarge, "too many header fields")
		return
	}
	received, query := requestPath(r)
	path, ok := s.routePath(r, received)
	if !ok {
		writeError(w, http.StatusBadRequest, msgBadPath)
		return
	}
	if r.TLS != nil && misdirected(lc.table, r.TLS.ServerName, r.Host) {
		writeError(w, http.StatusMisdirectedRequest, msgMisdirected)
		return
	}
	ip := clientIP(r.RemoteAddr)
	rreq := router.Request{
		Host:     r.Host,
		Path:     path,
		Method:   r.Method,
		RawQuery: query,
		Header:   router.HTTPHeader(r.Header),
		ClientIP: ip,
	}
	rt := lc.table.Match(&rreq)
	if rt == nil {
		writeError(w, http.StatusNotFound, "no route")
		return
	}
	ex.route = rt

	upgrade := upgradeType(r)
	newID := ""
	if ex.newID {
		newID = ex.requestID
	}
	out := s.fwd.takeOutbound()
	defer s.fwd.putOutbound(out)
	out.fromHTTP(r.Context(), r, lc.scheme, ip, upgrade, newID, path, received)
	out.deadline = callDeadline(w, r, rt, upgrade)
	st := filterState{scheme: lc.scheme, path: path, query: query, host: r.Host, trace: ex.trace, requestID: ex.requestID}
	defer ex.takeUpstream(&st)
	if a := s.runFilters(out, &rreq, rt.Filters, &st); a.status != 0 {
		writeFilterAnswer(w, &a, &st)
		return
	}
	b := rt.PickBackend(rand.Uint64())
	if b == nil {
		writeError(w, http.StatusInternalServerError, "route has no backend")
		return
	}
	if b.Invalid {
		writeError(w, http.StatusInternalServerError, "backend "+b.Name+" is invalid")
		return
	}
	if a := s.runFilters(out, &rreq, b.Filters, &st); a.status != 0 {
		writeFilterAnswer(w, &a, &st)
		return
	}
	st.backend = s.backendMetricsFor(lc, b)
	ep := b.Pick(&rreq)
	if ep == nil {
		st.up.reason = reasonNoEndpoints
		writeError(w, http.StatusServiceUnavailable, "no ready endpoints for backend "+b.Name)
		return
	}
	st.fail.begin(b, &rreq, ep, ex)
	defer st.fail.end(ex)
	if upgrade != "" {
		s.fwd.upgrade(w, r, out, b, ep.Addr, &st)
		return
	}
	if rt.Retry != nil {
		s.forwardRetrying(w, r, out, b, &rreq, ex, rt.Retry, rt.Timeouts.BackendRequest, &st)
		return
	}
	s.fwd.forward(w, r, out, b, ep.Addr, rt.Timeouts.BackendRequest, &st)
}

// callDeadline is when a request must be answered by: the route's request
// timeout or, for a gRPC call, its own grpc-timeout (past it the client
// has given up, so holding the backend only costs), whichever ends first;
// zero for neither, and for upgrades, which live long. The forwarders
// bound their waits by it, as the HTTP/1.1 engine does, rather than by a
// context with a timer of its own (context.WithTimeout over the stream's
// context was eight allocations per gRPC call).
func callDeadline(w http.ResponseWriter, r *http.Request, rt *router.Route, upgrade string) time.Time {
	var d time.Duration
	has := false
	if t := rt.Timeouts.Request; t > 0 && upgrade == "" {
		d, has = t, true
	}
	if rec, _ := w.(*recorder); rec != nil && rec.grpc {
		if t, ok := grpcTimeout(r); ok && (!has || t < d) {
			d, has = t, true
		}
	}
	if !has {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// requestPath returns the path as received (still escaped) and the raw
// query. HTTP/1.1 origin-form and HTTP/2 :path keep it in RequestURI;
// absolute-form and "*" go through the parsed URL.
func requestPath(r *http.Request) (path, query string) {
	uri := r.RequestURI
	if strings.HasPrefix(uri, "/") {
		path, query, _ = strings.Cut(uri, "?")
		return path, query
	}
	return r.URL.EscapedPath(), r.URL.RawQuery
}

// clientIP is the address of the peer without port.
func clientIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// headerFields counts r's field lines as the HTTP/1.1 engine does: every
// value (net/http keeps one per line) and Host.
func headerFields(r *http.Request) int {
	n := 0
	if r.Host != "" {
		n = 1
	}
	for _, vv := range r.Header {
		n += len(vv)
	}
	return n
}

// refuse answers a request RAUTA will not serve; over HTTP/1.1 its
// connection closes after the answer, as on the HTTP/1.1 engine.
func refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	writeError(w, code, msg)
}

// writeError answers with a short plain-text error.
func writeError(w http.ResponseWriter, code int, msg string) {
	if rec := recorderOf(w); rec != nil && rec.grpc {
		writeGRPCError(w, rec, code, msg)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n") // the client may be gone; nothing to do then
}
