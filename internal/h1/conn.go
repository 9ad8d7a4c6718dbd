package h1

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one client connection served by the engine: one goroutine reads
// a request, hands it to the Handler, which routes it, talks to the backend
// on the same goroutine and writes the response into Out, and every buffer
// is reused across requests. Anything outside the engine's subset moves,
// with its unread bytes, to Config.Handoff.
type Conn struct {
	NC  net.Conn
	In  Reader
	Out Writer
	// Req is the current request's head, a view of the connection's head
	// buffer until the next request.
	Req RequestHead
	// BodyLeft is the request body not read from the client yet; the
	// handler sets it, and a connection ending with some left closes with
	// a lingering close.
	BodyLeft int64
	// Now is when the current request's head was read; it dates the
	// response and stamps pooled connections, saving clock reads.
	Now time.Time

	cfg   *Config
	conns *Conns
	h     Handler
	// idle is true while waiting for the next request; a graceful close
	// ends idle connections.
	idle atomic.Bool
	// served is set once the connection has served a request: a drain
	// closes only such idle connections (Conns.CloseIdle).
	served atomic.Bool
	// reqHeadBuf holds the current request head, which Req views.
	reqHeadBuf []byte
	// idleDeadline is the idle read deadline in force, zero when another
	// one is; re-arming it is skipped while it is nearly fresh.
	idleDeadline time.Time
	// linger: the connection ends with a lingering close, the client may
	// still be sending (a refused head, an unread body).
	linger bool
	// inP and outP are the pooled buffers In.Buf and Out's own buffer
	// are, nil when those are not pooled ones (buffers.go).
	inP, outP *[]byte
	// servedOnce is served without the atomic, for this goroutine.
	servedOnce bool
	// loop is serveInRead's state (serveloop.go); loopBufFn and loopGotFn
	// are its ReadLoop functions, bound once.
	loop      loopState
	loopBufFn func() []byte
	loopGotFn func(n int, err error) bool
}

// Config is what the connections of one socket share: limits, timeouts,
// buffer pools and where a connection the engine does not serve goes.
type Config struct {
	// MaxHeaderBytes bounds a request head (431, or 414 for its request
	// line); MaxHeaderFields its field lines (431).
	MaxHeaderBytes, MaxHeaderFields int
	// IdleTimeout bounds the wait for a request to start,
	// ReadHeaderTimeout the rest of its head (408), ClientBodyTimeout each
	// wait for more of its body (BoundBodyReads), ClientSendTimeout each
	// wait for the client to take more of a response.
	IdleTimeout, ReadHeaderTimeout, ClientBodyTimeout, ClientSendTimeout time.Duration
	// Buffers holds the connections' read and write buffers
	// (NewConnBuffer), RelayBuffers the writers' relay buffers
	// (NewRelayBuffer).
	Buffers, RelayBuffers *sync.Pool
	// Date formats the Date field.
	Date *DateCache
	// Handoff takes a connection the engine does not serve, with the
	// bytes it read and did not serve (pending, to be read first), on the
	// connection's goroutine; the engine does not touch it after.
	Handoff func(nc net.Conn, pending []byte)
}

// Handler serves the requests of a Conn.
type Handler interface {
	// ServeRequest serves the request in Req, whose head was headLen
	// bytes of In (Handoff: unread them first), writing the response into
	// Out, and says what the connection does next.
	ServeRequest(headLen int) Next
}

// Next says what the loop does after a request.
type Next uint8

const (
	Keep Next = iota
	Close
	Handoff
)

// Init prepares c to serve nc for h.
func (c *Conn) Init(cfg *Config, conns *Conns, nc net.Conn, h Handler) {
	c.NC, c.cfg, c.conns, c.h = nc, cfg, conns, h
	sio := NewSocket(nc)
	c.In = Reader{Sock: sio}
	c.Out = Writer{Sock: sio, Pool: cfg.RelayBuffers}
	c.takeBuffers()
	c.loopBufFn, c.loopGotFn = c.loopBuf, c.loopGot
	// Every wait for the client to take more of a response is bounded.
	sio.BoundWrites(cfg.ClientSendTimeout, time.Time{})
	c.idle.Store(true)
}

// Serve runs the connection's request loop.
func (c *Conn) Serve() {
	handedOff := false
	defer func() {
		c.conns.remove(c)
		if !handedOff {
			defer c.dropBuffers()
			if c.BodyLeft > 0 || c.linger {
				c.lingerClose()
			}
			c.NC.Close()
		}
	}()
	for {
		if !c.becomeIdle() {
			return
		}
		head, next, err := c.nextHead()
		if err != nil {
			switch {
			case errors.Is(err, ErrHeadTooLarge):
				c.refuseHead(c.In.Buffered())
			case errors.Is(err, errNotForEngine):
				handedOff = c.handoff() // net/http serves it
			case c.In.R < c.In.W && errors.Is(err, os.ErrDeadlineExceeded):
				// A head begun and not finished in ReadHeaderTimeout;
				// an idle connection just closes.
				c.refuse(http.StatusRequestTimeout, "request head timed out")
			}
			return
		}
		if head != "" {
			next = c.serveHead(head, c.loop.parsed)
		}
		switch next {
		case Handoff:
			handedOff = c.handoff()
			return
		case Close:
			return
		}
	}
}

// serveHead serves the request whose head was just read (parsed: already
// into Req, by serveInRead) and says what the connection does next.
func (c *Conn) serveHead(head string, parsed bool) Next {
	c.beginRequest()
	if !parsed && c.tooManyFields(head) {
		c.refuse(http.StatusRequestHeaderFieldsTooLarge, "too many header fields")
		return Close
	}
	if !parsed && !ParseRequestHead(head, &c.Req) {
		if requestLineTooLong([]byte(head)) {
			c.refuse(http.StatusRequestURITooLong, "request URI too long")
			return Close
		}
		if c.Req.Ambiguous {
			c.Req.CloseAfter = true
			c.WriteError(http.StatusBadRequest, "request has both Content-Length and Transfer-Encoding")
			c.Out.Flush()
			return Close
		}
		c.In.R -= len(head) // nothing after the head was read yet
		return Handoff
	}
	return c.h.ServeRequest(len(head))
}

// becomeIdle marks the connection idle between requests and reports
// whether it may wait for the next one. Idle, then check the state:
// shutdown sets the state, then closes idle connections, so one of the two
// sees the other. A draining connection reads on: its next response says
// Connection: close.
func (c *Conn) becomeIdle() bool {
	c.idle.Store(true)
	return c.conns.state.Load() != connsClosing
}

// tooManyFields reports a head with more than MaxHeaderFields field lines.
// Counted before parsing, so that no request the engine hands to net/http
// (which has no such limit) escapes it.
func (c *Conn) tooManyFields(head string) bool {
	return strings.Count(head, "\n")-2 > c.cfg.MaxHeaderFields
}

// beginRequest marks the connection busy, and as one that served.
func (c *Conn) beginRequest() {
	c.idle.Store(false)
	if !c.servedOnce {
		c.servedOnce = true
		c.served.Store(true)
	}
}

// refuseHead answers a head over MaxHeaderBytes, whose start is b: 414
// when its request line is over the URI limit, 431 otherwise.
func (c *Conn) refuseHead(b []byte) {
	if requestLineTooLong(b) {
		c.refuse(http.StatusRequestURITooLong, "request URI too long")
		return
	}
	c.refuse(http.StatusRequestHeaderFieldsTooLarge, "request header too large")
}

// refuse answers a request the engine will not serve (408, 414, 431)
// with Connection: close and ends the connection with a lingering close,
// so a client still sending reads the answer instead of a reset.
func (c *Conn) refuse(code int, msg string) {
	c.Req.Method, c.Req.CloseAfter = "", true
	c.Now = time.Now()
	c.WriteError(code, msg)
	if c.Out.Flush() == nil {
		c.linger = true
	}
}

// maxRequestLine is the longest request line whose target can be within
// MaxRequestURI: the target, a method and the version.
const maxRequestLine = MaxRequestURI + 1<<10

// requestLineTooLong reports a request line, first line of b whether
// complete or not, whose request-target is over MaxRequestURI.
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
	return len(target) > MaxRequestURI
}

// lingerTime bounds lingerClose, as net/http's rstAvoidanceDelay does.
const lingerTime = 500 * time.Millisecond

// lingerClose ends a connection whose client may still be sending a
// request body the engine did not read (an early answer such as 413).
// Closing at once would reset the connection, and the reset can destroy
// the response before the client reads it. So the engine sends FIN and
// drops what arrives until the client closes or lingerTime passes.
func (c *Conn) lingerClose() {
	cw, ok := c.NC.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil || c.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	c.In.R, c.In.W = 0, 0
	for c.In.Fill(len(c.In.Buf)) == nil {
		c.In.R, c.In.W = 0, 0
	}
}

// readRequestHead waits up to IdleTimeout for a request to start, then up
// to ReadHeaderTimeout for the rest of its head (slowloris).
func (c *Conn) readRequestHead() (string, error) {
	limit := c.cfg.MaxHeaderBytes
	if h, ok := c.In.Head(&c.reqHeadBuf); ok {
		return c.headWithin(h, limit) // pipelined
	}
	if c.In.R == c.In.W {
		if err := c.armIdleDeadline(); err != nil {
			return "", err
		}
		if err := c.fillIdle(limit); err != nil {
			return "", err
		}
		if h, ok := c.In.Head(&c.reqHeadBuf); ok {
			return c.headWithin(h, limit)
		}
	}
	if err := c.SetReadDeadline(time.Now().Add(c.cfg.ReadHeaderTimeout)); err != nil {
		return "", err
	}
	for {
		if bytes.IndexByte(c.In.Buffered(), '\n') >= 0 && hasBareLF(c.In.Buffered()) {
			// Lines ending in a bare LF: net/http's reader accepts them.
			return "", errNotForEngine
		}
		if c.In.W-c.In.R >= limit {
			return "", ErrHeadTooLarge
		}
		if un := c.In.Buffered(); len(un) > maxRequestLine && bytes.IndexByte(un[:maxRequestLine], '\n') < 0 {
			return "", ErrHeadTooLarge // a request line too long: 414 at once
		}
		if err := c.In.Fill(limit); err != nil {
			return "", err
		}
		if h, ok := c.In.Head(&c.reqHeadBuf); ok {
			return c.headWithin(h, limit)
		}
	}
}

// headWithin returns h if it fits MaxHeaderBytes. A head that arrived
// whole in one read (or pipelined behind another) never met the check in
// the fill loop: a limit below the read buffer's size would not hold. Too
// large, it is put back so refuseHead sees its request line (414 or 431).
func (c *Conn) headWithin(h string, limit int) (string, error) {
	if len(h) <= limit {
		return h, nil
	}
	c.In.R -= len(h)
	return "", ErrHeadTooLarge
}

// armIdleDeadline makes the connection close after IdleTimeout without a
// request. Setting a deadline costs timer work on every request, so a
// deadline set less than a second (or an eighth of the timeout) ago stays:
// the idle timeout then fires up to that much early.
func (c *Conn) armIdleDeadline() error {
	now := time.Now()
	idle := c.cfg.IdleTimeout
	if !c.idleDeadline.IsZero() && c.idleDeadline.Sub(now) > idle-min(time.Second, idle/8) {
		return nil
	}
	if err := c.In.Sock.SetReadDeadline(now.Add(idle)); err != nil {
		return err
	}
	c.idleDeadline = now.Add(idle)
	return nil
}

// SetReadDeadline sets a deadline other than the idle one; zero clears it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.idleDeadline = time.Time{}
	c.In.Sock.UnboundReads()
	return c.In.Sock.SetReadDeadline(t)
}

// BoundBodyReads bounds each wait for more of the request body by
// ClientBodyTimeout, and all of them by deadline when set; UnboundReads
// ends that.
func (c *Conn) BoundBodyReads(deadline time.Time) {
	c.idleDeadline = time.Time{}
	c.In.Sock.BoundReads(c.cfg.ClientBodyTimeout, deadline)
}

// UnboundReads ends BoundBodyReads.
func (c *Conn) UnboundReads() { c.In.Sock.UnboundReads() }

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

// handoff gives the connection and its unread bytes to Config.Handoff. It
// reports whether it did; the caller must not touch the connection after.
func (c *Conn) handoff() bool {
	c.In.Sock.UnboundReads()
	c.In.Sock.UnboundWrites()
	if c.In.Sock.SetDeadline(time.Time{}) != nil {
		return false
	}
	pending := c.In.Buffered()
	c.conns.remove(c)
	c.cfg.Handoff(c.NC, pending)
	return true
}

// closing reports whether this response must be the connection's last.
// While draining or closing it always is.
func (c *Conn) closing() bool { return c.Req.CloseAfter || c.conns.state.Load() != connsOpen }
