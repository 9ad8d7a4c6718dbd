package proxy

import (
	"io"
	"os"
)

// An idle keep-alive connection holds no buffer. Its read and write
// buffers (clientReadBuffer each) come from a shared pool when a request
// arrives and go back when the connection waits for the next one: with
// 10,000 idle connections that is 80 MiB not held, as nginx and HAProxy
// do not hold theirs (docs/performance.md, the idle-connections cell).
// The wait costs no extra system call: the read that finds nothing gives
// the buffer back before the netpoller parks it, and the read that
// finds the request takes one (sockIO.rawIdleRead).

func newConnBuffer() any {
	b := make([]byte, clientReadBuffer)
	return &b
}

// takeBuffers gives the connection pooled read and write buffers.
func (c *h1conn) takeBuffers() {
	if c.outP == nil && c.out.buf == nil {
		c.outP = c.s.fwd.connBufs.Get().(*[]byte)
		c.out.buf = (*c.outP)[:0]
	}
	if c.inP == nil && c.in.buf == nil {
		c.inP = c.s.fwd.connBufs.Get().(*[]byte)
		c.in.buf = (*c.inP)[:cap(*c.inP)]
		c.in.r, c.in.w = 0, 0
	}
}

// parkBuffers gives the buffers back while the connection waits for a
// request: nothing is unread and nothing is waiting to be written. A
// buffer a large head grew is not pooled; it is dropped.
func (c *h1conn) parkBuffers() {
	if c.out.relay == nil && len(c.out.buf) == 0 {
		if c.outP != nil {
			c.s.fwd.connBufs.Put(c.outP)
			c.outP = nil
		}
		c.out.buf, c.out.own = nil, nil
	}
	if c.in.r == c.in.w {
		if c.inP != nil {
			c.s.fwd.connBufs.Put(c.inP)
			c.inP = nil
		}
		c.in.buf, c.in.r, c.in.w, c.in.scanned = nil, 0, 0, 0
	}
}

// dropBuffers gives the buffers back when the connection ends.
func (c *h1conn) dropBuffers() {
	if c.out.relay != nil {
		c.out.pool.Put(c.out.relay)
		c.out.relay, c.out.buf, c.out.own = nil, c.out.own, nil
	}
	c.out.buf = c.out.buf[:0]
	c.in.r = c.in.w
	c.parkBuffers()
}

// fillIdle waits for the next request holding no buffer, then reads its
// first bytes into a pooled read buffer and takes a write buffer; limit
// is fill's.
func (c *h1conn) fillIdle(limit int) error {
	if c.in.nc.rb.per > 0 || c.in.nc.rc == nil {
		// A bounded read (never the case between requests) or no raw
		// socket (tests' pipes): read as usual, buffers kept.
		c.takeBuffers()
		return c.in.fill(limit)
	}
	c.parkBuffers()
	p, n, err := c.in.nc.readIdle(&c.s.fwd.connBufs)
	if p != nil {
		c.inP = p
		c.in.buf = (*p)[:cap(*p)]
		c.in.r, c.in.w = 0, 0
	}
	c.takeBuffers()
	if err != nil {
		return err
	}
	return c.in.filled(n, nil)
}

// readIdle reads into a buffer taken from pool only once something has
// arrived, so no buffer is held while the netpoller waits. It returns the
// buffer (nil if none was taken) and what the read returned.
func (s *sockIO) readIdle(pool interface {
	Get() any
	Put(any)
}) (*[]byte, int, error) {
	s.idlePool = pool
	s.rd = rawCall{}
	err := s.rc.Read(s.idleReadFn)
	p, n, errno := s.idleBuf, s.rd.n, s.rd.errno
	s.idleBuf, s.idlePool, s.rd.p = nil, nil, nil
	switch {
	case err != nil:
		return p, 0, err
	case errno != 0:
		return p, 0, os.NewSyscallError("read", errno)
	case n == 0:
		return p, 0, io.EOF
	}
	return p, n, nil
}

// rawIdleRead is rawRead with a buffer taken for the try and given back
// when the try finds nothing (before the netpoller waits).
func (s *sockIO) rawIdleRead(fd uintptr) bool {
	if s.idleBuf == nil {
		s.idleBuf = s.idlePool.Get().(*[]byte)
	}
	s.rd.p = (*s.idleBuf)[:cap(*s.idleBuf)]
	if s.rawRead(fd) {
		return true
	}
	s.idlePool.Put(s.idleBuf)
	s.idleBuf, s.rd.p = nil, nil
	return false
}
