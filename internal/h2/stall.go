package h2

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Stalled streams. A client can hold a stream open at no cost to itself
// by declaring a request body and never sending it, or by keeping the
// flow-control window of a response at 0: each such stream holds a
// handler, its buffers and a slot of MaxConcurrentStreams for as long as
// the client likes (CVE-2019-9517 class; issue 14: 400 streams held at
// window 0 for over 130 s). A stream whose handler waits for the client
// and sees no progress for Server.BodyIdleTimeout (request body) or
// Server.SendStallTimeout (window) is ended.
//
// One timer per connection sweeps its streams, and runs only while a
// handler waits: waiting and progress are flags and byte counts the
// handlers and the reader set anyway, so the per-frame path sets no timer
// and reads no clock. A sweep every quarter of the shorter timeout counts,
// per stream, the sweeps in a row that found it waiting without progress;
// a stream is cut once those span its timeout, so between the timeout and
// a quarter (at worst a half, when the sweeps had stopped) more.

var (
	// errBodyTimeout is what Body.Read returns when the client sent no
	// body for BodyIdleTimeout; it matches os.ErrDeadlineExceeded, a
	// timeout as net.Error sees it.
	errBodyTimeout = fmt.Errorf("h2: request body: no data from the client within the body idle timeout: %w", os.ErrDeadlineExceeded)
	// errSendStall is what Write returns when the client kept the
	// response's window at 0 for SendStallTimeout.
	errSendStall = fmt.Errorf("h2: response: the client's flow-control window stayed closed past the send stall timeout: %w", os.ErrDeadlineExceeded)
)

// stall is a stream's state for the sweep. Guarded by c.mu.
// Whether the handler waits is in stream.waitBody and waitWindow, where
// they fill padding next to the stream's other flags.
type stall struct {
	sent int64 // response body bytes queued
	// bodyMark and sendMark are the progress seen at the last sweep (its
	// low 32 bits: a stream moves less than 4 GiB between two sweeps),
	// and bodyTicks and sendTicks the sweeps in a row since that found
	// the stream waiting without progress.
	bodyMark, sendMark   uint32
	bodyTicks, sendTicks int32
}

// stallSweeps is the number of sweeps in a stall timeout.
const stallSweeps = 4

// watchStalls makes sure the sweep runs: a handler is about to wait for
// the client. Callers hold c.mu.
func (c *conn) watchStalls() {
	if c.sweeping || c.dead != nil {
		return
	}
	c.sweeping = true
	if c.sweep == nil {
		c.sweep = time.AfterFunc(c.sweepEvery(), c.sweepStalls)
		return
	}
	c.sweep.Reset(c.sweepEvery())
}

func (c *conn) sweepEvery() time.Duration {
	return max(time.Millisecond, min(c.srv.bodyIdleTimeout(), c.srv.sendStallTimeout())/stallSweeps)
}

// sweepCut is the number of sweeps in a row without progress that end a
// stream waiting for d: the first of them may come right after the wait
// began, so one more than d spans.
func (c *conn) sweepCut(d time.Duration) int32 {
	every := c.sweepEvery()
	return int32(min((d+every-1)/every+1, 1<<30))
}

// sweepStalls is the sweep: it ends the streams stalled past their
// timeout, and runs again while any stream waits.
func (c *conn) sweepStalls() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		c.sweeping = false
		return
	}
	bodyCut, sendCut := c.sweepCut(c.srv.bodyIdleTimeout()), c.sweepCut(c.srv.sendStallTimeout())
	waiting := false
	for _, st := range c.streams {
		if st.sweep(bodyCut, sendCut) {
			waiting = true
		}
	}
	c.queued()
	if !waiting {
		c.sweeping = false
		return
	}
	c.sweep.Reset(c.sweepEvery())
}

// sweep counts one sweep for st, ends it if it stalled past a cut, and
// reports whether it still waits for the client. Callers hold c.mu.
func (st *stream) sweep(bodyCut, sendCut int32) bool {
	s := &st.stall
	if st.resetErr != nil {
		return false
	}
	// The body's progress is data either way: a handler that waits for
	// a quiet client while it streams its response (a gRPC bidi call) is
	// not stalled.
	if p := uint32(st.received + s.sent); st.waitBody && p == s.bodyMark {
		s.bodyTicks++
	} else {
		s.bodyMark, s.bodyTicks = p, 0
	}
	if p := uint32(s.sent); st.waitWindow && p == s.sendMark {
		s.sendTicks++
	} else {
		s.sendMark, s.sendTicks = p, 0
	}
	switch {
	case s.bodyTicks >= bodyCut:
		st.bodyTimedOut()
		return false
	case s.sendTicks >= sendCut:
		st.c.sendReset(st.id, http2.ErrCodeCancel)
		st.reset(errSendStall)
		return false
	}
	return st.waitBody || st.waitWindow
}

// bodyTimedOut ends a stream whose request body stalled, as Envoy's stream
// idle timeout and nginx's client_body_timeout do: 408 when the response
// has not begun (then RST_STREAM NO_ERROR, so the client stops sending,
// RFC 9113 8.1), RST_STREAM CANCEL when it has. The handler's reads and
// writes fail with errBodyTimeout. Callers hold c.mu.
func (st *stream) bodyTimedOut() {
	c := st.c
	w := &st.rw
	if !w.sentHeader && !w.ended {
		w.sentHeader, w.ended = true, true
		c.hbuf.Reset()
		c.writeField(hpack.HeaderField{Name: ":status", Value: "408"})
		c.writeField(hpack.HeaderField{Name: "date", Value: c.date()})
		c.writeHeaderBlock(st.id, c.hbuf.Bytes(), true)
		c.sendReset(st.id, http2.ErrCodeNo)
	} else {
		c.sendReset(st.id, http2.ErrCodeCancel)
	}
	st.reset(errBodyTimeout)
}

func (s *Server) bodyIdleTimeout() time.Duration {
	if s.BodyIdleTimeout <= 0 {
		return 60 * time.Second
	}
	return s.BodyIdleTimeout
}

func (s *Server) sendStallTimeout() time.Duration {
	if s.SendStallTimeout <= 0 {
		return 60 * time.Second
	}
	return s.SendStallTimeout
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout <= 0 {
		return 60 * time.Second
	}
	return s.WriteTimeout
}
