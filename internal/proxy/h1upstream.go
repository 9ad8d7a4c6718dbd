package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/false-systems/rauta/internal/h1"
)

// upConn is one HTTP/1.1 connection to a backend, used by one request at a
// time on the client connection's goroutine: no reader or writer goroutines,
// no channels.
type upConn struct {
	h1.Reader
	addr   string
	idleAt time.Time
}

// boundExchange bounds the waits of a request's exchange (see
// h1conn.exchange); deadline is the route's, zero if none; now is recent.
// check, when set, runs while a read waits (waitBound.check).
func (c *upConn) boundExchange(o *Options, deadline, now time.Time, check func() error) {
	c.Sock.BoundWrites(o.BackendIdleTimeout, deadline)
	if deadline.IsZero() {
		c.Sock.BoundReads(o.BackendResponseTimeout, deadline)
	} else {
		c.Sock.BoundReads(deadline.Sub(now), deadline) // the route's timeout replaces it
	}
	c.Sock.SetReadCheck(check)
}

// boundRelay bounds each wait for more of the response body by
// BackendIdleTimeout, and all of them by the route's deadline.
func (c *upConn) boundRelay(o *Options, deadline time.Time) {
	c.Sock.BoundReads(o.BackendIdleTimeout, deadline)
}

// upstreamPool keeps idle backend connections per endpoint address, last
// used first, so a busy backend keeps a warm set and the rest age out.
type upstreamPool struct {
	dialer      net.Dialer
	maxIdle     int // per address
	idleTimeout time.Duration

	// open counts the pool's connections not closed yet (upconns.go).
	open atomic.Int64

	mu        sync.Mutex
	idle      map[string]*idleList
	lastSweep time.Time
	closed    bool
}

type idleList struct{ conns []*upConn }

// upstreamReadBuffer is the read buffer of each backend connection.
const upstreamReadBuffer = 32 << 10

func newUpstreamPool(dialTimeout time.Duration) *upstreamPool {
	return &upstreamPool{
		dialer:      net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		maxIdle:     1024,
		idleTimeout: 90 * time.Second,
		idle:        map[string]*idleList{},
	}
}

// get returns an idle connection to addr, or dials one. deadline, when set,
// bounds the dial too. reused says the connection served before, so a
// failure on it may be a close the backend sent while it was idle.
// now is the caller's clock reading, recent enough for idle ages.
//
// Every idle connection is peeked at before reuse, however briefly it
// idled: a backend that closed it, or wrote bytes nobody asked for (a 204
// with a body, a buggy server), would otherwise have those bytes read as
// the next request's response. The peek is one raw non-blocking syscall;
// nginx gets the same from its event loop watching idle connections.
func (p *upstreamPool) get(addr string, deadline, now time.Time) (c *upConn, reused bool, err error) {
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
	return &upConn{Reader: h1.Reader{Sock: h1.NewSocket(p.counted(nc)), Buf: make([]byte, upstreamReadBuffer)}, addr: addr}, false, nil
}

// pop takes the most recently pooled connection to addr, or nil.
func (p *upstreamPool) pop(addr string) *upConn {
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

// put returns a connection whose last response was read completely; now
// is the caller's recent clock reading.
func (p *upstreamPool) put(c *upConn, now time.Time) {
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
func (p *upstreamPool) sweep(now time.Time) {
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

// close closes every idle connection; later puts close theirs.
func (p *upstreamPool) close() {
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
