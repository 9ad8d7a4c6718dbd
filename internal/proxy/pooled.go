package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/router"
	"github.com/false-systems/rauta/internal/upstream"
)

// The net/http path (HTTPS, HTTP/2, and what the HTTP/1.1 engine hands to
// net/http) reaches HTTP/1.1 backends over the engine's upstream pool and
// parser instead of http.Transport. The Transport costs two goroutines
// (its read and write loops) and about 40 allocations per request; here
// the handler's goroutine writes the request and reads the response
// itself, as the engine does. The Transport still serves what this path
// leaves alone: h2c backends, request bodies of unknown length (chunked,
// HTTP/2 streams without content-length), request trailers, Expect, and
// requests whose host or fields it would refuse (it answers those with its
// own error, as before).

// pooledRequest says whether forwardPooled can send out.
func pooledRequest(out *http.Request, b *router.Backend) bool {
	if b.H2C || b.TLS != nil || out.Method == http.MethodConnect || out.ContentLength < 0 || len(out.TransferEncoding) > 0 || len(out.Trailer) > 0 {
		return false
	}
	if _, ok := out.Header["Expect"]; ok {
		return false
	}
	if !httpguts.ValidHostHeader(outboundHost(out)) || !validRequestTarget(out.URL.RequestURI()) {
		return false
	}
	for k, vv := range out.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// validRequestTarget rejects a target that would break the request line.
func validRequestTarget(t string) bool {
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return t != ""
}

func outboundHost(out *http.Request) string {
	if out.Host != "" {
		return out.Host
	}
	return out.URL.Host
}

// pooledState is the per-request scratch of forwardPooled, pooled so the
// request head and field lists are not allocated per request.
type pooledState struct {
	head []byte
	keys []string
	resp h1.ResponseHead
	// body reads the client's request body, send writes the response.
	body clientBody
	send clientSend

	// The request's watch, one context.AfterFunc for its whole exchange
	// (two were about eight allocations per request): when the request's
	// context ends, watch interrupts cur, the backend connection in use.
	cur   atomic.Pointer[upstream.Conn]
	ended atomic.Bool
	watch func() // interrupt, bound once per pooledState
}

func newPooledState() any {
	ps := new(pooledState)
	ps.watch = ps.interrupt
	return ps
}

// interrupt runs when the request's context ends.
func (ps *pooledState) interrupt() {
	ps.ended.Store(true)
	if uc := ps.cur.Load(); uc != nil {
		uc.Interrupt()
	}
}

// use makes uc the connection the watch interrupts, and interrupts it at
// once if the context has ended already. Either this or interrupt sees the
// other's store, so uc cannot miss the interrupt.
func (ps *pooledState) use(uc *upstream.Conn) {
	ps.cur.Store(uc)
	if ps.ended.Load() {
		uc.Interrupt()
	}
}

// forwardPooled sends out to addr over a pooled connection and copies the
// response to w, with forward's statuses and semantics: 504 when a timeout
// passes before the response head, 502 when the backend fails or answers
// something malformed, an aborted response when it fails mid-body, one
// retry on a new connection when a reused one turns out closed and the
// request is safe to repeat.
func (f *forwarder) forwardPooled(w http.ResponseWriter, r, out *http.Request, b *router.Backend, addr string, timeout time.Duration, st *filterState) {
	ctx := out.Context()
	now := time.Now()
	deadline, _ := ctx.Deadline()
	if timeout > 0 {
		if d := now.Add(timeout); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	ps := f.pooledStates.Get().(*pooledState)
	var in io.Reader
	if out.Body != nil && out.ContentLength > 0 {
		// Each wait for more of the body is bounded, and all of them by
		// the deadline: a route's timeout covers the body too.
		ps.body.reset(out.Body, w, f.opts.ClientBodyTimeout, deadline, nil)
		in = &ps.body
	}
	body, err := writePooledHead(ps, out, in)
	if err != nil {
		timedOut := ps.body.timedOut
		f.putPooledState(ps, true)
		if timedOut {
			st.up.err, st.up.reason = upClient, "client body timed out"
			writeBodyTimeout(w, r, deadline)
			return
		}
		st.up.failed(r.Context().Err() != nil, err, deadline)
		f.pooledFailed(w, r, ctx, b, deadline, err)
		return
	}
	stop := context.AfterFunc(ctx, ps.watch)
	var uc *upstream.Conn
	for attempt := 0; ; attempt++ {
		var reused bool
		uc, reused, err = f.pool.Get(addr, deadline, now)
		if err == nil {
			err = f.pooledExchange(ctx, uc, ps, out, body, deadline)
		}
		if err == nil {
			break
		}
		if uc != nil {
			uc.Sock.Close()
		}
		keyed := len(out.Header["Idempotency-Key"]) > 0 || len(out.Header["X-Idempotency-Key"]) > 0
		if retryOnNewConn(attempt, reused, uc, replayable(out.Method, out.ContentLength != 0, keyed), err) {
			continue
		}
		// A streamed body is whole only while nothing was sent.
		safe := idempotent(out.Method, keyed) && (body == nil || uc == nil) && ctx.Err() == nil
		if next, ok := st.fail.next(f.metrics, err, uc == nil || (!reused && uc.W == 0), safe, deadline); ok {
			addr, attempt = next, -1
			continue
		}
		if ps.body.timedOut {
			f.putPooledState(ps, stop())
			st.up.err, st.up.reason = upClient, "client body timed out"
			writeBodyTimeout(w, r, deadline)
			return
		}
		f.putPooledState(ps, stop())
		st.up.failed(r.Context().Err() != nil, err, deadline)
		f.pooledFailed(w, r, ctx, b, deadline, err)
		return
	}
	st.up.status = ps.resp.Status
	// The exchange ended with the response head read; the body follows,
	// each wait on the backend bounded by BackendIdleTimeout.
	uc.BoundRelay(f.opts.BackendIdleTimeout, deadline)
	ps.send.reset(w, f.opts.ClientSendTimeout)
	keep, err := f.relayPooled(&ps.send, uc, &ps.resp, st)
	quiet := stop() // false: the watch ran, uc may be interrupted
	f.putPooledState(ps, quiet)
	if !quiet || err != nil || !keep {
		uc.Sock.Close()
	} else {
		f.pool.Put(uc, time.Now())
	}
	if err != nil {
		st.up.reason = "backend failed mid-body: " + err.Error()
		if r.Context().Err() != nil {
			return // the client went away
		}
		// The backend failed mid-body: abort the client connection (or
		// HTTP/2 stream) so it cannot take a truncated body for a whole one.
		panic(http.ErrAbortHandler)
	}
}

// putPooledState returns ps to the pool, less a buffer a large body grew.
// quiet is false when the request's watch has started: it may still be
// running, so ps is left to the collector rather than reused.
func (f *forwarder) putPooledState(ps *pooledState, quiet bool) {
	if !quiet {
		return
	}
	ps.cur.Store(nil)
	ps.ended.Store(false)
	ps.body, ps.send = clientBody{}, clientSend{}
	if cap(ps.head) > h1.MaxKeptHead {
		ps.head = nil
	}
	// The fields view the last response's head: let it go.
	clear(ps.resp.Fields)
	ps.resp.Fields, ps.resp.Reason = ps.resp.Fields[:0], ""
	f.pooledStates.Put(ps)
}

// writePooledHead puts out's request head in ps.head, with a small body
// read from in appended so head and body leave in one write. It returns
// the body still to be streamed (nil when none is left).
func writePooledHead(ps *pooledState, out *http.Request, in io.Reader) (io.Reader, error) {
	b := ps.head[:0]
	b = append(b, out.Method...)
	b = append(b, ' ')
	b = append(b, out.URL.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, outboundHost(out)...)
	b = append(b, "\r\n"...)
	ps.keys = ps.keys[:0]
	for k := range out.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // written from out's fields, as the Transport does
		}
		ps.keys = append(ps.keys, k)
	}
	slices.Sort(ps.keys) // a stable order, as the Transport writes
	for _, k := range ps.keys {
		for _, v := range out.Header[k] {
			if k == "User-Agent" && v == "" {
				continue // an empty User-Agent means none
			}
			b = h1.AppendField(b, k, v)
		}
	}
	n := out.ContentLength
	if n > 0 || out.Method == http.MethodPost || out.Method == http.MethodPut || out.Method == http.MethodPatch {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	var rest io.Reader
	if n > 0 {
		if n <= maxInlineBody {
			k := len(b)
			b = slices.Grow(b, int(n))[:k+int(n)]
			if _, err := io.ReadFull(in, b[k:]); err != nil {
				ps.head = b[:0]
				return nil, clientError{err}
			}
		} else {
			rest = io.LimitReader(in, n)
		}
	}
	ps.head = b
	return rest, nil
}

// maxInlineBody is the largest request body sent in the head's write.
const maxInlineBody = 16 << 10

// pooledExchange writes the request and reads the final response head into
// ps.resp. A backend that takes longer than deadline, or a client that goes
// away, ends it.
func (f *forwarder) pooledExchange(ctx context.Context, uc *upstream.Conn, ps *pooledState, out *http.Request, body io.Reader, deadline time.Time) error {
	uc.Reset()
	uc.BoundExchange(f.opts.BackendResponseTimeout, f.opts.BackendIdleTimeout, deadline, time.Now(), nil)
	ps.use(uc)
	if _, err := uc.Sock.Write(ps.head); err != nil {
		return err
	}
	// A fresh scratch per request: the field strings view it and go into
	// the ResponseWriter's header map, which net/http's HTTP/2 server
	// reads after the handler has moved on.
	var scratch []byte
	isHead := out.Method == http.MethodHead
	if body != nil {
		if err := f.copyRequestBody(uc, body); err != nil {
			if errors.As(err, new(clientError)) || !uc.EarlyAnswer(isHead, &scratch, &ps.resp) {
				return err
			}
			return nil
		}
	}
	err := uc.ReadFinalHead(isHead, &scratch, &ps.resp)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// copyRequestBody streams a large request body to the backend.
func (f *forwarder) copyRequestBody(uc *upstream.Conn, body io.Reader) error {
	bp := f.bufs.Get().(*[]byte)
	defer f.bufs.Put(bp)
	for {
		n, rerr := body.Read(*bp)
		if n > 0 {
			if _, err := uc.Sock.Write((*bp)[:n]); err != nil {
				return err
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			return clientError{rerr}
		}
	}
}

// pooledFailed answers a request no response head came for, as
// writeUpstreamError does for the Transport; a request whose own body
// failed gets 400 if its client is still there.
func (f *forwarder) pooledFailed(w http.ResponseWriter, r *http.Request, ctx context.Context, b *router.Backend, deadline time.Time, err error) {
	// A deadline on the backend connection: the route's, or a wait past
	// BackendResponseTimeout or BackendIdleTimeout.
	timedOut := errors.Is(err, os.ErrDeadlineExceeded)
	switch {
	case r.Context().Err() != nil:
		return
	case errors.As(err, new(clientError)):
		writeError(w, http.StatusBadRequest, "request body ended early")
	case timedOut || errors.Is(ctx.Err(), context.DeadlineExceeded):
		markUpstreamFailed(w)
		writeError(w, http.StatusGatewayTimeout, "backend timed out")
	default:
		if isConnectError(err) {
			f.metrics.connectErrors.WithLabelValues(b.Name).Inc()
		}
		if !errors.Is(err, h1.ErrBadResponse) && !isConnectError(err) {
			f.logger.Debug("backend exchange failed", "backend", b.Name, "err", err)
		}
		markUpstreamFailed(w)
		writeError(w, http.StatusBadGateway, "backend unavailable")
	}
}

// relayPooled writes the response head in rs to w and copies the body,
// flushing w before every wait on the backend so a streamed body is never
// held back. keep reports a connection that can serve another request.
func (f *forwarder) relayPooled(cs *clientSend, uc *upstream.Conn, rs *h1.ResponseHead, st *filterState) (keep bool, err error) {
	w := cs.w
	h := w.Header()
	vals := make([]string, len(rs.Fields)) // one array for every value
	for i, fl := range rs.Fields {
		if h1.IsHopField(fl.Name) || (rs.ConnNames && h1.NamedByConnection(rs.Fields, fl.Name)) ||
			(rs.Framing == h1.BodyChunked && fl.Is("Content-Length")) {
			continue
		}
		k := http.CanonicalHeaderKey(fl.Name)
		if prev, ok := h[k]; ok && len(prev) > 0 {
			h[k] = append(prev, fl.Value)
			continue
		}
		vals[i] = fl.Value
		h[k] = vals[i : i+1 : i+1]
	}
	for _, m := range st.respMods {
		m.Apply(h)
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // relay the backend's absence; never sniff one
	}
	w.WriteHeader(rs.Status)
	flush := cs.flush
	switch rs.Framing {
	case h1.BodyNone:
	case h1.BodyLength:
		err = copyLength(cs, uc, rs.ContentLength, flush)
	case h1.BodyChunked:
		err = copyChunked(cs, h, uc, flush)
	case h1.BodyToEOF:
		err = copyToEOF(cs, uc, flush)
	}
	return err == nil && !rs.CloseAfter && uc.R == uc.W, err
}

// copyLength copies n body bytes from the backend to w.
func copyLength(w io.Writer, uc *upstream.Conn, n int64, flush func() error) error {
	for n > 0 {
		if uc.R == uc.W {
			if err := uc.FillAfter(len(uc.Buf), flush); err != nil {
				return err
			}
		}
		k := min(n, int64(uc.W-uc.R))
		if _, err := w.Write(uc.Buf[uc.R : uc.R+int(k)]); err != nil {
			return clientError{err}
		}
		uc.R += int(k)
		n -= k
	}
	return nil
}

// copyChunked decodes a chunked body into w, which frames it for its own
// protocol, and passes trailer fields on as trailers.
func copyChunked(w io.Writer, h http.Header, uc *upstream.Conn, flush func() error) error {
	for {
		size, err := uc.ChunkSize(flush)
		if err != nil {
			return err
		}
		if size == 0 {
			break
		}
		if err := copyLength(w, uc, size, flush); err != nil {
			return err
		}
		if err := uc.ChunkEnd(flush); err != nil {
			return err
		}
	}
	for {
		line, err := uc.TrailerLine(flush)
		if err != nil || len(line) == 0 {
			return err
		}
		name, value, _ := strings.Cut(string(line), ":")
		if !h1.IsHopField(name) {
			k := http.TrailerPrefix + http.CanonicalHeaderKey(name)
			h[k] = append(h[k], h1.TrimOWS(value))
		}
	}
}

// copyToEOF copies a body that ends when the backend closes.
func copyToEOF(w io.Writer, uc *upstream.Conn, flush func() error) error {
	for {
		if uc.R == uc.W {
			err := uc.FillAfter(len(uc.Buf), flush)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
		if _, err := w.Write(uc.Buf[uc.R:uc.W]); err != nil {
			return clientError{err}
		}
		uc.R = uc.W
	}
}
