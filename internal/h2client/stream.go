package h2client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/h1"
)

// stream is one request and its response; it is the response's Body.
// Fields below mu are guarded by the connection's mu.
type stream struct {
	cc      *conn
	ctx     context.Context
	req     *http.Request
	body    io.ReadCloser  // the request body, nil for none
	resp    *http.Response // written by the reader only
	headErr error
	// wake tells RoundTrip that the head (or an error) arrived, then the
	// body's reader that data or the end did.
	wake    chan struct{}
	interim int // the reader's: 1xx responses so far
	// listed: the caller takes the response head as a list (fields,
	// RoundTripFields), so no header map is made for it.
	listed   bool
	fields   h1.Fields
	bodyOnce sync.Once

	// under cc.mu
	id                 uint32
	registered         bool
	stop               func() bool // stops the context watch, nil for none
	headDone           bool
	sendDone, recvDone bool
	forgotten          bool
	sendErr            error
	readErr            error
	sendWindow         int32
	recvAvail          int32 // receive window left
	unread             int32 // bytes read by the body's reader not yet given back
	// chunks hold the body data not read yet, from off in the first.
	chunks          []*[]byte
	off             int
	first           [2]*[]byte // chunks' first backing array
	wantLen, gotLen int64
}

func (cc *conn) newStream(ctx context.Context, req *http.Request, body io.ReadCloser) *stream {
	s := &stream{cc: cc, ctx: ctx, req: req, body: body, wake: make(chan struct{}, 1), wantLen: -1}
	s.chunks = s.first[:0]
	return s
}

// The request's context ends the stream (RST_STREAM CANCEL) where a
// goroutine waits on it: RoundTrip for the head and the body's Read select
// on the context, and a body writer about to wait for send window has the
// context wake it (watchLocked). A context that ends while nobody waits
// takes effect at the next Read or Close. Watching every request with
// context.AfterFunc instead cost a registration in the context's children
// and a closure per call.

// cancelled resets s because its context ended.
func (s *stream) cancelled() { s.cc.abort(s, s.ctx.Err(), http2.ErrCodeCancel, true) }

// watchLocked has the context's end reset s while a body writer waits
// for window; callers hold cc.mu.
func (s *stream) watchLocked() {
	if s.stop == nil && !s.forgotten {
		s.stop = context.AfterFunc(s.ctx, s.cancelled)
	}
}

// awaitHead waits until the response head or an error arrived, or the
// context ended.
func (s *stream) awaitHead() {
	for {
		s.cc.mu.Lock()
		done := s.headDone
		s.cc.mu.Unlock()
		if done {
			return
		}
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			s.cancelled()
		}
	}
}

// signal wakes the body's reader; callers hold cc.mu.
func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// push buffers data for the body's reader in chunks from the
// Transport's pool (what is buffered is bounded by the stream's window);
// callers hold cc.mu.
func (s *stream) push(data []byte) {
	for len(data) > 0 {
		var last *[]byte
		if n := len(s.chunks); n > 0 {
			last = s.chunks[n-1]
		}
		if last == nil || len(*last) == cap(*last) {
			last = s.cc.t.bufs.Get().(*[]byte)
			*last = (*last)[:0]
			s.chunks = append(s.chunks, last)
		}
		k := copy((*last)[len(*last):cap(*last)], data)
		*last = (*last)[:len(*last)+k]
		data = data[k:]
	}
	s.signal()
}

// take copies buffered data to p, giving each chunk back to the pool once
// read; callers hold cc.mu.
func (s *stream) take(p []byte) int {
	c := s.chunks[0]
	n := copy(p, (*c)[s.off:])
	s.off += n
	if s.off == len(*c) {
		s.off = 0
		s.cc.t.bufs.Put(c)
		m := copy(s.chunks, s.chunks[1:])
		s.chunks[m] = nil
		s.chunks = s.chunks[:m]
	}
	return n
}

// dropData gives every buffered chunk back; callers hold cc.mu.
func (s *stream) dropData() {
	for i, c := range s.chunks {
		s.cc.t.bufs.Put(c)
		s.chunks[i] = nil
	}
	s.chunks, s.off = s.chunks[:0], 0
}

// closeBody closes the request body once.
func (s *stream) closeBody() {
	if s.body != nil {
		s.bodyOnce.Do(func() { s.body.Close() })
	}
}

// Read reads the response body. The stream's window is given back once
// half of it was read.
func (s *stream) Read(p []byte) (int, error) {
	cc := s.cc
	for {
		cc.mu.Lock()
		if len(s.chunks) > 0 {
			n := s.take(p)
			var credit int32
			if !s.recvDone {
				s.unread += int32(n)
				if s.unread >= cc.t.o.StreamWindow/2 {
					credit, s.unread = s.unread, 0
					s.recvAvail += credit
				}
			}
			cc.mu.Unlock()
			if credit > 0 {
				cc.writeFrame(func() error { return cc.fr.WriteWindowUpdate(s.id, uint32(credit)) })
			}
			return n, nil
		}
		if err := s.readErr; err != nil {
			cc.mu.Unlock()
			return 0, err
		}
		cc.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			s.cancelled()
		}
	}
}

var errBodyClosed = errors.New("h2client: response body closed")

// Close ends the response body; before its end it resets the stream.
func (s *stream) Close() error {
	cc := s.cc
	cc.mu.Lock()
	open := !s.recvDone
	if !open {
		s.readErr = errBodyClosed
		s.dropData()
	}
	cc.mu.Unlock()
	if open {
		cc.abort(s, errBodyClosed, http2.ErrCodeCancel, true)
	}
	return nil
}

// writeBody sends the request body as DATA frames within the send
// windows, then END_STREAM (with trailers when the request has some once
// its body is read). A body that fails resets the stream.
//
// When the windows take only part of what was read, the rest waits for
// credit. A body that cannot make Read wait (in memory: Buffered, or
// replayable through GetBody) is read again first, so that the rest and
// the next bytes go out together: sent on its own, the rest would split
// the credit that comes next into two frames, and a backend that returns
// credit read by read (x/net's server, once its window runs low) would
// return it in ever smaller pieces, frames shrinking towards a byte. A
// body that can wait sends the rest at once, so no byte the backend may be
// waiting for is held back.
func (s *stream) writeBody(body io.ReadCloser, trailer http.Header) {
	cc := s.cc
	defer s.closeBody()
	bp := cc.t.bufs.Get().(*[]byte)
	defer cc.t.bufs.Put(bp)
	buf := (*bp)[:cap(*bp)] // a response's chunk comes back as long as it was filled
	replayable := s.req.GetBody != nil
	var pend []byte // read, not yet sent
	eof := false
	for {
		if !eof && (len(pend) == 0 || len(pend) < len(buf) && (replayable || inMemory(body))) {
			kept := copy(buf, pend)
			n, err := body.Read(buf[kept:])
			pend = buf[:kept+n]
			if errors.Is(err, io.EOF) {
				eof = true
			} else if err != nil {
				cc.abort(s, err, http2.ErrCodeCancel, true)
				return
			}
		}
		end := eof && !hasValues(trailer)
		if len(pend) > 0 || end {
			n, err := cc.writeData(s, pend, end)
			if err != nil {
				return
			}
			pend = pend[n:]
		}
		if eof && len(pend) == 0 {
			if !end {
				cc.writeTrailers(s, trailer)
			}
			return
		}
	}
}

// inMemory reports a body whose Read will not wait.
func inMemory(body io.Reader) bool {
	b, ok := body.(buffered)
	return ok && b.Buffered()
}

// hasValues reports a header with at least one value.
func hasValues(h http.Header) bool {
	for _, vv := range h {
		if len(vv) > 0 {
			return true
		}
	}
	return false
}

// writeData writes one DATA frame of p on s, as much as the connection's
// and the stream's send windows allow, waiting for credit when they allow
// nothing; it returns the bytes sent. end sets END_STREAM if all of p
// went.
func (cc *conn) writeData(s *stream, p []byte, end bool) (int, error) {
	for {
		cc.mu.Lock()
		for !s.sendDone && cc.err == nil && len(p) > 0 && (cc.sendWindow <= 0 || s.sendWindow <= 0) {
			s.watchLocked()
			cc.cond.Wait()
		}
		cc.mu.Unlock()
		cc.wmu.Lock()
		cc.mu.Lock()
		if s.sendDone || cc.err != nil {
			err := s.sendErr
			if err == nil {
				err = cc.err
			}
			cc.mu.Unlock()
			cc.wmu.Unlock()
			if err == nil {
				err = errStopBody
			}
			return 0, err
		}
		n := len(p)
		if n > 0 {
			n = min(n, int(cc.sendWindow), int(s.sendWindow), int(cc.peerFrame))
			if n <= 0 {
				cc.mu.Unlock()
				cc.wmu.Unlock()
				continue
			}
			cc.sendWindow -= int32(n)
			s.sendWindow -= int32(n)
		}
		last := end && n == len(p)
		if last {
			s.sendDone = true
		}
		cc.mu.Unlock()
		err := cc.fr.WriteData(s.id, last, p[:n])
		if err == nil {
			err = cc.bw.Flush()
		}
		cc.wmu.Unlock()
		if err != nil {
			cc.fail(err)
			return 0, err
		}
		if last {
			cc.sentEnd(s)
		}
		return n, nil
	}
}

// writeTrailers ends s with its request's trailers.
func (cc *conn) writeTrailers(s *stream, trailer http.Header) {
	cc.wmu.Lock()
	block, err := appendTrailers(cc.hbuf[:0], trailer)
	cc.hbuf = block
	cc.mu.Lock()
	live := !s.sendDone && cc.err == nil
	if live && err == nil {
		s.sendDone = true
	}
	maxFrame := int(cc.peerFrame)
	cc.mu.Unlock()
	if !live {
		cc.wmu.Unlock()
		return
	}
	if err != nil {
		cc.wmu.Unlock()
		cc.abort(s, err, http2.ErrCodeInternal, true)
		return
	}
	err = cc.writeBlock(s.id, block, true, maxFrame)
	cc.wmu.Unlock()
	if err != nil {
		cc.fail(err)
		return
	}
	cc.sentEnd(s)
}

// sentEnd forgets s once END_STREAM went out, if its response ended too.
func (cc *conn) sentEnd(s *stream) {
	cc.mu.Lock()
	var closeNow bool
	if s.recvDone {
		closeNow = cc.forgetLocked(s)
	}
	cc.mu.Unlock()
	cc.closeIf(closeNow)
}
