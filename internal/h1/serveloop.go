package h1

import "errors"

// A keep-alive connection's requests without a body are served inside one
// read call into the netpoller (Socket.ReadLoop): the read that brings a
// request, the whole exchange with the backend, the response, and the
// wait for the next request, which then needs no read that finds nothing
// first (ReadLoop says why). Anything that reads the client beyond its
// head (a body, a head in pieces, pipelined bytes) leaves the loop and is
// served as before; the next wait then starts a new loop.

// loopState is what serveInRead's loop hands back to Serve.
type loopState struct {
	// head is a head read in the loop and left for Serve to serve, whole
	// in In's buffer before it; parsed: it is parsed into Req already.
	head   string
	parsed bool
	// next is what a request served in the loop said to do, when not Keep.
	next Next
	// err is the read's error that ended the loop.
	err error
}

// nextHead returns the next request head for Serve to serve, or, when
// requests were served inside a read loop and the last one ends the
// connection, "" and what it said (Close or Handoff).
func (c *Conn) nextHead() (string, Next, error) {
	if c.In.R == c.In.W && c.In.Sock.Raw() && !c.In.Sock.ReadsBounded() {
		head, next, err := c.serveInRead()
		if err != nil || head != "" || next != Keep || c.In.R == c.In.W {
			return head, next, err
		}
		// A head in pieces, or pipelined bytes: read on as before.
	}
	c.loop.parsed = false
	head, err := c.readRequestHead()
	return head, Keep, err
}

// serveInRead serves requests without a body inside one ReadLoop until one
// needs more than that (see above), the connection ends, or a wait fails.
// It returns a head to serve outside the loop, if any.
func (c *Conn) serveInRead() (string, Next, error) {
	if err := c.armIdleDeadline(); err != nil {
		return "", Keep, err
	}
	c.parkBuffers()
	c.loop = loopState{}
	err := c.In.Sock.ReadLoop(c.loopBufFn, c.loopGotFn)
	if err == nil {
		err = c.loop.err
	}
	return c.loop.head, c.loop.next, err
}

// loopBuf is the loop's read buffer: the pooled one, taken for each read
// (loopGot gives it back when the read finds nothing).
func (c *Conn) loopBuf() []byte {
	c.takeBuffers()
	return c.In.Buf[c.In.W:]
}

// loopGot takes a read's outcome: it serves the request the read brought
// when it has no body, then asks to wait for the next one; anything else
// ends the loop.
func (c *Conn) loopGot(n int, err error) (wait bool) {
	if errors.Is(err, ErrWouldBlock) {
		c.parkBuffers() // nothing came: hold no buffer while waiting
		return true
	}
	if err != nil {
		c.loop.err = err
		return false
	}
	c.In.W += n
	head, ok := c.In.Head(&c.reqHeadBuf)
	if !ok {
		return false // a head in pieces: readRequestHead reads the rest
	}
	if head, err = c.headWithin(head, c.cfg.MaxHeaderBytes); err != nil {
		c.loop.err = err
		return false
	}
	if c.tooManyFields(head) || !ParseRequestHead(head, &c.Req) {
		c.loop.head = head // Serve refuses it or hands it off
		return false
	}
	if c.Req.ContentLength != 0 {
		c.loop.head, c.loop.parsed = head, true // its body is read outside the loop
		return false
	}
	c.beginRequest()
	if next := c.h.ServeRequest(len(head)); next != Keep {
		c.loop.next = next
		return false
	}
	if c.In.R != c.In.W {
		return false // pipelined bytes: Serve reads on
	}
	if !c.becomeIdle() {
		return false // closing: Serve sees it too and ends
	}
	if err := c.armIdleDeadline(); err != nil {
		c.loop.err = err
		return false
	}
	c.parkBuffers()
	return true
}
