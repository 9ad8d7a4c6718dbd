package proxy

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// upConn is one HTTP/1.1 connection to a backend, used by one request at a
// time on the client connection's goroutine: no reader or writer goroutines,
// no channels.
type upConn struct {
	bufConn
	addr   string
	idleAt time.Time
}

// upstreamPool keeps idle backend connections per endpoint address, last
// used first, so a busy backend keeps a warm set and the rest age out.
type upstreamPool struct {
	dialer      net.Dialer
	maxIdle     int // per address
	idleTimeout time.Duration

	mu        sync.Mutex
	idle      map[string]*idleList
	lastSweep time.Time
	closed    bool
}

type idleList struct{ conns []*upConn }

// staleCheckAfter: a connection idle longer than this is checked with a
// non-blocking peek before reuse, because backends close idle keep-alive
// connections on their own timers. Busier connections skip the syscall;
// the retry in forward covers the rare one closed in between.
const staleCheckAfter = time.Second

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
func (p *upstreamPool) get(addr string, deadline, now time.Time) (c *upConn, reused bool, err error) {
	p.mu.Lock()
	if l := p.idle[addr]; l != nil {
		for len(l.conns) > 0 {
			n := len(l.conns) - 1
			c, l.conns[n] = l.conns[n], nil
			l.conns = l.conns[:n]
			idle := now.Sub(c.idleAt)
			if idle < p.idleTimeout && (idle < staleCheckAfter || c.open()) {
				break
			}
			c.nc.Close()
			c = nil
		}
	}
	p.mu.Unlock()
	if c != nil {
		return c, true, nil
	}
	d := p.dialer
	if !deadline.IsZero() {
		d.Deadline = deadline
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &upConn{bufConn: bufConn{nc: nc, buf: make([]byte, upstreamReadBuffer)}, addr: addr}, false, nil
}

// put returns a connection whose last response was read completely; now
// is the caller's recent clock reading.
func (p *upstreamPool) put(c *upConn, now time.Time) {
	c.idleAt = now
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.nc.Close()
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
		c.nc.Close()
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
				c.nc.Close()
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
			c.nc.Close()
		}
		delete(p.idle, addr)
	}
}

// open peeks at the socket without blocking: an idle keep-alive connection
// has nothing to read, so EOF or any data means the backend closed it (or
// broke the protocol).
func (c *upConn) open() bool {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = rerr == syscall.EAGAIN
		return true // never wait
	})
	return err == nil && open
}
