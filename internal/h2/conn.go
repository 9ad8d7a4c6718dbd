package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Flow-control windows RAUTA grants clients for request bodies: what one
// stream, and all streams of a connection together, may send unread. The
// same as net/http's server.
const (
	streamRecvWindow = 1 << 20
	connRecvWindow   = 1 << 20
	// maxReadFrame is the largest frame RAUTA accepts: RFC 9113's default.
	// Clients assume it until they read RAUTA's SETTINGS, and a larger one
	// saves little on request bodies.
	maxReadFrame = 16 << 10
	// initialWindow is RFC 9113's initial window size for both directions.
	initialWindow = 65535
)

// conn is one HTTP/2 connection. The reader goroutine (serve) decodes
// frames and starts a goroutine per request; writeLoop writes. Everything
// below mu is shared by them and the handlers and guarded by mu.
type conn struct {
	srv        *Server
	lim        Limits // srv.Limits with defaults
	nc         net.Conn
	h          http.Handler
	remoteAddr string
	tlsState   *tls.ConnectionState
	baseCtx    context.Context
	writerDone chan struct{}

	mu         sync.Mutex
	wcond      sync.Cond // the writer waits for output
	drained    sync.Cond // handlers wait for output to drain
	sendCond   sync.Cond // handlers wait for send window
	out        []byte    // frames waiting to be written
	spare      []byte    // the buffer out swaps with while the writer writes
	writerIdle bool
	closing    bool  // the writer ends once out is sent
	dead       error // why the connection ended; nothing more is sent
	// ctrlQueued counts the control frames in out (not those the writer
	// is writing): replies a client can ask for without reading them.
	ctrlQueued int

	hdec *hpack.Decoder // the client's header blocks; the reader's own
	hb   headerBlock    // the block hdec is decoding
	// canon remembers request field names' canonical forms; the
	// reader's own.
	canon CanonicalNames
	// hbOpen: hb's block spans frames and the read deadline bounds it.
	hbOpen bool

	hbuf bytes.Buffer   // header block being encoded
	henc *hpack.Encoder // writes to hbuf
	// lower caches header names as sent (lower case), per connection.
	lower map[string]string
	// encoded keeps the indexes of fields sent before (headcache.go).
	encoded map[headField]encodedField

	streams     map[uint32]*stream
	maxStreamID uint32 // the highest stream the client opened
	active      int    // handlers running
	goAwaySent  bool   // the final GOAWAY: streams after it are ignored
	// goAwayWarned: the first GOAWAY of a drain (GoAway) was sent; streams
	// the client opens are still served until the final one.
	goAwayWarned bool
	// started: the server's SETTINGS are queued, so other frames may follow.
	started bool

	// resetIDs holds the last streams the server sent RST_STREAM for
	// (a ring, next is where the next goes). Frames the client had
	// already sent for them are ignored, not taken as errors (RFC 9113
	// 5.1, "closed"), for as long as an id stays in the ring.
	resetIDs     [64]uint32
	resetIDsNext int
	// resets is Limits.ResetBudget: the streams ended by a reset, either
	// way, less those that completed.
	resets resetBudget
	// noOp counts frames that ask for nothing (limits.go).
	noOp noOpCounts

	sendWindow   int64 // the client's connection window for our DATA
	peerInitial  int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame uint32

	recvWindow int64 // what the client may still send on the connection
	recvUnack  int64 // consumed request bytes not yet returned by WINDOW_UPDATE

	idle *time.Timer // runs goAway when no stream was open for IdleTimeout
	// sweep runs sweepStalls while a handler waits for the client
	// (stall.go); sweeping: it is scheduled.
	sweep    *time.Timer
	sweeping bool
	// trimTimer runs trim every trimEvery while the connection holds
	// something to give back (writer.go); trimPending: it is scheduled.
	// peakOut and peakActive are the largest batch written and the most
	// streams open at once since the last trim.
	trimTimer           *time.Timer
	trimPending         bool
	peakOut, peakActive int

	work chan job // streams for idle workers; closed when the reader ends
	// running lists the streams whose handler has not returned, linked
	// through stream.prev/next, so that endRunning reaches them after
	// they left streams (a response sent, the handler still running).
	running     *stream
	idleWorkers int
	// free holds finished streams to reuse (stream.go, recycle).
	free []*stream

	dateSec int64 // the second dateVal formats
	dateVal string

	// lastPath and lastURL: the last :path parsed (parsedURL).
	lastPath string
	lastURL  url.URL
	// lenN and lenVal: the last Content-Length formatted (encodeHead).
	lenN   int
	lenVal string
}

func newConn(s *Server, nc net.Conn, h http.Handler) *conn {
	c := &conn{
		srv:          s,
		lim:          s.Limits.withDefaults(),
		nc:           nc,
		h:            h,
		remoteAddr:   nc.RemoteAddr().String(),
		writerDone:   make(chan struct{}),
		work:         make(chan job, maxIdleWorkers),
		lower:        map[string]string{},
		streams:      map[uint32]*stream{},
		sendWindow:   initialWindow,
		peerInitial:  initialWindow,
		peerMaxFrame: 16 << 10,
		recvWindow:   initialWindow,
	}
	c.wcond.L, c.drained.L, c.sendCond.L = &c.mu, &c.mu, &c.mu
	c.resets.init(c.lim.ResetBudget)
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.hdec = hpack.NewDecoder(4096, c.emitField)
	// A string longer than the header list limit is answered 431 like a
	// long list; one past twice the limit ends the connection
	// (COMPRESSION_ERROR). This bounds what the decoder holds of one
	// string.
	c.hdec.SetMaxStringLength(2 * int(s.maxHeaderBytes()))
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tlsState = &st
	}
	return c
}

// baseContexter is net/http's initALPNRequest, the handler it passes to
// TLSNextProto: its context carries the server and the local address.
type baseContexter interface{ BaseContext() context.Context }

// serve reads the connection until it ends.
func (c *conn) serve(ctx context.Context) {
	if bc, ok := c.h.(baseContexter); ok {
		ctx = bc.BaseContext()
	}
	if ctx.Value(http.LocalAddrContextKey) == nil {
		// As net/http's requests: the handler can tell which of the
		// server's addresses the client dialled (h2c by prior knowledge
		// is handed over without a base context).
		ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.nc.LocalAddr())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.baseCtx = ctx
	// The streams' contexts end with this one: when serve returns, or
	// when the caller's ends.
	context.AfterFunc(ctx, c.endRunning)

	c.nc.SetReadDeadline(time.Now().Add(c.srv.readTimeout())) //nolint:errcheck // a failed read reports it
	br := bufio.NewReaderSize(c.nc, 16<<10)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(br, preface); err != nil || string(preface) != http2.ClientPreface {
		c.nc.Close()
		return
	}
	c.mu.Lock()
	c.writeSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.srv.maxStreams()},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamRecvWindow},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: maxReadFrame},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.srv.maxHeaderBytes()},
	)
	c.writeWindowUpdate(0, connRecvWindow-initialWindow)
	c.recvWindow = connRecvWindow
	c.started = true
	c.mu.Unlock()
	go c.writeLoop()
	if t := c.srv.IdleTimeout; t > 0 {
		c.idle = time.AfterFunc(t, func() { c.goAway() })
	}

	fr := http2.NewFramer(nil, br)
	fr.SetMaxReadFrameSize(maxReadFrame)
	fr.SetReuseFrames()

	err := c.readFrames(fr)
	close(c.work) // only the reader sends; idle workers end
	if c.idle != nil {
		c.idle.Stop()
	}
	c.mu.Lock()
	if c.sweep != nil {
		c.sweep.Stop()
	}
	if c.trimTimer != nil {
		c.trimTimer.Stop()
	}
	var ce http2.ConnectionError
	var ab abuse
	if errors.As(err, &ab) && c.dead == nil {
		c.srv.logger().Debug("http2 connection closed for abuse", "remote", c.remoteAddr, "reason", string(ab))
		c.sendGoAway(http2.ErrCodeEnhanceYourCalm, string(ab))
	} else if errors.As(err, &ce) && c.dead == nil {
		debug := ""
		if d := fr.ErrorDetail(); d != nil {
			debug = d.Error()
		}
		c.sendGoAway(http2.ErrCode(ce), debug)
	}
	c.closing = true
	c.wcond.Signal()
	c.mu.Unlock()
	// Let the writer send what is queued (a GOAWAY saying why), bounded.
	select {
	case <-c.writerDone:
	case <-time.After(time.Second):
	}
	c.nc.Close()
	c.mu.Lock()
	if err == nil {
		err = io.EOF
	}
	c.fail(err)
	c.mu.Unlock()
}

// readFrames handles frames until the connection ends: a read error, a
// connection error (returned as http2.ConnectionError), or a close.
func (c *conn) readFrames(fr *http2.Framer) error {
	first := true
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.mu.Lock()
				c.streamErrorLocked(se.StreamID, se.Code)
				err = c.overLimits()
				c.queued()
				c.mu.Unlock()
				if err != nil {
					return err
				}
				continue
			}
			if errors.Is(err, http2.ErrFrameTooLarge) {
				return http2.ConnectionError(http2.ErrCodeFrameSize)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && c.hbOpen {
				return abuse("header block not completed within the read timeout")
			}
			return err
		}
		if err := c.countEmpty(f); err != nil {
			return err
		}
		if first {
			// The client's preface ends with a SETTINGS frame.
			if _, ok := f.(*http2.SettingsFrame); !ok {
				return http2.ConnectionError(http2.ErrCodeProtocol)
			}
			first = false
			c.nc.SetReadDeadline(time.Time{}) //nolint:errcheck // a failed read reports it
		}
		block := false
		switch f.(type) {
		case *http2.HeadersFrame, *http2.ContinuationFrame:
			// Decoded here, without c.mu; the stream opens once the
			// block is complete.
			if block, err = c.readHeaderFrame(f); err != nil {
				return err
			} else if !block {
				continue
			}
		}
		c.mu.Lock()
		if c.dead != nil {
			c.mu.Unlock()
			return c.dead
		}
		if block {
			err = c.handleHeaders(&c.hb)
		} else {
			err = c.handleFrame(f)
		}
		if err == nil {
			err = c.overLimits()
		}
		c.queued()
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// overLimits reports a client past a limit that counts across frames.
// Callers hold c.mu.
func (c *conn) overLimits() error {
	if c.ctrlQueued > c.lim.MaxQueuedControlFrames {
		// The client asks for replies faster than it reads them.
		return abuse("too many queued control frames")
	}
	if c.resets.tokens < 0 {
		return abuse("too many stream resets")
	}
	return c.overNoOp()
}

// handleFrame acts on one frame; callers hold c.mu.
func (c *conn) handleFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.handleSettings(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.writePingAck(f.Data)
			if len(c.out) > 4*maxOut {
				return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
			}
		}
	case *http2.WindowUpdateFrame:
		return c.handleWindowUpdate(f)
	case *http2.DataFrame:
		return c.handleData(f)
	case *http2.RSTStreamFrame:
		if c.idleStream(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.resets.take()
		if st := c.streams[f.StreamID]; st != nil {
			st.reset(errClientReset)
		}
	case *http2.PriorityFrame:
		c.noOp.priority++
		if f.StreamDep == f.StreamID {
			c.streamErrorLocked(f.StreamID, http2.ErrCodeProtocol)
		}
	case *http2.GoAwayFrame:
		// The client opens no more streams; the open ones finish.
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil // unknown frame types are ignored (RFC 9113 4.1)
}

var errClientReset = errors.New("h2: stream reset by client")

// idleStream reports a stream id the client has not opened yet.
func (c *conn) idleStream(id uint32) bool { return id > c.maxStreamID }

func (c *conn) handleSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	if err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			c.resizeEncoder(s.Val)
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = s.Val
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.peerInitial
			c.peerInitial = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > 1<<31-1 {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			c.sendCond.Broadcast()
		}
		return nil
	}); err != nil {
		return err
	}
	c.writeSettingsAck()
	return nil
}

func (c *conn) handleWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.noOp.windowUpdates++
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > 1<<31-1 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.sendCond.Broadcast()
		return nil
	}
	if c.idleStream(f.StreamID) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st := c.streams[f.StreamID]
	if st == nil {
		return nil // closed; a late update is harmless
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > 1<<31-1 {
		c.streamErrorLocked(f.StreamID, http2.ErrCodeFlowControl)
		return nil
	}
	c.sendCond.Broadcast()
	return nil
}

// handleHeaders opens a stream, or takes a stream's trailers.
func (c *conn) handleHeaders(f *headerBlock) error {
	id := f.id
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if f.invalid {
		c.streamErrorLocked(id, http2.ErrCodeProtocol)
		return nil
	}
	if st := c.streams[id]; st != nil {
		if st.resetErr != nil {
			if st.clientReset { // closed by the client (RFC 9113 5.1)
				c.streamErrorLocked(id, http2.ErrCodeStreamClosed)
			}
			return nil // reset by us; the client may have sent it before it knew
		}
		return c.handleTrailers(st, f)
	}
	if id <= c.maxStreamID {
		if c.resetByUs(id) {
			return nil // trailers the client sent before it saw our RST_STREAM
		}
		// A closed stream, or one that skipped past it (RFC 9113 5.1.1).
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	c.maxStreamID = id
	c.noOp.streams++
	if f.hasPrio && f.prio.StreamDep == id {
		c.streamErrorLocked(id, http2.ErrCodeProtocol)
		return nil
	}
	if c.goAwaySent {
		return nil // RFC 9113 6.8: streams after GOAWAY are ignored
	}
	if c.active >= int(c.srv.maxStreams()) {
		c.streamErrorLocked(id, http2.ErrCodeRefusedStream)
		return nil
	}
	req, st, code := c.newRequest(f)
	if code != http2.ErrCodeNo {
		c.streamErrorLocked(id, code)
		return nil
	}
	c.streams[id] = st
	c.addRunning(st)
	c.active++
	c.peakActive = max(c.peakActive, c.active)
	if c.active == 1 && c.idle != nil {
		c.idle.Stop()
	}
	h := c.h
	if f.tooLarge {
		h = http.HandlerFunc(headerTooLarge)
	}
	j := job{st: st, h: h, req: req}
	if c.idleWorkers > 0 {
		c.idleWorkers--
		c.work <- j // buffered for every idle worker: never blocks
	} else {
		go c.worker(j)
	}
	if !c.goAwayWarned && c.srv.draining.Load() {
		// A connection opened during a drain serves its first stream,
		// then is asked to go away like the others.
		c.warnGoAway()
	}
	return nil
}

// job is one request for a worker.
type job struct {
	st  *stream
	h   http.Handler
	req *http.Request
}

// maxIdleWorkers bounds the goroutines a connection keeps between streams.
// Reusing one keeps the stack a handler grew: a new goroutine per stream
// spent 6 % of the proxy's HTTP/2 CPU growing and copying stacks.
const maxIdleWorkers = 64

// worker runs j, then further streams of the connection while it lives.
func (c *conn) worker(j job) {
	var snap []headField // the responses' header snapshots, reused
	// header is the responses' Header() map, emptied and reused: a
	// ResponseWriter is not used after its handler returns (net/http's
	// contract), and the proxy fills it with every backend response
	// field, so a new map per response was about 400 bytes of garbage
	// (the map and its first group).
	var header http.Header
	values := new([]string) // for HeaderValues
	for {
		if header == nil {
			header = http.Header{}
		}
		j.st.rw.snap, j.st.rw.header, j.st.rw.values = snap[:0], header, values
		j.st.run(j.h, j.req)
		if snap = j.st.rw.snap; cap(snap) > maxKeptSnap {
			snap = nil
		}
		if len(header) > maxKeptHeader {
			header = nil // a map keeps the room it grew to
		} else {
			clear(header)
		}
		clear(*values)
		c.mu.Lock()
		c.release(j.st)
		if c.dead != nil || c.idleWorkers >= maxIdleWorkers {
			c.mu.Unlock()
			return
		}
		c.idleWorkers++
		c.mu.Unlock()
		var ok bool
		if j, ok = <-c.work; !ok {
			return
		}
	}
}

// maxKeptSnap bounds the header snapshot a worker keeps between streams,
// maxKeptHeader the fields of the Header() map it reuses and the length
// of its HeaderValues array.
const (
	maxKeptSnap   = 64
	maxKeptHeader = 32
)

func headerTooLarge(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "request header fields too large", http.StatusRequestHeaderFieldsTooLarge)
}

func (c *conn) handleTrailers(st *stream, f *headerBlock) error {
	if st.remoteDone {
		c.streamErrorLocked(st.id, http2.ErrCodeStreamClosed)
		return nil
	}
	if !f.endStream || f.npseudo > 0 || f.tooLarge {
		c.streamErrorLocked(st.id, http2.ErrCodeProtocol)
		return nil
	}
	for _, hf := range f.regular() {
		k := http.CanonicalHeaderKey(hf.Name)
		if st.trailer == nil {
			st.trailer = http.Header{}
		}
		st.trailer[k] = append(st.trailer[k], hf.Value)
	}
	return st.endOfBody()
}

func (c *conn) handleData(f *http2.DataFrame) error {
	id := f.StreamID
	if c.idleStream(id) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	n := int64(f.Length) // padding counts for flow control
	if n > c.recvWindow {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	st := c.streams[id]
	if st == nil || st.remoteDone || st.resetErr != nil {
		c.returnConnWindow(n)
		if st != nil && st.resetErr != nil && !st.clientReset && !st.remoteDone || st == nil && c.resetByUs(id) {
			return nil // reset by us; the client had these in flight
		}
		c.streamErrorLocked(id, http2.ErrCodeStreamClosed)
		return nil
	}
	if n > st.recvWindow {
		c.returnConnWindow(n)
		c.streamErrorLocked(id, http2.ErrCodeFlowControl)
		return nil
	}
	st.recvWindow -= n
	data := f.Data()
	if pad := n - int64(len(data)); pad > 0 {
		st.consumed(pad) // padding is never read; return it at once
	}
	if len(data) > 0 {
		st.received += int64(len(data))
		if st.declared >= 0 && st.received > st.declared {
			c.returnConnWindow(int64(len(data)))
			c.streamErrorLocked(id, http2.ErrCodeProtocol)
			return nil
		}
		if st.bodyClosed {
			st.consumed(int64(len(data)))
		} else {
			st.body = append(st.body, data...)
			st.cond.Signal()
		}
	}
	if f.StreamEnded() {
		return st.endOfBody()
	}
	return nil
}

// returnConnWindow gives back connection window for bytes nobody will read.
func (c *conn) returnConnWindow(n int64) {
	c.recvUnack += n
	if c.recvUnack >= connRecvWindow/4 {
		c.writeWindowUpdate(0, uint32(c.recvUnack))
		c.recvWindow += c.recvUnack
		c.recvUnack = 0
	}
}

// streamErrorLocked resets a stream with code (RFC 9113 5.4.2), for an
// error of the client's: it counts against the reset budget.
func (c *conn) streamErrorLocked(id uint32, code http2.ErrCode) {
	c.resets.take()
	if id > c.maxStreamID && id%2 == 1 {
		c.maxStreamID = id
	}
	c.sendReset(id, code)
	if st := c.streams[id]; st != nil {
		st.reset(fmt.Errorf("h2: stream reset: %v", code))
	}
}

// sendReset queues RST_STREAM for id and remembers that the server sent
// it. Callers hold c.mu.
func (c *conn) sendReset(id uint32, code http2.ErrCode) {
	c.writeRSTStream(id, code)
	c.resetIDs[c.resetIDsNext] = id
	c.resetIDsNext = (c.resetIDsNext + 1) % len(c.resetIDs)
}

// resetByUs reports whether the server recently sent RST_STREAM for id.
// Only frames for streams the connection no longer tracks ask.
func (c *conn) resetByUs(id uint32) bool {
	for _, r := range c.resetIDs {
		if r == id {
			return true
		}
	}
	return false
}

// goAway starts a graceful close: GOAWAY with NO_ERROR, and the connection
// closes when its last stream ends.
func (c *conn) goAway() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return
	}
	c.sendGoAway(http2.ErrCodeNo, "")
	c.queued()
}

// warnGoAway starts a drain of the connection (RFC 9113 6.8): GOAWAY with
// NO_ERROR and the largest stream id tells the client to open no more
// streams, while the ones it is opening now are still served; after
// goAwayGrace, more than a round trip, goAway sends the final GOAWAY with
// the last stream the client really opened. Callers hold c.mu.
func (c *conn) warnGoAway() {
	if c.dead != nil || c.goAwayWarned || c.goAwaySent || !c.started {
		return // not started: it gets GOAWAY after its first stream
	}
	c.goAwayWarned = true
	c.writeGoAway(1<<31-1, http2.ErrCodeNo, "")
	c.queued()
	time.AfterFunc(goAwayGrace, c.goAway)
}

// goAwayGrace is the time between the two GOAWAY frames of a drain: long
// enough for streams the client sent before it read the first one to
// arrive, as RFC 9113 6.8 asks (at least a round trip).
const goAwayGrace = time.Second

// sendGoAway queues GOAWAY once; any code but NO_ERROR, or no open
// stream, also closes the connection after it is sent.
func (c *conn) sendGoAway(code http2.ErrCode, debug string) {
	if !c.goAwaySent {
		c.goAwaySent = true
		c.writeGoAway(c.maxStreamID, code, debug)
	}
	if code != http2.ErrCodeNo || c.active == 0 {
		c.closing = true
		c.wcond.Signal()
	}
}

// fail marks the connection dead: every stream's handler sees err on its
// next read or write. Callers hold c.mu.
func (c *conn) fail(err error) {
	if c.dead != nil {
		return
	}
	c.dead = err
	c.closing = true
	for _, st := range c.streams {
		st.reset(err)
	}
	c.wcond.Signal()
	c.drained.Broadcast()
	c.sendCond.Broadcast()
}

// streamDone runs when a stream's handler has returned and its response is
// sent (or the stream was reset). Callers hold c.mu.
func (c *conn) streamDone(st *stream) {
	delete(c.streams, st.id) // if send did not already
	c.active--
	if c.active > 0 {
		return
	}
	c.armTrim()
	if c.goAwaySent {
		c.closing = true
		c.wcond.Signal()
	} else if c.idle != nil && c.dead == nil {
		c.idle.Reset(c.srv.IdleTimeout)
	}
}

// addRunning and removeRunning keep c.running. Callers hold c.mu.
func (c *conn) addRunning(st *stream) {
	st.next = c.running
	if st.next != nil {
		st.next.prev = st
	}
	c.running = st
}

func (c *conn) removeRunning(st *stream) {
	if st.prev != nil {
		st.prev.next = st.next
	} else if c.running == st {
		c.running = st.next
	}
	if st.next != nil {
		st.next.prev = st.prev
	}
	st.prev, st.next = nil, nil
}

// endRunning ends the request contexts of the running streams, once the
// connection's context ended.
func (c *conn) endRunning() {
	err := c.baseCtx.Err()
	c.mu.Lock()
	defer c.mu.Unlock()
	for st := c.running; st != nil; st = st.next {
		st.reqCtx.cancel(err)
	}
}
