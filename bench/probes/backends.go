package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxWire bounds the raw bytes the backends keep of one connection during
// one probe; more is not recorded.
const maxWire = 8 << 20

// wire keeps the raw bytes every backend connection received, so a probe
// judges what a proxy forwarded (a smuggled request, a NUL byte, a
// dot-segment) and not what a backend's parser made of it.
type wire struct {
	mu    sync.Mutex
	conns []*connWire
	// slowGone receives when a request to the never-answering backend ends
	// because its connection went away.
	slowGone chan gone
}

// connWire is what one backend connection received since the last reset.
type connWire struct {
	buf    []byte
	closed bool
}

// gone is a request to the never-answering backend that ended early.
type gone struct {
	path string
	at   time.Time
}

func newWire() *wire { return &wire{slowGone: make(chan gone, 64)} }

func (w *wire) conn() *connWire {
	c := &connWire{}
	w.mu.Lock()
	w.conns = append(w.conns, c)
	w.mu.Unlock()
	return c
}

func (w *wire) add(c *connWire, b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(c.buf)+len(b) <= maxWire {
		c.buf = append(c.buf, b...)
	}
}

func (w *wire) closed(c *connWire) {
	w.mu.Lock()
	c.closed = true
	w.mu.Unlock()
}

// reset forgets what earlier probes left. Connections a proxy keeps open
// stay, empty: the next bytes on them start a request.
func (w *wire) reset() {
	w.mu.Lock()
	open := w.conns[:0]
	for _, c := range w.conns {
		if !c.closed {
			c.buf = c.buf[:0]
			open = append(open, c)
		}
	}
	clear(w.conns[len(open):])
	w.conns = open
	w.mu.Unlock()
	for {
		select {
		case <-w.slowGone:
		default:
			return
		}
	}
}

// bytes is every connection's bytes, one after the other.
func (w *wire) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []byte
	for _, c := range w.conns {
		out = append(out, c.buf...)
	}
	return out
}

// requestLines returns the request lines containing tok of the requests
// the backends received, each connection's bytes framed as net/http (the
// backend's server) frames them: a smuggled request counts only when the
// backend would have served it as one.
func (w *wire) requestLines(tok string) []string {
	w.mu.Lock()
	bufs := make([][]byte, 0, len(w.conns))
	for _, c := range w.conns {
		bufs = append(bufs, append([]byte(nil), c.buf...))
	}
	w.mu.Unlock()
	var out []string
	for _, b := range bufs {
		br := bufio.NewReader(bytes.NewReader(b))
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				break
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if line := req.Method + " " + req.RequestURI + " " + req.Proto; strings.Contains(line, tok) {
				out = append(out, line)
			}
		}
	}
	return out
}

// heads returns the raw request heads (request line and fields, up to the
// blank line) the backends received whose request line contains tok.
func (w *wire) heads(tok string) []string {
	b := string(w.bytes())
	var out []string
	for {
		i := strings.Index(b, tok)
		if i < 0 {
			return out
		}
		start := strings.LastIndex(b[:i], "\n") + 1
		end := strings.Index(b[i:], "\r\n\r\n")
		if end < 0 {
			end = len(b) - i
		}
		out = append(out, b[start:i+end])
		b = b[i+end:]
	}
}

// tapListener records every byte read from its connections.
type tapListener struct {
	net.Listener
	w *wire
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, w: l.w, cw: l.w.conn()}, nil
}

type tapConn struct {
	net.Conn
	w  *wire
	cw *connWire
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.w.add(c.cw, p[:n])
	}
	return n, err
}

func (c *tapConn) Close() error {
	c.w.closed(c.cw)
	return c.Conn.Close()
}

// backends are the Go servers behind every proxy. Each listens on its own
// loopback port; dead is a port nothing listens on.
type backends struct {
	echo1, echo2, slow, resetHead, resetBody, garbage, bigHeaders, dead string
	w                                                                   *wire
	closers                                                             []io.Closer
}

// bigBody is what the echo backend answers for a path ending in /big: large
// enough that a stream with a zero flow-control window cannot finish.
const bigBody = 256 << 10

// slowCap bounds how long the never-answering backend holds a request when
// no proxy gives up first.
const slowCap = 2 * time.Minute

func startBackends() (*backends, error) {
	b := &backends{w: newWire()}
	listen := func() (net.Listener, string, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		b.closers = append(b.closers, l)
		return l, l.Addr().String(), nil
	}
	serveHTTP := func(h http.Handler) (string, error) {
		l, addr, err := listen()
		if err != nil {
			return "", err
		}
		// Generous limits: the backend must see whatever a proxy forwards.
		srv := &http.Server{Handler: h, MaxHeaderBytes: 4 << 20, ReadHeaderTimeout: time.Minute}
		b.closers = append(b.closers, srv)
		go func() { _ = srv.Serve(tapListener{Listener: l, w: b.w}) }()
		return addr, nil
	}
	serveRaw := func(answer func(c net.Conn)) (string, error) {
		l, addr, err := listen()
		if err != nil {
			return "", err
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					tc := &tapConn{Conn: c, w: b.w, cw: b.w.conn()}
					defer tc.Close()
					_ = c.SetDeadline(time.Now().Add(time.Minute))
					if readHead(tc) == nil {
						answer(c)
					}
				}()
			}
		}()
		return addr, nil
	}
	var err error
	if b.echo1, err = serveHTTP(http.HandlerFunc(echo)); err != nil {
		return nil, err
	}
	if b.echo2, err = serveHTTP(http.HandlerFunc(echo)); err != nil {
		return nil, err
	}
	if b.slow, err = serveHTTP(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			select {
			case b.w.slowGone <- gone{path: r.URL.Path, at: time.Now()}:
			default:
			}
		case <-time.After(slowCap):
		}
	})); err != nil {
		return nil, err
	}
	// Reset before any response byte: SO_LINGER 0 turns the close into RST.
	if b.resetHead, err = serveRaw(func(c net.Conn) { rst(c) }); err != nil {
		return nil, err
	}
	if b.resetBody, err = serveRaw(func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: text/plain\r\n\r\n"+strings.Repeat("x", 1000))
		time.Sleep(50 * time.Millisecond)
		rst(c)
	}); err != nil {
		return nil, err
	}
	if b.garbage, err = serveRaw(func(c net.Conn) {
		_, _ = io.WriteString(c, "HELLO THERE\r\n\x00\x01garbage\r\n\r\n")
	}); err != nil {
		return nil, err
	}
	if b.bigHeaders, err = serveRaw(func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("b", 256<<10)+"\r\nContent-Length: 2\r\n\r\nok")
	}); err != nil {
		return nil, err
	}
	l, addr, err := listen()
	if err != nil {
		return nil, err
	}
	l.Close() // refused from now on
	b.dead = addr
	return b, nil
}

func (b *backends) close() {
	for _, c := range b.closers {
		c.Close()
	}
}

// echo answers 200 with the request line it saw; "/big" gets bigBody bytes.
func echo(rw http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 16<<20))
	if strings.HasSuffix(r.URL.Path, "/big") {
		rw.Header().Set("Content-Length", fmt.Sprint(bigBody))
		_, _ = rw.Write(bytes.Repeat([]byte("z"), bigBody))
		return
	}
	fmt.Fprintf(rw, "echo %s %s host=%s\n", r.Method, r.RequestURI, r.Host)
}

// readHead reads a request head (bounded) from c.
func readHead(c net.Conn) error {
	br := bufio.NewReader(io.LimitReader(c, 1<<20))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" || line == "\n" {
			return nil
		}
	}
}

func rst(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
