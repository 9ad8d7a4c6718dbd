package proxy

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/upstream"
)

// h1conn is one client connection served by the HTTP/1.1 engine: one
// goroutine reads a request, routes it, talks to the backend on the same
// goroutine and writes the response, reusing every buffer across requests.
// Anything outside the engine's subset moves, with its unread bytes, to the
// socket's net/http server (handoff).
type h1conn struct {
	s    *Server
	sock *socket
	nc   net.Conn
	in   h1.Reader
	out  h1.Writer
	// idle is true while waiting for the next request; a graceful close
	// ends idle connections.
	idle atomic.Bool
	// served is set once the connection has served a request: a drain
	// closes only such idle connections (see h1conns.closeIdle).
	served   atomic.Bool
	clientIP string

	req     h1.RequestHead
	outResp h1.Fields // the response fields sent to the client
	// reqHeadBuf holds the current request head, which req views (see
	// bufConn.head).
	reqHeadBuf []byte
	// fx is the outbound request and its backend exchange while a
	// request is forwarded, nil otherwise (h1exchange).
	fx *h1exchange
	// goneFn is clientGone, bound once: the check a backend's waits run.
	goneFn func() error
	// bodyLeft is the request body not read from the client yet.
	bodyLeft int64
	// now is when the current request's head was read; it dates the
	// response and stamps pooled connections, saving clock reads.
	now time.Time
	// idleDeadline is the idle read deadline in force, zero when another
	// one is; re-arming it is skipped while it is nearly fresh.
	idleDeadline time.Time
	// linger: the connection ends with a lingering close, the client may
	// still be sending (a refused head, an unread body).
	linger bool
	// connNo and reqNo number request IDs the engine makes; idBuf and
	// tpBuf hold the current request's made X-Request-Id and outbound
	// traceparent, which strings view (no allocation per request).
	connNo, reqNo uint64
	idBuf, tpBuf  []byte
	// inP and outP are the pooled buffers in.buf and out's own buffer
	// are, nil when those are not pooled ones (h1idle.go).
	inP, outP *[]byte
}

// clientReadBuffer is the initial read buffer of a client connection; it
// grows up to MaxHeaderBytes for a large head.
const clientReadBuffer = 4 << 10

func newH1Conn(s *Server, sock *socket, nc net.Conn) *h1conn {
	c := &h1conn{s: s, sock: sock, nc: nc}
	sio := h1.NewSocket(nc)
	c.in = h1.Reader{Sock: sio}
	c.out = h1.Writer{Sock: sio, Pool: &s.fwd.relayBufs}
	c.takeBuffers()
	// Every wait for the client to take more of a response is bounded.
	sio.BoundWrites(s.opts.ClientSendTimeout, time.Time{})
	c.goneFn = c.clientGone
	c.clientIP = clientIP(nc.RemoteAddr().String())
	c.connNo = s.ids.conn()
	c.idle.Store(true)
	return c
}

// serve runs the connection's request loop.
func (c *h1conn) serve() {
	handedOff, served := false, false
	defer func() {
		c.sock.h1.remove(c)
		if !handedOff {
			defer c.dropBuffers()
			if c.bodyLeft > 0 || c.linger {
				c.lingerClose()
			}
			c.nc.Close()
		}
	}()
	for {
		c.idle.Store(true)
		// Idle, then check the state: shutdown sets the state, then closes
		// idle connections, so one of the two sees the other. A draining
		// connection reads on: its next response says Connection: close.
		if c.sock.h1.state.Load() == h1Closing {
			return
		}
		head, err := c.readRequestHead()
		if err != nil {
			switch {
			case errors.Is(err, h1.ErrHeadTooLarge):
				c.refuseHead(c.in.Buffered())
			case errors.Is(err, errNotForEngine):
				handedOff = c.handoff() // net/http serves it
			case c.in.R < c.in.W && errors.Is(err, os.ErrDeadlineExceeded):
				// A head begun and not finished in ReadHeaderTimeout;
				// an idle connection just closes.
				c.refuse(http.StatusRequestTimeout, "request head timed out")
			}
			return
		}
		c.idle.Store(false)
		if !served {
			served = true
			c.served.Store(true)
		}
		// Counted before parsing, so that no request the engine hands to
		// net/http (which has no such limit) escapes it.
		if strings.Count(head, "\n")-2 > c.s.opts.MaxHeaderFields {
			c.refuse(http.StatusRequestHeaderFieldsTooLarge, "too many header fields")
			return
		}
		if !h1.ParseRequestHead(head, &c.req) {
			if requestLineTooLong([]byte(head)) {
				c.refuse(http.StatusRequestURITooLong, "request URI too long")
				return
			}
			if c.req.Ambiguous {
				c.req.CloseAfter = true
				c.writeError(http.StatusBadRequest, "request has both Content-Length and Transfer-Encoding")
				c.out.Flush()
				return
			}
			c.in.R -= len(head) // nothing after the head was read yet
			handedOff = c.handoff()
			return
		}
		switch c.serveRequest(len(head)) {
		case connHandoff:
			handedOff = c.handoff()
			return
		case connClose:
			return
		}
	}
}

// refuseHead answers a head over MaxHeaderBytes, whose start is b: 414
// when its request line is over the URI limit, 431 otherwise.
func (c *h1conn) refuseHead(b []byte) {
	if requestLineTooLong(b) {
		c.refuse(http.StatusRequestURITooLong, "request URI too long")
		return
	}
	c.refuse(http.StatusRequestHeaderFieldsTooLarge, "request header too large")
}

// refuse answers a request the engine will not serve (408, 414, 431)
// with Connection: close and ends the connection with a lingering close,
// so a client still sending reads the answer instead of a reset.
func (c *h1conn) refuse(code int, msg string) {
	c.req.Method, c.req.CloseAfter = "", true
	c.now = time.Now()
	c.writeError(code, msg)
	if c.out.Flush() == nil {
		c.linger = true
	}
}

// maxRequestLine is the longest request line whose target can be within
// maxRequestURI: the target, a method and the version.
const maxRequestLine = h1.MaxRequestURI + 1<<10

// requestLineTooLong reports a request line, first line of b whether
// complete or not, whose request-target is over maxRequestURI.
func requestLineTooLong(b []byte) bool {
	i := bytes.IndexByte(b[:min(len(b), maxRequestLine+1)], '\n')
	if i < 0 {
		return len(b) > maxRequestLine
	}
	_, target, ok := bytes.Cut(b[:i], []byte(" "))
	if !ok {
		return false
	}
	if j := bytes.LastIndexByte(target, ' '); j >= 0 {
		target = target[:j]
	}
	return len(target) > h1.MaxRequestURI
}

// lingerTime bounds lingerClose, as net/http's rstAvoidanceDelay does.
const lingerTime = 500 * time.Millisecond

// lingerClose ends a connection whose client may still be sending a
// request body the engine did not read (an early answer such as 413).
// Closing at once would reset the connection, and the reset can destroy
// the response before the client reads it. So the engine sends FIN and
// drops what arrives until the client closes or lingerTime passes.
func (c *h1conn) lingerClose() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil || c.setReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	c.in.R, c.in.W = 0, 0
	for c.in.Fill(len(c.in.Buf)) == nil {
		c.in.R, c.in.W = 0, 0
	}
}

// readRequestHead waits up to IdleTimeout for a request to start, then up
// to ReadHeaderTimeout for the rest of its head (slowloris).
func (c *h1conn) readRequestHead() (string, error) {
	if h, ok := c.in.Head(&c.reqHeadBuf); ok {
		return h, nil // pipelined
	}
	limit := c.s.opts.MaxHeaderBytes
	if c.in.R == c.in.W {
		if err := c.armIdleDeadline(); err != nil {
			return "", err
		}
		if err := c.fillIdle(limit); err != nil {
			return "", err
		}
		if h, ok := c.in.Head(&c.reqHeadBuf); ok {
			return h, nil
		}
	}
	if err := c.setReadDeadline(time.Now().Add(c.s.opts.ReadHeaderTimeout)); err != nil {
		return "", err
	}
	for {
		if bytes.IndexByte(c.in.Buffered(), '\n') >= 0 && hasBareLF(c.in.Buffered()) {
			// Lines ending in a bare LF: net/http's reader accepts them.
			return "", errNotForEngine
		}
		if c.in.W-c.in.R >= limit {
			return "", h1.ErrHeadTooLarge
		}
		if un := c.in.Buffered(); len(un) > maxRequestLine && bytes.IndexByte(un[:maxRequestLine], '\n') < 0 {
			return "", h1.ErrHeadTooLarge // a request line too long: 414 at once
		}
		if err := c.in.Fill(limit); err != nil {
			return "", err
		}
		if h, ok := c.in.Head(&c.reqHeadBuf); ok {
			return h, nil
		}
	}
}

// armIdleDeadline makes the connection close after IdleTimeout without a
// request. Setting a deadline costs timer work on every request, so a
// deadline set less than a second (or an eighth of the timeout) ago stays:
// the idle timeout then fires up to that much early.
func (c *h1conn) armIdleDeadline() error {
	now := time.Now()
	idle := c.s.opts.IdleTimeout
	if !c.idleDeadline.IsZero() && c.idleDeadline.Sub(now) > idle-min(time.Second, idle/8) {
		return nil
	}
	if err := c.in.Sock.SetReadDeadline(now.Add(idle)); err != nil {
		return err
	}
	c.idleDeadline = now.Add(idle)
	return nil
}

// setReadDeadline sets a deadline other than the idle one; zero clears it.
func (c *h1conn) setReadDeadline(t time.Time) error {
	c.idleDeadline = time.Time{}
	c.in.Sock.UnboundReads()
	return c.in.Sock.SetReadDeadline(t)
}

// boundBodyReads bounds each wait for more of the request body by
// ClientBodyTimeout, and all of them by deadline when set; unboundReads
// ends that.
func (c *h1conn) boundBodyReads(deadline time.Time) {
	c.idleDeadline = time.Time{}
	c.in.Sock.BoundReads(c.s.opts.ClientBodyTimeout, deadline)
}

func (c *h1conn) unboundReads() { c.in.Sock.UnboundReads() }

// errClientGone: the client closed or reset its connection while its
// backend was being waited on.
var errClientGone = upstream.ErrClientGone

// clientGone is the check a backend's waits run (waitBound.check): a peek
// at the client's socket, which finds EOF or an error once the client has
// closed or reset it. Bytes the client pipelined, buffered or still in
// the socket, read as a client still there.
func (c *h1conn) clientGone() error {
	errno, n := c.in.Sock.Peek()
	if errno == syscall.EAGAIN || n > 0 {
		return nil
	}
	return clientError{Err: errClientGone}
}

// errNotForEngine: the bytes read so far are for net/http to judge.
var errNotForEngine = errors.New("request outside the HTTP/1.1 engine's subset")

// hasBareLF reports a line feed not preceded by a carriage return.
func hasBareLF(b []byte) bool {
	for i, ch := range b {
		if ch == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

// handoff gives the connection and its unread bytes to net/http, or, when
// they start with the HTTP/2 preface (h2c by prior knowledge, as gRPC
// clients speak), to the socket's HTTP/2 server on this goroutine. It
// reports whether it did; the caller must not touch the connection after.
func (c *h1conn) handoff() bool {
	c.in.Sock.UnboundReads()
	c.in.Sock.UnboundWrites()
	if c.in.Sock.SetDeadline(time.Time{}) != nil {
		return false
	}
	pending := c.in.Buffered()
	c.sock.h1.remove(c)
	rc := &replayConn{Conn: c.nc, pending: pending}
	if bytes.HasPrefix(pending, []byte(http2.ClientPreface)) {
		c.sock.h2.ServeConn(context.Background(), rc, c.sock.srv.Handler)
		return true
	}
	c.sock.handoff.give(rc)
	return true
}

// connNext says what the loop does after a request.
type connNext uint8

const (
	connKeep connNext = iota
	connClose
	connHandoff
)

// closing reports whether this response must be the connection's last.
// While draining or closing it always is.
func (c *h1conn) closing() bool { return c.req.CloseAfter || c.sock.h1.state.Load() != h1Open }

// writeStatusLine starts a response.
func (c *h1conn) writeStatusLine(code int, reason string) {
	w := &c.out
	w.Buf = append(w.Buf, "HTTP/1.1 "...)
	w.Buf = strconv.AppendInt(w.Buf, int64(code), 10)
	w.Buf = append(w.Buf, ' ')
	if reason == "" {
		reason = http.StatusText(code)
	}
	w.Buf = append(w.Buf, reason...)
	w.Buf = append(w.Buf, "\r\n"...)
}

// writeField appends one field line.
func (c *h1conn) writeField(name, value string) { c.out.Buf = h1.AppendField(c.out.Buf, name, value) }

// endHead writes Date (unless the fields had one), Connection: close when
// this is the last response, and the empty line.
func (c *h1conn) endHead(hasDate bool) {
	if !hasDate {
		c.out.Buf = append(c.out.Buf, "Date: "...)
		c.out.Buf = append(c.out.Buf, c.s.date.get(c.now)...)
		c.out.Buf = append(c.out.Buf, "\r\n"...)
	}
	if c.closing() {
		// Latched: a drain that begins after this point must not end a
		// connection whose response promised keep-alive (its client's
		// next request would meet a reset).
		c.req.CloseAfter = true
		c.out.Buf = append(c.out.Buf, "Connection: close\r\n"...)
	}
	c.out.Buf = append(c.out.Buf, "\r\n"...)
}

// writeError answers with the same short plain-text error as the net/http
// path's writeError.
func (c *h1conn) writeError(code int, msg string) {
	c.writeStatusLine(code, "")
	c.writeField("Content-Type", "text/plain; charset=utf-8")
	c.writeField("X-Content-Type-Options", "nosniff")
	c.out.Buf = append(c.out.Buf, "Content-Length: "...)
	c.out.Buf = strconv.AppendInt(c.out.Buf, int64(len(msg)+1), 10)
	c.out.Buf = append(c.out.Buf, "\r\n"...)
	c.endHead(false)
	if c.req.Method != http.MethodHead {
		c.out.Buf = append(c.out.Buf, msg...)
		c.out.Buf = append(c.out.Buf, '\n')
	}
}

// dateCache formats the Date field once a second instead of per response.
type dateCache struct {
	v atomic.Pointer[dateValue]
}

type dateValue struct {
	sec int64
	b   []byte
}

func (d *dateCache) get(now time.Time) []byte {
	sec := now.Unix()
	if v := d.v.Load(); v != nil && v.sec == sec {
		return v.b
	}
	v := &dateValue{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	d.v.Store(v)
	return v.b
}
