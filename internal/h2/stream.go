package h2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sync"

	"golang.org/x/net/http2"
)

// stream is one request and its response. Its fields are guarded by c.mu;
// the handler's goroutine owns rw.
type stream struct {
	c    *conn
	id   uint32
	cond sync.Cond // the body reader waits for data
	// prev and next link the connection's running streams (conn.running):
	// those whose handler has not returned.
	prev, next *stream

	sendWindow int64 // what the client lets us send on this stream
	recvWindow int64 // what the client may still send unread
	recvUnack  int64 // read body bytes not yet returned by WINDOW_UPDATE

	declared int64  // the request's Content-Length, -1 if none
	received int64  // request body bytes received
	body     []byte // received, unread
	bodyOff  int
	// remoteDone: the client ended its side (END_STREAM); bodyClosed: the
	// handler closed the body or returned, so data is dropped.
	remoteDone, bodyClosed bool
	// waitBody: the handler waits in Body.Read for data; waitWindow: it
	// waits in a write for flow-control window (stall.go).
	waitBody, waitWindow bool
	trailer              http.Header // the request's trailers
	expectContinue       bool

	resetErr    error // why the stream was reset, nil while it is not
	clientReset bool  // the client sent RST_STREAM

	stall stall // stall.go

	rw responseWriter
	// reqCtx is the request's context, carrying id (streamid.go).
	reqCtx *streamContext
	// req and url back the handler's request, so that a stream and its
	// request are one allocation (newRequest).
	req http.Request
	url url.URL
	// header and values back req.Header, body's array the request body; a
	// recycled stream keeps them, emptied, for its next request.
	header http.Header
	values []string
	// gen counts the stream's recycles. A request body handle holds the
	// gen it was made for, so one kept past its request (a transport may
	// close or even read a body after its round trip returned) finds its
	// stream gone instead of reading the next request's body.
	gen uint32
	// readers counts goroutines inside the body's Read (waiting there
	// included); handlerDone is set once the handler returned. The
	// stream is recycled when both say nothing uses it (release).
	readers     int
	handlerDone bool
}

// cancel ends the request's context.
func (st *stream) cancel() { st.reqCtx.cancel(context.Canceled) }

// maxFreeStreams bounds the finished streams a connection keeps to reuse;
// trim keeps no more than were open at once in the last period.
const maxFreeStreams = maxIdleWorkers

// newStream returns a stream for a new request: one the connection
// recycled, or a new one. Callers hold c.mu.
func (c *conn) newStream() *stream {
	if n := len(c.free); n > 0 {
		st := c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
		return st
	}
	return &stream{c: c}
}

// recycle keeps st, emptied, for a later request of the connection: a
// stream was a kilobyte of garbage per request, a third of the proxy's
// HTTP/2 allocation and so of its collections, which made its p99.
// Callers make sure nothing uses st any more (release): its handler has
// returned (or never ran) and no goroutine is inside its body's Read; a
// body handle kept past that finds the stream's gen moved on. The
// request's context is not part of the stream. What net/http asks of
// handlers, that they neither use the ResponseWriter nor keep the request
// after they return, holds for the proxy's handler; see Server. Callers
// hold c.mu.
func (c *conn) recycle(st *stream) {
	if len(c.free) >= maxFreeStreams || c.dead != nil {
		return
	}
	header, values, body := st.header, st.values, st.body[:0]
	if len(header) > maxKeptHeader {
		header = nil // a map keeps the room it grew to
	} else {
		clear(header)
	}
	if cap(values) > maxKeptHeader {
		values = nil
	} else {
		clear(values)
		values = values[:0]
	}
	if cap(body) > maxKeptBody {
		body = nil
	}
	*st = stream{c: c, header: header, values: values, body: body, gen: st.gen + 1}
	c.free = append(c.free, st)
	c.armTrim() // the free list shrinks to what the connection uses
}

// maxKeptBody bounds the request body array a recycled stream keeps (a
// gRPC call's message usually fits).
const maxKeptBody = 4 << 10

// release is the end of st's handler: the stream is recycled now, or by
// the last goroutine to leave its body's Read. Callers hold c.mu.
func (c *conn) release(st *stream) {
	st.handlerDone = true
	if st.readers == 0 {
		c.recycle(st)
	}
}

// run serves the request on its own goroutine.
func (st *stream) run(h http.Handler, req *http.Request) {
	defer st.finish(req)
	h.ServeHTTP(&st.rw, req)
}

// finish ends the stream after the handler returned or panicked: the
// response ends (or, after a panic, the stream is reset), and a request body
// the handler left unread is refused with RST_STREAM NO_ERROR (RFC 9113
// 8.1).
func (st *stream) finish(req *http.Request) {
	c := st.c
	panicked := recover()
	if panicked == nil {
		st.rw.finish()
	}
	st.rw.release()
	if err, ok := panicked.(error); panicked != nil && (!ok || !errors.Is(err, http.ErrAbortHandler)) {
		buf := make([]byte, 64<<10)
		buf = buf[:runtime.Stack(buf, false)]
		c.srv.logger().Error("http2 handler panicked", "remote", c.remoteAddr, "method", req.Method,
			"url", req.URL.String(), "panic", panicked, "stack", string(buf))
	}
	c.mu.Lock()
	if st.resetErr == nil && panicked == nil {
		c.resets.give()
	}
	switch {
	case panicked != nil && st.resetErr == nil:
		c.sendReset(st.id, http2.ErrCodeInternal)
	case st.resetErr == nil && !st.remoteDone:
		c.sendReset(st.id, http2.ErrCodeNo)
	}
	st.bodyClosed = true
	st.dropBody()
	st.cond.Broadcast() // a Read still waiting (a transport's writer) returns now
	c.streamDone(st)
	c.removeRunning(st)
	c.queued()
	c.mu.Unlock()
	st.cancel()
}

// reset ends the stream because of err: reads and writes fail with it and
// the request's context ends. Callers hold c.mu.
func (st *stream) reset(err error) {
	if st.resetErr != nil {
		return
	}
	st.resetErr = err
	st.clientReset = errors.Is(err, errClientReset)
	st.cond.Broadcast()
	st.c.sendCond.Broadcast()
	st.c.drained.Broadcast()
	st.cancel()
}

// endOfBody handles END_STREAM from the client. Callers hold c.mu.
func (st *stream) endOfBody() error {
	st.remoteDone = true
	if st.declared >= 0 && st.received != st.declared {
		st.c.streamErrorLocked(st.id, http2.ErrCodeProtocol)
		return nil
	}
	st.cond.Broadcast()
	return nil
}

// consumed returns n read (or dropped) body bytes to the client's windows
// once enough gathered to be worth a WINDOW_UPDATE. Callers hold c.mu.
func (st *stream) consumed(n int64) {
	c := st.c
	c.returnConnWindow(n)
	if st.remoteDone || st.resetErr != nil {
		return // the client sends no more on this stream
	}
	st.recvUnack += n
	if st.recvUnack >= streamRecvWindow/4 {
		c.writeWindowUpdate(st.id, uint32(st.recvUnack))
		st.recvWindow += st.recvUnack
		st.recvUnack = 0
	}
}

// dropBody discards unread body bytes, returning their window.
func (st *stream) dropBody() {
	if n := len(st.body) - st.bodyOff; n > 0 {
		st.c.returnConnWindow(int64(n))
	}
	st.body, st.bodyOff = st.body[:0], 0
}

// requestBody is the handler's view of the request body, a handle of its
// own: the stream behind it is recycled, the handle is not.
type requestBody struct {
	st  *stream
	gen uint32 // st.gen when the request came; another gen: the body is gone
	// req gets the trailers when the body ends, on the handler's
	// goroutine, as net/http does.
	req *http.Request
}

var errBodyClosed = errors.New("h2: request body closed")

func (b *requestBody) Read(p []byte) (int, error) {
	st := b.st
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.gen != b.gen {
		return 0, errBodyClosed
	}
	st.readers++
	defer st.leaveRead()
	if st.expectContinue {
		st.expectContinue = false
		st.rw.writeInformational(http.StatusContinue, nil)
	}
	for {
		switch {
		case st.bodyClosed:
			return 0, errBodyClosed
		case st.bodyOff < len(st.body):
			n := copy(p, st.body[st.bodyOff:])
			st.bodyOff += n
			if st.bodyOff == len(st.body) {
				st.body, st.bodyOff = st.body[:0], 0
			}
			st.consumed(int64(n))
			c.queued()
			return n, nil
		case st.resetErr != nil:
			return 0, st.resetErr
		case st.remoteDone:
			for k, v := range st.trailer {
				if b.req.Trailer == nil {
					b.req.Trailer = http.Header{}
				}
				b.req.Trailer[k] = v
			}
			st.trailer = nil
			return 0, io.EOF
		case c.dead != nil:
			return 0, c.dead
		}
		st.waitBody = true
		c.watchStalls()
		st.cond.Wait()
		st.waitBody = false
	}
}

// leaveRead counts a goroutine out of Read and recycles the stream if it
// was the last thing using it. Callers hold c.mu.
func (st *stream) leaveRead() {
	st.readers--
	if st.readers == 0 && st.handlerDone {
		st.c.recycle(st)
	}
}

// Buffered reports that the rest of the body, and its end, have arrived:
// Read will not wait on the client. A proxy sends such a body on the
// goroutine that forwards the request instead of starting one.
func (b *requestBody) Buffered() bool {
	st := b.st
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	return st.gen != b.gen || st.remoteDone || st.bodyClosed || st.resetErr != nil || st.c.dead != nil
}

func (b *requestBody) Close() error {
	st := b.st
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	if st.gen != b.gen {
		return nil
	}
	st.bodyClosed = true
	st.dropBody()
	st.cond.Broadcast() // a Read waiting on another goroutine returns now
	st.c.queued()
	return nil
}
