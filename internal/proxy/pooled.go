package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/h2"
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
func pooledRequest(out *outbound, b *router.Backend) bool {
	if b.H2C || b.TLS != nil || out.Method == http.MethodConnect || out.ContentLength < 0 || len(out.te) > 0 || len(out.in.Trailer) > 0 {
		return false
	}
	if _, ok := out.Fields.Lookup("Expect"); ok {
		return false
	}
	if !httpguts.ValidHostHeader(out.Host) || !validRequestTarget(out.Path, out.Query) {
		return false
	}
	for _, f := range out.Fields {
		if !httpguts.ValidHeaderFieldName(f.Name) || !httpguts.ValidHeaderFieldValue(f.Value) {
			return false
		}
	}
	return true
}

// validRequestTarget rejects a target (path, then query) that would
// break the request line.
func validRequestTarget(path, query string) bool {
	return path != "" && !hasLineBreaker(path) && !hasLineBreaker(query)
}

// hasLineBreaker reports a byte that cannot stand in a request line.
func hasLineBreaker(t string) bool {
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// pooledState is the per-request scratch of forwardPooled, pooled so the
// request head and response field list are not allocated per request;
// relayReader borrows one for its sink.
type pooledState struct {
	// x is the request's backend exchange; its Head holds the request head.
	x upstream.Exchange
	// body reads the client's request body, rest streams a large one to
	// the backend (x.Body), sink takes the response body (relay.go).
	body clientBody
	rest readerBody
	sink httpSink
	// head is the response head relayed as a list (writeListHead).
	head h1.Fields

	// watch is x.Interrupt, bound once per pooledState: the request's one
	// context.AfterFunc for its whole exchange (two were about eight
	// allocations per request) interrupts the exchange when the request's
	// context ends.
	watch func()
}

func newPooledState() any {
	ps := new(pooledState)
	ps.watch = ps.x.Interrupt
	return ps
}

// forwardPooled sends out to addr over a pooled connection and copies the
// response to w, with forward's statuses and semantics: 504 when a timeout
// passes before the response head, 502 when the backend fails or answers
// something malformed, an aborted response when it fails mid-body, one
// retry on a new connection when a reused one turns out closed and the
// request is safe to repeat (upstream.Exchange).
func (f *forwarder) forwardPooled(w http.ResponseWriter, r *http.Request, out *outbound, b *router.Backend, addr string, timeout time.Duration, st *filterState) {
	ctx := out.ctx
	now := time.Now()
	deadline := attemptEnd(out.deadline, timeout)
	ps := f.pooledStates.Get().(*pooledState)
	x := &ps.x
	var in io.Reader
	if out.body != nil && out.ContentLength > 0 {
		// Each wait for more of the body is bounded, and all of them by
		// the deadline: a route's timeout covers the body too.
		ps.body.reset(out.body, w, f.opts.ClientBodyTimeout, deadline, nil)
		in = &ps.body
	}
	rest, err := writePooledHead(ps, out, in)
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
	keyed := hasIdempotencyKey(&out.Fields)
	x.HeadRequest = out.Method == http.MethodHead
	x.Replayable = replayable(out.Method, out.ContentLength != 0, keyed)
	x.ResponseTimeout, x.IdleTimeout, x.Deadline = f.opts.BackendResponseTimeout, f.opts.BackendIdleTimeout, deadline
	x.MaxResponseHead = f.opts.MaxResponseHeaderBytes
	// A fresh scratch per request: the field strings view it and go into
	// the ResponseWriter's header map, which an HTTP/2 server reads after
	// the handler has moved on, and whose HPACK table keeps them.
	x.Scratch = nil
	x.Body = nil
	if rest > 0 {
		ps.rest = readerBody{r: in, n: rest, bufs: &f.bufs}
		x.Body = &ps.rest
	}
	// On an HTTP/2 stream's own context, h2.AfterFunc registers with the
	// stream (one allocation, not context.AfterFunc's six).
	stop := h2.AfterFunc(ctx, ps.watch)
	for {
		err = x.Do(f.pool, addr, now)
		if err == nil {
			break
		}
		if errors.Is(err, upstream.ErrInterrupted) && ctx.Err() != nil {
			err = ctx.Err() // say why: the client went away
		}
		// A streamed body is whole only while none of it was read.
		safe := idempotent(out.Method, keyed) && !ps.rest.started && ctx.Err() == nil
		if next, ok := st.fail.next(f.metrics, err, x.Silent(), safe, deadline); ok {
			addr = next
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
	st.up.status = x.Resp.Status
	// The exchange ended with the response head read; the body follows,
	// each wait on the backend bounded by BackendIdleTimeout.
	x.Relay()
	ps.sink.cs.reset(w, f.opts.ClientSendTimeout)
	err = f.relayPooled(&ps.sink, &ps.head, x.Conn, &x.Resp, st)
	quiet := stop() // false: the watch ran, the connection may be interrupted
	x.Finish(f.pool, quiet && err == nil, time.Now())
	f.putPooledState(ps, quiet)
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
	x := &ps.x
	x.Reset()
	ps.body, ps.rest, ps.sink = clientBody{}, readerBody{}, httpSink{}
	if cap(x.Head) > h1.MaxKeptHead {
		x.Head = nil
	}
	// The fields view the last response's head: let them go.
	x.Scratch = nil
	clear(x.Resp.Fields)
	clear(ps.head)
	ps.head = ps.head[:0]
	x.Resp.Fields, x.Resp.Reason = x.Resp.Fields[:0], ""
	f.pooledStates.Put(ps)
}

// writePooledHead puts out's request head in ps.x.Head, with a small body
// read from in appended so head and body leave in one write. It returns
// the length of the body still to be streamed from in (0 when none is
// left).
func writePooledHead(ps *pooledState, out *outbound, in io.Reader) (int64, error) {
	// Sorted by name, as the Transport writes a header map: fields of one
	// name keep their order.
	slices.SortStableFunc(out.Fields, func(a, b h1.Field) int { return strings.Compare(a.Name, b.Name) })
	b := out.AppendHead(ps.x.Head[:0])
	n := out.ContentLength
	var rest int64
	if n > 0 {
		if n <= maxInlineBody {
			k := len(b)
			b = slices.Grow(b, int(n))[:k+int(n)]
			if _, err := io.ReadFull(in, b[k:]); err != nil {
				ps.x.Head = b[:0]
				return 0, clientError{Err: err}
			}
		} else {
			rest = n
		}
	}
	ps.x.Head = b
	return rest, nil
}

// maxInlineBody is the largest request body sent in the head's write.
const maxInlineBody = 16 << 10

// readerBody streams a large request body, read from the client under
// net/http, to the backend (Exchange.Body) through a pooled copy buffer.
type readerBody struct {
	r    io.Reader
	n    int64 // the body's length
	bufs *sync.Pool
	// started: some of the body was read, so it cannot be sent again.
	started bool
}

func (b *readerBody) WriteTo(w io.Writer) (int64, error) {
	b.started = true
	bp := b.bufs.Get().(*[]byte)
	defer b.bufs.Put(bp)
	sent := int64(0)
	for sent < b.n {
		p := *bp
		if left := b.n - sent; left < int64(len(p)) {
			p = p[:left]
		}
		n, rerr := b.r.Read(p)
		if n > 0 {
			if _, err := w.Write(p[:n]); err != nil {
				return sent, err
			}
			sent += int64(n)
		}
		switch {
		case rerr == io.EOF && sent < b.n:
			return sent, io.ErrUnexpectedEOF // shorter than its Content-Length
		case rerr != nil && rerr != io.EOF:
			return sent, rerr
		}
	}
	return sent, nil
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

// relayPooled writes the response head in rs to w and relays the body.
// head is a scratch list for the fields relayed.
func (f *forwarder) relayPooled(sink *httpSink, head *h1.Fields, uc *upstream.Conn, rs *h1.ResponseHead, st *filterState) error {
	w := sink.cs.w
	h := w.Header()
	if !writeListHead(w, head, rs, st) {
		vals := headerValues(w, len(rs.Fields)) // one array for every value
		for i, fl := range rs.Fields {
			if !relayedField(rs, &fl) {
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
	}
	sink.h = h // trailers
	_, err := relayBody(&bodySource{uc: uc, framing: rs.Framing, length: rs.ContentLength}, sink)
	return err
}

// relayedField reports whether a field of the backend's response head goes
// on to the client: hop-by-hop fields do not, nor a Content-Length beside
// chunked framing.
func relayedField(rs *h1.ResponseHead, fl *h1.Field) bool {
	return !h1.IsHopField(fl.Name) && (!rs.ConnNames || !h1.NamedByConnection(rs.Fields, fl.Name)) &&
		(rs.Framing != h1.BodyChunked || !fl.Is("Content-Length"))
}

// writeListHead writes rs's head (relayed fields, response modifiers
// applied) as a field list when w is the recorder over one of RAUTA's own
// HTTP/2 streams (h2.WriteHead), with no header map per response: the map
// was the largest share of the proxy's own CPU under the h2 m=64 cell
// (docs/performance.md, round 25). head is the scratch list. False when it
// wrote nothing: w is something else, or h2.WriteHead left the head to
// WriteHeader.
func writeListHead(w http.ResponseWriter, head *h1.Fields, rs *h1.ResponseHead, st *filterState) bool {
	rec, ok := w.(*recorder)
	if !ok || rec.status != 0 {
		return false
	}
	// Only RAUTA's own HTTP/2 streams have HeaderValues: for any other
	// writer the list would be built for nothing.
	if _, isH2 := rec.ResponseWriter.(interface{ HeaderValues(int) []string }); !isH2 {
		return false
	}
	fields := (*head)[:0]
	for _, fl := range rs.Fields {
		if relayedField(rs, &fl) {
			fields = append(fields, fl)
		}
	}
	*head = fields
	return writeHeadList(rec, rs.Status, head, st)
}

// writeHeadList applies the route's response modifiers to a relayed head
// and writes it through h2.WriteHead, reporting whether it could (the
// modifiers are applied either way: a caller falling back to the header
// map builds it from fields).
func writeHeadList(rec *recorder, status int, fields *h1.Fields, st *filterState) bool {
	for _, m := range st.respMods {
		m.ApplyTo(fields)
	}
	if rec == nil || rec.status != 0 || !h2.WriteHead(rec.ResponseWriter, status, *fields) {
		return false
	}
	rec.status = status
	return true
}

// writeFieldsHead writes a head that came as a list from the h2c client
// (h2client.RoundTripFields): its relayed fields, response modifiers
// applied, as the list itself on RAUTA's own HTTP/2 streams (h2.WriteHead,
// no header map), else through w's header map, as copyResponseHeader
// would (an HTTP/1.1 client's request handed to net/http).
func writeFieldsHead(w http.ResponseWriter, head h1.Fields, status int, st *filterState) {
	fields := head[:0] // filtered in place: nothing reads head after
	conn := false
	for i := range head {
		conn = conn || head[i].Is("Connection")
	}
	if conn {
		fields = make(h1.Fields, 0, len(head)) // NamedByConnection reads head whole
	}
	for _, fl := range head {
		if !h1.IsHopField(fl.Name) && (!conn || !h1.NamedByConnection(head, fl.Name)) {
			fields = append(fields, fl)
		}
	}
	if rec, _ := w.(*recorder); writeHeadList(rec, status, &fields, st) {
		return
	}
	h := w.Header()
	for k, vv := range fieldsHeader(fields) {
		h[k] = vv
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // relay the backend's absence; never sniff one
	}
	w.WriteHeader(status)
}

// fieldsHeader is a field list as a header map.
func fieldsHeader(fields h1.Fields) http.Header {
	h := make(http.Header, len(fields))
	for _, fl := range fields {
		k := http.CanonicalHeaderKey(fl.Name)
		h[k] = append(h[k], fl.Value)
	}
	return h
}

// headerValues returns n empty strings for the values of w's Header():
// the HTTP/2 stream's array when w answers one of RAUTA's own streams
// (h2's HeaderValues, reused after the response), else a new one.
func headerValues(w http.ResponseWriter, n int) []string {
	if v, ok := underWriter[interface{ HeaderValues(int) []string }](w); ok {
		return v.HeaderValues(n)
	}
	return make([]string, n)
}
