package h1

// An idle keep-alive connection holds no buffer. Its read and write
// buffers (ConnBufferSize each) come from a shared pool when a request
// arrives and go back when the connection waits for the next one: with
// 10,000 idle connections that is 80 MiB not held, as nginx and HAProxy
// do not hold theirs (docs/performance.md, the idle-connections cell).
// The wait costs no extra system call: the read that finds nothing gives
// the buffer back before the netpoller parks it, and the read that
// finds the request takes one (Socket.ReadIdle).

// ConnBufferSize is the size of a connection's pooled read and write
// buffers; the read buffer grows up to MaxHeaderBytes for a large head.
const ConnBufferSize = 4 << 10

// NewConnBuffer is Config.Buffers' New.
func NewConnBuffer() any {
	b := make([]byte, ConnBufferSize)
	return &b
}

// takeBuffers gives the connection pooled read and write buffers.
func (c *Conn) takeBuffers() {
	if c.outP == nil && c.Out.Buf == nil {
		c.outP = c.cfg.Buffers.Get().(*[]byte)
		c.Out.Buf = (*c.outP)[:0]
	}
	if c.inP == nil && c.In.Buf == nil {
		c.inP = c.cfg.Buffers.Get().(*[]byte)
		c.In.Buf = (*c.inP)[:cap(*c.inP)]
		c.In.R, c.In.W = 0, 0
	}
}

// parkBuffers gives the buffers back while the connection waits for a
// request: nothing is unread and nothing is waiting to be written. A
// buffer a large head grew is not pooled; it is dropped.
func (c *Conn) parkBuffers() {
	if c.Out.Idle() {
		if c.outP != nil {
			c.cfg.Buffers.Put(c.outP)
			c.outP = nil
		}
		c.Out.Detach()
	}
	if c.In.R == c.In.W {
		if c.inP != nil {
			c.cfg.Buffers.Put(c.inP)
			c.inP = nil
		}
		c.In.Buf = nil
		c.In.Reset()
	}
}

// dropBuffers gives the buffers back when the connection ends.
func (c *Conn) dropBuffers() {
	c.Out.Discard()
	c.In.R = c.In.W
	c.parkBuffers()
}

// fillIdle waits for the next request holding no buffer, then reads its
// first bytes into a pooled read buffer and takes a write buffer; limit
// is fill's.
func (c *Conn) fillIdle(limit int) error {
	if c.In.Sock.ReadsBounded() || !c.In.Sock.Raw() {
		// A bounded read (never the case between requests) or no raw
		// socket (tests' pipes): read as usual, buffers kept.
		c.takeBuffers()
		return c.In.Fill(limit)
	}
	c.parkBuffers()
	p, n, err := c.In.Sock.ReadIdle(c.cfg.Buffers)
	if p != nil {
		c.inP = p
		c.In.Buf = (*p)[:cap(*p)]
		c.In.R, c.In.W = 0, 0
	}
	c.takeBuffers()
	if err != nil {
		return err
	}
	return c.In.Filled(n, nil)
}
