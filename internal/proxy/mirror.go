package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/false-systems/rauta/internal/router"
)

// mirrorTimeout bounds one mirrored request; nobody waits for its answer.
const mirrorTimeout = 30 * time.Second

// mirror sends a copy of out, as it stands now, to the mirror backend in
// the background. It never fails or blocks the main request: when the
// mirror workers are all busy, the backend has no endpoint, or the body is
// larger than the mirror limit, the copy is dropped.
func (f *forwarder) mirror(out *outbound, m *router.Mirror, rreq *router.Request, st *filterState) {
	if !m.Sample(rand.Uint64()) || m.Backend.Invalid {
		return
	}
	ep := m.Backend.Pick(rreq)
	if ep == nil {
		return
	}
	select {
	case f.mirrorSem <- struct{}{}:
	default:
		return // saturated: drop rather than queue
	}
	body, ok := f.bufferBody(out, st)
	if !ok {
		<-f.mirrorSem
		return
	}
	// The copy is detached from the client: it may outlive the request.
	parent := out.ctx
	if parent == nil {
		parent = context.Background() // the engine's requests have none
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), mirrorTimeout)
	mreq := out.mirrorRequest(ctx, backendScheme(m.Backend), ep.Addr)
	mreq.Body = nil
	mreq.ContentLength = int64(len(body))
	mreq.TransferEncoding = nil
	if len(body) > 0 {
		mreq.Body = io.NopCloser(bytes.NewReader(body))
		mreq.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	tr := f.transport(m.Backend)
	ep.Acquire()
	f.mirrors.Add(1)
	go func() {
		defer f.mirrors.Done()
		defer func() { <-f.mirrorSem }()
		defer ep.Release()
		defer cancel()
		resp, err := tr.RoundTrip(mreq)
		if err != nil {
			f.logger.Debug("mirror request failed", "backend", m.Backend.Name, "err", err)
			return
		}
		// Drain a little so the connection can be reused, then drop it.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		resp.Body.Close()
	}()
}

// bufferBody reads the request body once, up to the mirror limit, and puts
// it back for the main request. It reports false when the body is larger
// than the limit or could not be read; the main request still gets every
// byte (or the read error) in order.
func (f *forwarder) bufferBody(out *outbound, st *filterState) ([]byte, bool) {
	switch st.bodyState {
	case bodyBuffered:
		return st.mirrorBody, true
	case bodyTooLarge:
		return nil, false
	}
	if out.body == nil || out.body == http.NoBody {
		st.bodyState = bodyBuffered
		return nil, true
	}
	if out.ContentLength > f.mirrorLimit {
		st.bodyState = bodyTooLarge
		return nil, false
	}
	orig := out.body
	buf, err := io.ReadAll(io.LimitReader(orig, f.mirrorLimit+1))
	if err != nil || int64(len(buf)) > f.mirrorLimit {
		rest := io.Reader(orig)
		if err != nil {
			rest = errReader{err}
		}
		out.body = readCloser{io.MultiReader(bytes.NewReader(buf), rest), orig}
		st.bodyState = bodyTooLarge
		return nil, false
	}
	out.body = readCloser{bytes.NewReader(buf), orig}
	out.ContentLength = int64(len(buf))
	out.te = nil // the length is known now
	st.mirrorBody, st.bodyState = buf, bodyBuffered
	return buf, true
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// mirrorRequest is o as the *http.Request a mirror sends to addr: on
// net/http's path httpRequest's; the engine has no client *http.Request,
// and its strings view the connection's read buffer, which the next
// request overwrites while the copy may still be on its way, so it sends
// a Clone.
func (o *outbound) mirrorRequest(ctx context.Context, scheme, addr string) *http.Request {
	if o.in != nil {
		return o.httpRequest(ctx, scheme, addr)
	}
	d := outbound{Request: o.Clone()}
	u := &url.URL{Scheme: scheme, Host: addr, RawQuery: d.Query, ForceQuery: d.ForceQuery}
	setEscapedPath(u, d.Path)
	r := &http.Request{Method: d.Method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Host: d.Host, Header: d.header()}
	return r.WithContext(ctx)
}

// holdBodyForMirrors gives the mirrors of an engine's request its body,
// all of it in the read buffer (ServeRequest hands other requests with
// mirrors to net/http): a copy, since a mirror may outlive the request,
// unless it is larger than the mirror limit.
func (c *h1conn) holdBodyForMirrors(st *filterState) {
	switch {
	case st.bodyState != bodyUnread:
		return
	case c.BodyLeft > c.s.fwd.mirrorLimit:
		st.bodyState = bodyTooLarge // as bufferBody: no copy
		return
	case c.BodyLeft > 0:
		st.mirrorBody = bytes.Clone(c.In.Buf[c.In.R : c.In.R+int(c.BodyLeft)])
	}
	st.bodyState = bodyBuffered
}
