package proxy

// An idle keep-alive connection holds no buffer. Its read and write
// buffers (clientReadBuffer each) come from a shared pool when a request
// arrives and go back when the connection waits for the next one: with
// 10,000 idle connections that is 80 MiB not held, as nginx and HAProxy
// do not hold theirs (docs/performance.md, the idle-connections cell).
// The wait costs no extra system call: the read that finds nothing gives
// the buffer back before the netpoller parks it, and the read that
// finds the request takes one (Socket.ReadIdle).

func newConnBuffer() any {
	b := make([]byte, clientReadBuffer)
	return &b
}

// takeBuffers gives the connection pooled read and write buffers.
func (c *h1conn) takeBuffers() {
	if c.outP == nil && c.out.Buf == nil {
		c.outP = c.s.fwd.connBufs.Get().(*[]byte)
		c.out.Buf = (*c.outP)[:0]
	}
	if c.inP == nil && c.in.Buf == nil {
		c.inP = c.s.fwd.connBufs.Get().(*[]byte)
		c.in.Buf = (*c.inP)[:cap(*c.inP)]
		c.in.R, c.in.W = 0, 0
	}
}

// parkBuffers gives the buffers back while the connection waits for a
// request: nothing is unread and nothing is waiting to be written. A
// buffer a large head grew is not pooled; it is dropped.
func (c *h1conn) parkBuffers() {
	if c.out.Idle() {
		if c.outP != nil {
			c.s.fwd.connBufs.Put(c.outP)
			c.outP = nil
		}
		c.out.Detach()
	}
	if c.in.R == c.in.W {
		if c.inP != nil {
			c.s.fwd.connBufs.Put(c.inP)
			c.inP = nil
		}
		c.in.Buf = nil
		c.in.Reset()
	}
}

// dropBuffers gives the buffers back when the connection ends.
func (c *h1conn) dropBuffers() {
	c.out.Discard()
	c.in.R = c.in.W
	c.parkBuffers()
}

// fillIdle waits for the next request holding no buffer, then reads its
// first bytes into a pooled read buffer and takes a write buffer; limit
// is fill's.
func (c *h1conn) fillIdle(limit int) error {
	if c.in.Sock.ReadsBounded() || !c.in.Sock.Raw() {
		// A bounded read (never the case between requests) or no raw
		// socket (tests' pipes): read as usual, buffers kept.
		c.takeBuffers()
		return c.in.Fill(limit)
	}
	c.parkBuffers()
	p, n, err := c.in.Sock.ReadIdle(&c.s.fwd.connBufs)
	if p != nil {
		c.inP = p
		c.in.Buf = (*p)[:cap(*p)]
		c.in.R, c.in.W = 0, 0
	}
	c.takeBuffers()
	if err != nil {
		return err
	}
	return c.in.Filled(n, nil)
}
