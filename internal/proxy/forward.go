package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/h2client"
	"github.com/false-systems/rauta/internal/router"
	"github.com/false-systems/rauta/internal/upstream"
)

// forwarder sends requests to backends: one shared HTTP/1.1 pool, one h2c
// pool, pooled copy buffers, and the bounded mirror workers.
type forwarder struct {
	// pool serves the HTTP/1.1 engine; the Transports serve net/http's path.
	pool *upstream.Pool
	h1   *http.Transport
	h2c  *h2client.Transport
	// tls holds the Transports of backends reached over TLS.
	tls  *tlsTransports
	bufs sync.Pool
	// relayBufs holds the HTTP/1.1 engine's relay buffers (h1writer).
	relayBufs sync.Pool
	// connBufs holds the HTTP/1.1 engine's per-connection read and write
	// buffers, which an idle keep-alive connection gives back (internal/h1/buffers.go).
	connBufs sync.Pool
	// outbounds holds net/http's outbound requests, pooledStates
	// forwardPooled's per-request scratch, h1Exchanges the HTTP/1.1
	// engine's (h1exchange).
	outbounds    sync.Pool
	pooledStates sync.Pool
	h1Exchanges  sync.Pool
	metrics      *metrics
	// tracer receives the client spans of sampled requests; nil when
	// tracing is off.
	tracer *tracer
	logger *slog.Logger
	// opts holds the timeouts the forwarding paths apply.
	opts Options
	// dial connects to backends for the Transports and upgrades: one
	// place for the connect timeout and TCP keep-alive.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mirrorSem   chan struct{}
	mirrorLimit int64
	mirrors     sync.WaitGroup

	// upgraded tracks hijacked connections (WebSocket), which net/http's
	// Shutdown does not see, so close can end them.
	upMu     sync.Mutex
	upgraded map[net.Conn]struct{}
}

// copyBufferSize is the size of pooled body copy buffers.
const copyBufferSize = 32 << 10

func newForwarder(o Options, m *metrics, logger *slog.Logger) *forwarder {
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:       nil, // never route backend traffic through an environment proxy
		DialContext: rawDial(dialer.DialContext),
		// Go's default of 2 idle connections per host would make a busy
		// backend open and close a connection per request.
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The proxy passes Accept-Encoding and bodies through untouched.
		DisableCompression: true,
		ReadBufferSize:     copyBufferSize,
		WriteBufferSize:    copyBufferSize,
		// The engine's limit for HTTP/1.1 and TLS backends (x/net's HTTP/2
		// transport takes it as its header list size); the h2c client
		// below gets the same limit through its Options.
		MaxResponseHeaderBytes: int64(o.MaxResponseHeaderBytes),
	}
	// h2c backends (gRPC) get RAUTA's own HTTP/2 client (internal/h2client).
	h2c := h2client.New(h2client.Options{
		Dial:                   batchDialer{dial: rawDial(dialer.DialContext), max: o.H2CWriteBatch}.DialContext,
		DialTimeout:            o.DialTimeout,
		MaxResponseHeaderBytes: o.MaxResponseHeaderBytes,
		IdleTimeout:            90 * time.Second,
	})
	f := &forwarder{
		pool:        upstream.NewPool(o.DialTimeout),
		h1:          tr,
		h2c:         h2c,
		tls:         newTLSTransports(tr),
		metrics:     m,
		logger:      logger,
		opts:        o,
		dial:        dialer.DialContext,
		mirrorSem:   make(chan struct{}, o.MirrorConcurrency),
		mirrorLimit: o.MirrorBodyLimit,
		upgraded:    map[net.Conn]struct{}{},
	}
	f.bufs.New = func() any { b := make([]byte, copyBufferSize); return &b }
	f.relayBufs.New = h1.NewRelayBuffer
	f.connBufs.New = h1.NewConnBuffer
	f.outbounds.New = newOutboundState
	f.pooledStates.New = newPooledState
	f.h1Exchanges.New = newH1Exchange
	return f
}

// rawDial dials connections read and written with raw system calls
// (h1.Socket), for the Transport (TLS backends, whose crypto/tls then
// writes through it, as the listener's TLS connections do) and the h2c
// client: through net.Conn a loopback write enters the runtime as a
// blocking call, and sysmon hands the P to another thread meanwhile
// (docs/performance.md, round 27).
func rawDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return h1.NewSocket(c), nil
	}
}

func (f *forwarder) transport(b *router.Backend) http.RoundTripper {
	if b.TLS != nil {
		return f.tls.get(b)
	}
	if b.H2C {
		return f.h2c
	}
	return f.h1
}

// listsFields reports a backend whose client takes a request's fields as
// a list (internal/h2client: h2c backends), with no header map built.
func listsFields(b *router.Backend) bool { return b.TLS == nil && b.H2C }

// roundTrip sends out to b, its fields from o when b's client takes them
// as a list (out has no header map then).
func (f *forwarder) roundTrip(b *router.Backend, out *http.Request, o *outbound) (*http.Response, h1.Fields, error) {
	if listsFields(b) {
		return f.h2c.RoundTripFields(out, o.Fields)
	}
	resp, err := f.transport(b).RoundTrip(out)
	return resp, nil, err
}

// close waits up to timeout for mirrors, ends upgraded connections and
// drops idle backend connections. It returns how many upgraded
// connections it ended.
func (f *forwarder) close(timeout time.Duration) int {
	done := make(chan struct{})
	go func() { f.mirrors.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
	f.upMu.Lock()
	n := len(f.upgraded)
	for c := range f.upgraded {
		c.Close()
	}
	f.upMu.Unlock()
	f.pool.Close()
	f.h1.CloseIdleConnections()
	f.h2c.CloseIdleConnections()
	f.tls.close()
	return n
}

// upgradedConns returns the number of upgraded connections open.
func (f *forwarder) upgradedConns() int {
	f.upMu.Lock()
	defer f.upMu.Unlock()
	return len(f.upgraded)
}

// hopHeaders are removed in both directions (RFC 9110 7.6.1), along with
// the headers Connection names and every Proxy-* header.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop strips connection-specific headers. It runs before user
// filters, so a filter can never resurrect or be defeated by them.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	for k := range h {
		if strings.HasPrefix(k, "Proxy-") {
			delete(h, k)
		}
	}
}

// copyResponseHeader gives the client the backend's response headers, less
// the hop-by-hop ones, with the route's response header filters applied.
// One pass that skips hop-by-hop keys instead of deleting them from
// resp.Header first: this runs for every response.
func copyResponseHeader(w http.ResponseWriter, resp *http.Response, st *filterState) http.Header {
	h := w.Header()
	for k, vv := range resp.Header {
		if !isHopHeader(k) {
			h[k] = vv
		}
	}
	dropConnectionNamed(h, resp.Header["Connection"])
	for _, m := range st.respMods {
		m.Apply(h)
	}
	return h
}

// upgradeType is the protocol an HTTP/1.1 request asks to switch to
// (WebSocket), "" if none.
func upgradeType(r *http.Request) string {
	if r.ProtoMajor != 1 || !httpguts.HeaderValuesContainsToken(r.Header["Connection"], "Upgrade") {
		return ""
	}
	return r.Header.Get("Upgrade")
}

// forward sends out to addr and copies the response to w: over the
// engine's upstream pool where it can (pooled.go), else the Transport.
// It is one attempt (telemetry.go).
func (f *forwarder) forward(w http.ResponseWriter, r *http.Request, out *outbound, b *router.Backend, addr string, timeout time.Duration, st *filterState) {
	start, sid := beginAttempt(st)
	if st.trace.sampled {
		var tp [traceparentLen]byte
		out.Fields.Set("Traceparent", string(appendTraceparent(tp[:0], st.trace.traceID, sid)))
	}
	var before int64
	rec := recorderOf(w)
	if rec != nil {
		before = rec.bytes
	}
	defer func() {
		if rec != nil && st.up.status != 0 {
			st.up.bytes = rec.bytes - before
		}
		f.endAttempt(st, out.Method, b.Name, addr, start, sid)
	}()
	if pooledRequest(out, b) {
		f.forwardPooled(w, r, out, b, addr, timeout, st)
		return
	}
	f.forwardTransport(w, r, out, b, addr, timeout, st)
}

// forwardTransport forwards over the backend's http.Transport (TLS and
// h2c backends, requests the pool does not take).
func (f *forwarder) forwardTransport(w http.ResponseWriter, r *http.Request, o *outbound, b *router.Backend, addr string, timeout time.Duration, st *filterState) {
	deadline := attemptEnd(o.deadline, timeout)
	// The Transport has no timeout per wait: a watch bounds the waits on
	// the backend and all of them by the deadline, and the client's body
	// is read under ClientBodyTimeout.
	var body *clientBody
	ctx, watch := startBackendWatch(o.ctx, &f.opts, deadline, o.body != nil)
	defer watch.stop()
	var out *http.Request
	if listsFields(b) {
		out = o.bareRequest(ctx, backendScheme(b), addr)
	} else {
		out = o.httpRequest(ctx, backendScheme(b), addr)
	}
	if out.Body != nil {
		body = new(clientBody)
		body.reset(out.Body, w, f.opts.ClientBodyTimeout, deadline, watch)
		defer body.retire()
		out.Body = body
	}
	resp, head, err := f.roundTrip(b, out, o)
	for err != nil && body == nil {
		// A dial that failed sent nothing: the endpoint is ejected and a
		// request safe to repeat moves to another one, as on the pooled
		// path. Only dial errors count here (silent false): the Transport
		// does not say whether a reset connection was fresh.
		keyed := hasIdempotencyKey(&o.Fields)
		next, ok := st.fail.next(f.metrics, err, false, idempotent(out.Method, keyed) && ctx.Err() == nil, deadline)
		if !ok {
			break
		}
		out.URL.Host = next
		resp, head, err = f.roundTrip(b, out, o)
	}
	watch.startRelay()
	if err != nil {
		if body != nil && body.failedByTimeout() {
			st.up.err, st.up.reason = upClient, "client body timed out"
			writeBodyTimeout(w, r, body.until)
			return
		}
		if body != nil && body.failedByClient() && r.Context().Err() == nil {
			// A malformed body (a bad chunk size) after the head went to
			// the backend: the client's fault, answered as the engine and
			// the pooled path answer it.
			st.up.err, st.up.reason = upClient, "client body malformed"
			writeError(w, http.StatusBadRequest, "request body malformed")
			return
		}
		st.up.failed(r.Context().Err() != nil, err, deadline)
		f.writeUpstreamError(w, r, ctx, b, err, deadline)
		return
	}
	defer resp.Body.Close()
	st.up.status = resp.StatusCode

	if resp.Header == nil {
		writeFieldsHead(w, head, resp.StatusCode, st) // the h2c client's: a list
	} else {
		h := copyResponseHeader(w, resp, st)
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = nil // relay the backend's absence; never sniff one
		}
		w.WriteHeader(resp.StatusCode)
	}
	h := w.Header() // for the trailers
	if err := f.relayReader(w, watchedBody{resp.Body, watch}); err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		st.up.reason = "backend failed mid-body: " + err.Error()
		if relayReset(w, err) {
			return
		}
		// The backend failed mid-body. Abort the client connection (or
		// HTTP/2 stream) so it cannot mistake a truncated body for a
		// complete one.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		h[trailerKey(k)] = vv
	}
}

// trailerKey is http.TrailerPrefix+k, without building the string for
// gRPC's trailers, which end every call.
func trailerKey(k string) string {
	switch k {
	case "Grpc-Status":
		return http.TrailerPrefix + "Grpc-Status"
	case "Grpc-Message":
		return http.TrailerPrefix + "Grpc-Message"
	case "Grpc-Status-Details-Bin":
		return http.TrailerPrefix + "Grpc-Status-Details-Bin"
	}
	return http.TrailerPrefix + k
}

// relayReader relays a body the Transport decoded (relay.go) through a
// pooled buffer and the sink of a pooled forwarding state.
func (f *forwarder) relayReader(w http.ResponseWriter, body io.Reader) error {
	bp := f.bufs.Get().(*[]byte)
	defer f.bufs.Put(bp)
	ps := f.pooledStates.Get().(*pooledState)
	defer f.putPooledState(ps, true)
	ps.sink.cs.reset(w, f.opts.ClientSendTimeout)
	_, err := relayBody(&bodySource{framing: h1.BodyToEOF, r: body, buf: *bp}, &ps.sink)
	return err
}

// writeUpstreamError maps a failed round trip to a status: 504 when a
// timeout fired or the request's deadline (zero: none) passed, 502
// (counted as a connect error) when the backend refused or reset the
// connection, nothing when the client is gone.
func (f *forwarder) writeUpstreamError(w http.ResponseWriter, r *http.Request, ctx context.Context, b *router.Backend, err error, deadline time.Time) {
	cause := context.Cause(ctx)
	switch {
	case r.Context().Err() != nil:
		return
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(cause, context.DeadlineExceeded) ||
		errors.Is(cause, errBackendTimeout) || deadlinePassed(deadline):
		markUpstreamFailed(w)
		writeError(w, http.StatusGatewayTimeout, "backend timed out")
	case relayReset(w, err):
	default:
		if isConnectError(err) {
			f.metrics.connectErrors.WithLabelValues(b.Name).Inc()
		}
		markUpstreamFailed(w)
		writeError(w, http.StatusBadGateway, "backend unavailable")
	}
}

// deadlinePassed reports a deadline behind us though the watch's timer
// may not have fired yet: a gRPC backend enforcing the same grpc-timeout
// can reset the call first, and the client must still get the gateway's
// DEADLINE_EXCEEDED rather than whichever came first.
func deadlinePassed(deadline time.Time) bool {
	return !deadline.IsZero() && !time.Now().Before(deadline)
}

// relayReset resets the client's HTTP/2 stream with the code an HTTP/2
// backend reset the request's stream with, so the client sees what it
// would see without the proxy: a gRPC server cancels a call at its deadline
// with CANCEL, which a gRPC client reads as DEADLINE_EXCEEDED, where a 502
// would read as UNAVAILABLE. False when err is no stream reset or the client
// is not on a stream RAUTA can reset (HTTP/1.1 clients get the 502).
func relayReset(w http.ResponseWriter, err error) bool {
	var se http2.StreamError
	if !errors.As(err, &se) {
		return false
	}
	rs, ok := w.(streamResetter)
	return ok && rs.ResetStream(se.Code)
}

// isConnectError reports failures to reach the backend or keep the
// connection: refused or timed-out dials, resets, and connections closed
// before a response.
func isConnectError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE)
}
