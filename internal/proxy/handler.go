package proxy

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

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

// exchange is what one request did, for metrics and the access log.
type exchange struct {
	route    *router.Route
	upstream string
}

// statusClientClosed is recorded (never sent) when the client went away
// before a response; nginx's convention.
const statusClientClosed = 499

func (s *Server) serve(w http.ResponseWriter, r *http.Request, lc *listenerConfig) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, grpc: r.ProtoMajor == 2 && isGRPC(r)}
	var ex exchange
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

// record counts one request in the route's metrics and the access log; both
// HTTP engines call it.
func (s *Server) record(lc *listenerConfig, method, host, path, client string, ex *exchange, status int, bytes int64, start time.Time) {
	elapsed := time.Since(start)
	rm := lc.noRoute
	routeName := ""
	if ex.route != nil {
		rm = lc.routes[ex.route]
		routeName = ex.route.Name
	}
	rm.observe(method, status, elapsed.Seconds())
	if s.accessLog != nil {
		s.accessLog.write(start, &accessEntry{
			Gateway:    lc.gateway,
			Route:      routeName,
			Method:     method,
			Host:       host,
			Path:       path,
			Status:     status,
			Bytes:      bytes,
			DurationMS: float64(elapsed.Microseconds()) / 1000,
			Upstream:   ex.upstream,
			Client:     client,
		})
	}
}

// route matches r, runs the filters and hands the request to a backend.
func (s *Server) route(w http.ResponseWriter, r *http.Request, lc *listenerConfig, ex *exchange) {
	if len(r.RequestURI) > maxRequestURI {
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
		writeError(w, http.StatusMisdirectedRequest, "the Host is served by another listener than the TLS server name")
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
	ctx := r.Context()
	if t := rt.Timeouts.Request; t > 0 && upgrade == "" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	if rec, _ := w.(*recorder); rec != nil && rec.grpc {
		if t, ok := grpcTimeout(r); ok {
			// The call's own deadline bounds it here too: past it the
			// client has given up, so holding the backend only costs.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
	}
	out := newOutbound(ctx, r, lc.scheme, ip, upgrade)
	if path != received {
		setEscapedPath(out.URL, path) // forward what was matched
	}
	st := filterState{scheme: lc.scheme, path: path, query: query, host: r.Host}
	if s.runFilters(w, out, &rreq, rt.Filters, &st) {
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
	if s.runFilters(w, out, &rreq, b.Filters, &st) {
		return
	}
	ep := b.Pick(&rreq)
	if ep == nil {
		writeError(w, http.StatusServiceUnavailable, "no healthy endpoints for backend "+b.Name)
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
