package upstream

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/false-systems/rauta/internal/h1"
)

// Conn is one HTTP/1.1 connection to a backend, used by one request at a
// time on the client connection's goroutine: no reader or writer goroutines,
// no channels.
type Conn struct {
	h1.Reader
	addr   string
	idleAt time.Time
}

// boundExchange bounds the waits of a request's exchange: each wait for
// the backend to take more of the request by idleTimeout, the wait for the
// response head by responseTimeout or, when deadline (the route's, zero if
// none) is set, by the deadline in its place; all of them by deadline. now
// is recent. check, when set, runs while a read waits (h1.Socket.SetReadCheck):
// the HTTP/1.1 engine's notices a client that went away.
func (c *Conn) boundExchange(responseTimeout, idleTimeout time.Duration, deadline, now time.Time, check func() error) {
	c.Sock.BoundWrites(idleTimeout, deadline)
	if deadline.IsZero() {
		c.Sock.BoundReads(responseTimeout, deadline)
	} else {
		c.Sock.BoundReads(deadline.Sub(now), deadline) // the route's timeout replaces it
	}
	c.Sock.SetReadCheck(check)
}

// boundRelay bounds each wait for more of the response body by
// idleTimeout, and all of them by the route's deadline.
func (c *Conn) boundRelay(idleTimeout time.Duration, deadline time.Time) {
	c.Sock.BoundReads(idleTimeout, deadline)
}

// earlyAnswer reads the response of a backend that stopped taking the
// request body (a write to it failed): one that answers before reading a
// large upload (413, 401) and closes. It reports whether a final response
// head was there; the connection is not reused after it.
func (c *Conn) earlyAnswer(headRequest bool, limit int, scratch *[]byte, rs *h1.ResponseHead) bool {
	if c.ReadFinalHead(headRequest, limit, scratch, rs) != nil {
		return false
	}
	rs.CloseAfter = true
	return true
}

// interrupt ends the connection's read or write in progress, for a client
// that went away or a request timeout. The connection is not reused after.
func (c *Conn) interrupt() { c.Sock.Interrupt() }

// Pool keeps idle backend connections per endpoint address, last
// used first, so a busy backend keeps a warm set and the rest age out.
type Pool struct {
	dialer      net.Dialer
	maxIdle     int // per address
	idleTimeout time.Duration

	// open counts the pool's connections not closed yet (metrics.go).
	open atomic.Int64

	mu        sync.Mutex
	idle      map[string]*idleList
	lastSweep time.Time
	closed    bool
}

type idleList struct{ conns []*Conn }

// upstreamReadBuffer is the read buffer of each backend connection.
const upstreamReadBuffer = 32 << 10

// NewPool makes an empty pool whose dials time out after dialTimeout
// (and at a request's deadline), keeping up to 1,024 idle connections per
// address for up to 90 s each.
func NewPool(dialTimeout time.Duration) *Pool {
	return &Pool{
		dialer:      net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		maxIdle:     1024,
		idleTimeout: 90 * time.Second,
		idle:        map[string]*idleList{},
	}
}

// Get returns an idle connection to addr, or dials one. deadline, when set,
// bounds the dial too. reused says the connection served before, so a
// failure on it may be a close the backend sent while it was idle.
// now is the caller's clock reading, recent enough for idle ages.
//
// Every idle connection is peeked at before reuse, however briefly it
// idled: a backend that closed it, or wrote bytes nobody asked for (a 204
// with a body, a buggy server), would otherwise have those bytes read as
// the next request's response. The peek is one raw non-blocking syscall;
// nginx gets the same from its event loop watching idle connections.
func (p *Pool) Get(addr string, deadline, now time.Time) (c *Conn, reused bool, err error) {
	for {
		c = p.pop(addr)
		if c == nil {
			break
		}
		if now.Sub(c.idleAt) < p.idleTimeout && c.Sock.Idle() {
			return c, true, nil
		}
		c.Sock.Close()
	}
	d := p.dialer
	if !deadline.IsZero() {
		d.Deadline = deadline
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &Conn{Reader: h1.Reader{Sock: h1.NewSocket(p.counted(nc)), Buf: make([]byte, upstreamReadBuffer)}, addr: addr}, false, nil
}

// pop takes the most recently pooled connection to addr, or nil.
func (p *Pool) pop(addr string) *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[addr]
	if l == nil || len(l.conns) == 0 {
		return nil
	}
	n := len(l.conns) - 1
	c := l.conns[n]
	l.conns[n] = nil
	l.conns = l.conns[:n]
	return c
}

// Put returns a connection whose last response was read completely; now
// is the caller's recent clock reading.
func (p *Pool) Put(c *Conn, now time.Time) {
	c.idleAt = now
	c.Sock.SetReadCheck(nil) // it referred to the request's client
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Sock.Close()
		return
	}
	if now.Sub(p.lastSweep) > p.idleTimeout/2 {
		p.sweep(now)
	}
	l := p.idle[c.addr]
	if l == nil {
		l = &idleList{}
		p.idle[c.addr] = l
	}
	if len(l.conns) >= p.maxIdle {
		c.Sock.Close()
		return
	}
	l.conns = append(l.conns, c)
}

// sweep closes connections idle past the timeout, so endpoints that left
// the configuration do not keep sockets open. Callers hold p.mu.
func (p *Pool) sweep(now time.Time) {
	p.lastSweep = now
	for addr, l := range p.idle {
		keep := l.conns[:0]
		for _, c := range l.conns {
			if now.Sub(c.idleAt) < p.idleTimeout {
				keep = append(keep, c)
			} else {
				c.Sock.Close()
			}
		}
		clear(l.conns[len(keep):])
		l.conns = keep
		if len(keep) == 0 {
			delete(p.idle, addr)
		}
	}
}

// Close closes every idle connection; later puts close theirs.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, l := range p.idle {
		for _, c := range l.conns {
			c.Sock.Close()
		}
		delete(p.idle, addr)
	}
}
