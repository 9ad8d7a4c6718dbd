package h2

import (
	"encoding/binary"
	"runtime"
	"time"

	"golang.org/x/net/http2"
)

// The connection's output: every goroutine appends whole frames to c.out
// under c.mu, and writeLoop sends what has gathered in one write. While a
// write is in progress the next batch gathers, so under load many streams'
// frames share one TLS record and one system call.

// maxOut bounds the bytes waiting to be written. Larger batches gain
// nothing: TLS sends them as 16 KiB records, one write each. A handler that would pass
// it waits (backpressure); control frames the reader queues in reply to a
// client that does not read (a PING flood) end the connection past
// 4*maxOut instead.
const maxOut = 256 << 10

// keptOut is the largest output buffer an idle connection keeps; larger
// ones go to the server's pool (Server.outs) until a busy connection takes
// them.
const keptOut = 64 << 10

// yieldBelow: a batch smaller than this, with other streams open, waits
// for the handlers already runnable before it is written (writeLoop). A
// larger one is worth its own write at once.
const yieldBelow = 16 << 10

// bigOut is the capacity of a pooled output buffer: a full batch and the
// frame that passed maxOut.
const bigOut = maxOut + 64<<10

// keepOrPool returns b if an idle connection may keep it, else pools it
// (when it is the pool's size) and returns nil.
func (s *Server) keepOrPool(b []byte) []byte {
	if cap(b) <= keptOut {
		return b
	}
	if cap(b) == bigOut {
		// A new slice header for the pool: taking b's address would move
		// b to the heap on every call, the common ones that keep it too
		// (three allocations per stream when a connection goes idle).
		p := new([]byte)
		*p = b[:0]
		s.outs.Put(p)
	}
	return nil
}

// getOut returns a large output buffer from the pool or a new one.
func (s *Server) getOut() []byte {
	if b, ok := s.outs.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 0, bigOut)
}

// writeLoop sends c.out until the connection closes, then closes it.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	// The write deadline is re-armed when a quarter of the timeout (at
	// most a second) has passed since it was set, not for every write, so
	// a write is cut after between three quarters of WriteTimeout and all
	// of it.
	timeout := c.srv.writeTimeout()
	rearm := min(time.Second, timeout/4)
	var armed time.Time
	for {
		c.mu.Lock()
		for len(c.out) == 0 && !c.closing {
			c.writerIdle = true
			c.wcond.Wait()
		}
		c.writerIdle = false
		if c.active > 1 && len(c.out) < yieldBelow && !c.closing {
			// The handler that queued these frames woke this goroutine,
			// and the scheduler runs a goroutine woken that way next,
			// ahead of the other handlers already runnable: without the
			// yield the writer wrote once per response (0.9 writes per
			// request at h2 m=64 1 KiB; HAProxy 0.4). After it, the
			// handlers that are ready add their frames first, and one
			// write carries them all.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
		}
		if len(c.out) == 0 { // closing, all sent
			c.mu.Unlock()
			c.nc.Close()
			return
		}
		b := c.out
		c.out, c.spare = c.spare[:0], nil
		c.peakOut = max(c.peakOut, len(b))
		c.ctrlQueued = 0
		c.mu.Unlock()

		now := time.Now()
		if now.Sub(armed) > rearm {
			armed = now
			c.nc.SetWriteDeadline(now.Add(timeout)) //nolint:errcheck // a failed write reports it
		}
		_, err := c.nc.Write(b)

		c.mu.Lock()
		c.spare = b[:0]
		if c.active == 0 || cap(b) > keptOut {
			c.armTrim() // trim gives it back once it is not needed
		}
		if err != nil {
			c.fail(err)
			c.out = nil
			c.mu.Unlock()
			c.nc.Close()
			return
		}
		c.drained.Broadcast()
		c.mu.Unlock()
	}
}

// queued wakes the writer after frames were appended. Callers hold c.mu.
func (c *conn) queued() {
	if c.writerIdle {
		c.writerIdle = false
		c.wcond.Signal()
	}
}

// appendFrameHeader appends the 9-byte frame header (RFC 9113 4.1).
func appendFrameHeader(b []byte, length int, t http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(t), byte(flags),
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

// The frame writers below append to c.out; callers hold c.mu and call
// c.queued when done. The control frames a client can ask for (acks,
// RST_STREAM, WINDOW_UPDATE) count in c.ctrlQueued until the writer takes
// them.

func (c *conn) writeSettings(s ...http2.Setting) {
	c.out = appendFrameHeader(c.out, 6*len(s), http2.FrameSettings, 0, 0)
	for _, st := range s {
		c.out = binary.BigEndian.AppendUint16(c.out, uint16(st.ID))
		c.out = binary.BigEndian.AppendUint32(c.out, st.Val)
	}
}

func (c *conn) writeSettingsAck() {
	c.ctrlQueued++
	c.out = appendFrameHeader(c.out, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
}

func (c *conn) writePingAck(data [8]byte) {
	c.ctrlQueued++
	c.out = appendFrameHeader(c.out, 8, http2.FramePing, http2.FlagPingAck, 0)
	c.out = append(c.out, data[:]...)
}

func (c *conn) writeWindowUpdate(id uint32, n uint32) {
	c.ctrlQueued++
	c.out = appendFrameHeader(c.out, 4, http2.FrameWindowUpdate, 0, id)
	c.out = binary.BigEndian.AppendUint32(c.out, n&0x7fffffff)
}

func (c *conn) writeRSTStream(id uint32, code http2.ErrCode) {
	c.ctrlQueued++
	c.out = appendFrameHeader(c.out, 4, http2.FrameRSTStream, 0, id)
	c.out = binary.BigEndian.AppendUint32(c.out, uint32(code))
}

func (c *conn) writeGoAway(last uint32, code http2.ErrCode, debug string) {
	c.out = appendFrameHeader(c.out, 8+len(debug), http2.FrameGoAway, 0, 0)
	c.out = binary.BigEndian.AppendUint32(c.out, last&0x7fffffff)
	c.out = binary.BigEndian.AppendUint32(c.out, uint32(code))
	c.out = append(c.out, debug...)
}

func (c *conn) writeData(id uint32, p []byte, end bool) {
	var flags http2.Flags
	if end {
		flags = http2.FlagDataEndStream
	}
	c.reserve(9 + len(p))
	c.noOp.dataSent++
	c.out = appendFrameHeader(c.out, len(p), http2.FrameData, flags, id)
	c.out = append(c.out, p...)
}

// trimEvery is how often a connection gives back what the past period did
// not need (trim): output buffers past keptOut, and recycled streams
// (recycle). Keeping them between bursts saves regrowing them: with many
// streams per client burst (h2load -m64) every stream of a burst often
// ends before the client's next requests arrive, and regrowing the batch
// by append after each burst was about 450 bytes of garbage per request.
// Trimming to what the last period used bounds what a client keeps held
// by one burst followed by a trickle of small requests.
const trimEvery = time.Second

// armTrim schedules trim unless it is scheduled. Callers hold c.mu.
func (c *conn) armTrim() {
	if c.trimPending || c.dead != nil {
		return
	}
	c.trimPending = true
	if c.trimTimer == nil {
		c.trimTimer = time.AfterFunc(trimEvery, c.trim)
		return
	}
	c.trimTimer.Reset(trimEvery)
}

// trim gives back what the connection held through the last period
// without needing it: output buffers past keptOut when no batch was
// larger than keptOut, and recycled streams beyond the most that were
// open at once. It runs again while anything is left to give back.
func (c *conn) trim() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trimPending = false
	if c.dead != nil {
		return
	}
	if c.peakOut <= keptOut {
		c.releaseOut()
	}
	if keep := c.peakActive; len(c.free) > keep {
		clear(c.free[keep:])
		c.free = c.free[:keep]
	}
	c.peakOut, c.peakActive = 0, c.active
	if len(c.free) > 0 || cap(c.out) > keptOut || cap(c.spare) > keptOut {
		c.armTrim()
	}
}

// releaseOut gives large output buffers back to the server's pool when the
// connection has no open stream, so an idle connection keeps little while
// a busy one keeps its batch buffers instead of regrowing them. Callers
// hold c.mu.
func (c *conn) releaseOut() {
	c.spare = c.srv.keepOrPool(c.spare)
	if len(c.out) == 0 {
		c.out = c.srv.keepOrPool(c.out)
	}
}

// reserve makes room for n more bytes of output. Past keptOut the batch
// moves into a pooled large buffer at once, instead of append doubling
// it (and copying it) several times in every burst.
func (c *conn) reserve(n int) {
	need := len(c.out) + n
	if need <= cap(c.out) || need <= keptOut || need > bigOut {
		return // room, or small enough for append, or beyond the pool's size
	}
	nb := append(c.srv.getOut(), c.out...)
	c.srv.keepOrPool(c.out)
	c.out = nb
}

// writeHeaderBlock sends an encoded header block as HEADERS and, when it is
// larger than the client's frame size, CONTINUATION frames.
func (c *conn) writeHeaderBlock(id uint32, block []byte, end bool) {
	flags := http2.Flags(0)
	if end {
		flags |= http2.FlagHeadersEndStream
	}
	t := http2.FrameHeaders
	for {
		n := min(len(block), int(c.peerMaxFrame))
		f := flags
		if n == len(block) {
			f |= http2.FlagHeadersEndHeaders // same bit as FlagContinuationEndHeaders
		}
		c.out = appendFrameHeader(c.out, n, t, f, id)
		c.out = append(c.out, block[:n]...)
		block = block[n:]
		if len(block) == 0 {
			return
		}
		t, flags = http2.FrameContinuation, 0
	}
}
