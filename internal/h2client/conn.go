package h2client

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/false-systems/rauta/internal/h2"
)

const (
	initialWindow   = 65535     // RFC 9113 6.9.2
	maxWindow       = 1<<31 - 1 // RFC 9113 6.9.1
	defaultMaxFrame = 16384     // RFC 9113 4.2
	// initialMaxStreams is assumed until the backend's SETTINGS says
	// otherwise (net/http's Transport assumes the same).
	initialMaxStreams = 100
	// maxKeptBlock bounds the head buffer a connection keeps.
	maxKeptBlock = 64 << 10
)

// conn is one connection to a backend. Lock order: wmu before mu; the
// Transport's mu before mu (reserve). The Transport's mu may be taken
// under wmu (drop), never under mu, and wmu never under it.
type conn struct {
	t    *Transport
	addr string
	nc   net.Conn
	fr   *http2.Framer // reads from nc; writes to bw, under wmu
	bw   *bufio.Writer

	// wmu orders frames on the wire: a stream's id is assigned and its
	// HEADERS written under it, so ids go out in increasing order.
	wmu  sync.Mutex
	hbuf []byte // the head block being written

	mu      sync.Mutex
	cond    sync.Cond // send credit arrived, a stream or the connection ended
	streams map[uint32]*stream
	nextID  uint32
	// open counts streams reserved or open: at most maxStreams.
	open       int
	maxStreams int
	peerWindow int32  // the backend's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame  uint32 // the backend's SETTINGS_MAX_FRAME_SIZE
	peerList   uint32 // the backend's SETTINGS_MAX_HEADER_LIST_SIZE; 0: none
	sendWindow int32  // connection send window
	recvAvail  int32  // connection receive window left
	recvCredit int32  // received connection window not yet given back
	goingAway  bool   // no new streams: GOAWAY, idle close, ids used up
	err        error  // the connection is dead
	// ready is closed once the backend's first SETTINGS are applied, or
	// the connection failed.
	ready     chan struct{}
	readyOnce sync.Once
	idle      *time.Timer

	// The reader's: the HPACK decoder, the block it decodes, field names
	// and their canonical forms.
	dec   *hpack.Decoder
	hb    headBlock
	names h2.CanonicalNames
}

func newConn(t *Transport, addr string, nc net.Conn) *conn {
	cc := &conn{
		t: t, addr: addr, nc: nc,
		streams:    map[uint32]*stream{},
		nextID:     1,
		maxStreams: min(initialMaxStreams, t.o.MaxStreamsPerConn),
		peerWindow: initialWindow,
		peerFrame:  defaultMaxFrame,
		sendWindow: initialWindow,
		recvAvail:  t.o.ConnWindow,
		ready:      make(chan struct{}),
	}
	cc.cond.L = &cc.mu
	cc.bw = bufio.NewWriterSize(nc, 32<<10)
	cc.fr = http2.NewFramer(cc.bw, bufio.NewReaderSize(nc, 16<<10))
	cc.dec = hpack.NewDecoder(4096, cc.emit)
	cc.dec.SetMaxStringLength(t.o.MaxResponseHeaderBytes)
	cc.fr.SetReuseFrames()
	return cc
}

// start sends the preface, SETTINGS and the connection window, and
// starts the reader. Requests may follow before the backend's SETTINGS
// (RFC 9113 3.4).
func (cc *conn) start() error {
	o := &cc.t.o
	_, err := cc.bw.WriteString(http2.ClientPreface)
	err = errors.Join(err, cc.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(o.StreamWindow)},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: uint32(o.MaxResponseHeaderBytes)},
	))
	if err == nil && o.ConnWindow > initialWindow {
		err = cc.fr.WriteWindowUpdate(0, uint32(o.ConnWindow-initialWindow))
	}
	if err == nil {
		err = cc.bw.Flush()
	}
	if err != nil {
		return err
	}
	go cc.readLoop()
	return nil
}

// tryReserve takes a stream slot if the connection has one.
func (cc *conn) tryReserve() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil || cc.goingAway || cc.open >= cc.maxStreams {
		return false
	}
	cc.open++
	if cc.idle != nil {
		cc.idle.Stop()
	}
	return true
}

// writeHead assigns s its id and writes its HEADERS (and CONTINUATION)
// frames; END_STREAM when it has no body. On an error s's slot is freed.
func (cc *conn) writeHead(s *stream, h *head) error {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	var size int
	var err error
	cc.hbuf, size, err = appendHead(cc.hbuf[:0], h, s.body != nil)
	cc.mu.Lock()
	switch {
	case err != nil:
	case cc.err != nil || cc.goingAway:
		err = fmt.Errorf("%w: connection closing", errUnprocessed)
	case cc.peerList != 0 && size > int(cc.peerList):
		err = errHeadTooLarge
	}
	if err != nil {
		s.sendDone, s.recvDone = true, true
		closeNow := cc.forgetLocked(s)
		cc.mu.Unlock()
		cc.closeIf(closeNow)
		return err
	}
	s.id = cc.nextID
	cc.nextID += 2
	exhausted := cc.nextID >= maxWindow
	if exhausted {
		cc.goingAway = true
	}
	cc.streams[s.id] = s
	s.registered = true
	s.sendWindow = cc.peerWindow
	s.recvAvail = cc.t.o.StreamWindow
	s.sendDone = s.body == nil
	maxFrame := int(cc.peerFrame)
	cc.mu.Unlock()
	if exhausted {
		cc.t.drop(cc)
	}
	err = cc.writeBlock(s.id, cc.hbuf, s.body == nil, maxFrame)
	if cap(cc.hbuf) > maxKeptBlock {
		cc.hbuf = nil
	}
	if err != nil {
		cc.fail(err)
		return s.headErr
	}
	return nil
}

// writeBlock writes a header block as HEADERS and CONTINUATION frames of
// at most maxFrame bytes, and flushes. The caller holds wmu.
func (cc *conn) writeBlock(id uint32, block []byte, end bool, maxFrame int) error {
	n := min(len(block), maxFrame)
	err := cc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:n], EndStream: end, EndHeaders: n == len(block)})
	for block = block[n:]; err == nil && len(block) > 0; block = block[n:] {
		n = min(len(block), maxFrame)
		err = cc.fr.WriteContinuation(id, n == len(block), block[:n])
	}
	if err == nil {
		err = cc.bw.Flush()
	}
	return err
}

// writeFrame runs write under wmu and flushes; a failed write kills the
// connection.
func (cc *conn) writeFrame(write func() error) {
	cc.wmu.Lock()
	err := write()
	if err == nil {
		err = cc.bw.Flush()
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.fail(err)
	}
}

// forgetLocked ends s's part in the connection once both its directions
// are done; it reports whether the connection should now be closed
// (going away with nothing left open). Callers hold mu.
func (cc *conn) forgetLocked(s *stream) (closeNow bool) {
	if s.forgotten {
		return false
	}
	s.forgotten = true
	if s.registered {
		delete(cc.streams, s.id)
	}
	if s.stop != nil {
		s.stop()
	}
	cc.open--
	cc.cond.Broadcast()
	if cc.open > 0 || cc.err != nil {
		return false
	}
	if cc.goingAway {
		return true
	}
	if cc.idle == nil {
		cc.idle = time.AfterFunc(cc.t.o.IdleTimeout, cc.closeIfIdle)
	} else {
		cc.idle.Reset(cc.t.o.IdleTimeout)
	}
	return false
}

// closeIf closes the connection when closeNow.
func (cc *conn) closeIf(closeNow bool) {
	if closeNow {
		cc.t.drop(cc)
		cc.nc.Close()
	}
}

// closeIfIdle closes the connection if no stream is open.
func (cc *conn) closeIfIdle() {
	cc.mu.Lock()
	idle := cc.open == 0 && cc.err == nil
	if idle {
		cc.goingAway = true
	}
	cc.mu.Unlock()
	cc.closeIf(idle)
}

// abort ends s with err in both directions, resetting it with code when
// rst and the connection lives. It closes the request body, which may be
// blocking the body writer.
func (cc *conn) abort(s *stream, err error, code http2.ErrCode, rst bool) {
	cc.mu.Lock()
	if s.forgotten {
		cc.mu.Unlock()
		return
	}
	rst = rst && s.registered && cc.err == nil
	if !s.recvDone {
		s.recvDone, s.readErr = true, err
		s.dropData()
		s.signal()
	}
	if !s.headDone {
		s.headDone, s.headErr = true, err
		s.signal()
	}
	if !s.sendDone {
		s.sendDone, s.sendErr = true, err
	}
	closeNow := cc.forgetLocked(s)
	cc.mu.Unlock()
	s.closeBody()
	if rst {
		cc.writeFrame(func() error { return cc.fr.WriteRSTStream(s.id, code) })
	}
	cc.closeIf(closeNow)
}

// fail kills the connection: every stream ends with err.
func (cc *conn) fail(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = fmt.Errorf("h2client: connection to %s lost: %w", cc.addr, err)
	cc.goingAway = true
	left := make([]*stream, 0, len(cc.streams))
	for _, s := range cc.streams {
		left = append(left, s)
	}
	if cc.idle != nil {
		cc.idle.Stop()
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
	cc.t.drop(cc)
	cc.nc.Close()
	cc.readyOnce.Do(func() { close(cc.ready) })
	for _, s := range left {
		cc.abort(s, cc.err, 0, false)
	}
}

// connError sends GOAWAY with code and returns the error that ends the
// reader.
func (cc *conn) connError(code http2.ErrCode, why string) error {
	cc.writeFrame(func() error { return cc.fr.WriteGoAway(0, code, nil) })
	return fmt.Errorf("h2client: %s: %w", why, http2.ConnectionError(code))
}

// lookup returns the stream id names, nil for one already closed, or a
// connection error for one never opened (RFC 9113 5.1: idle streams).
func (cc *conn) lookup(id uint32) (*stream, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if id%2 == 0 || id >= cc.nextID {
		return nil, errIdleStream
	}
	return cc.streams[id], nil
}

var errIdleStream = errors.New("frame on a stream never opened")
