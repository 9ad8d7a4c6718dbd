package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/false-systems/rauta/internal/h1"
)

// A tunnel relays bytes both ways between a client and a backend: a
// relayed stream (TLS passthrough, TCPRoute) and an upgraded HTTP
// connection (WebSocket). Each direction runs on its own goroutine; an
// end that reaches EOF is passed on as a half-close, so protocols that
// finish sending before they stop reading keep working. The tunnel ends
// when both directions ended, a read or write failed, or no byte moved
// either way for the idle timeout.
//
// Why not io.Copy: on a TCP socket each direction reads inside one call
// into the netpoller (h1.Socket.ReadLoop), so after a read the next one
// waits for the socket to become readable instead of trying at once and
// finding nothing, and reads and writes are raw non-blocking system calls
// without the runtime's blocking-call handoff: a WebSocket message and its
// echo cost 4 system calls in the tunnel instead of 6 (two reads that
// found nothing), and half the context switches (docs/performance.md,
// round 26). A copy buffer is held only while bytes flow: a direction
// whose read found nothing gives it back before it waits, so an idle
// tunnel holds none.

// idleChecks is how many times per idle timeout a waiting direction looks
// whether the tunnel moved bytes: a tunnel is closed after between the
// idle timeout and 1.25 times it without traffic, and traffic costs no
// clock read or timer change.
const idleChecks = 4

var errTunnelIdle = errors.New("tunnel idle")

// tunnelEnds are what tunnel needs of each side: the connection, and the
// bytes already read from it by a parser (the rest of a ClientHello, a
// WebSocket frame that came with the HTTP head) to deliver before it.
type tunnelEnd struct {
	conn    net.Conn
	pending []byte
}

// tunnel relays between client and backend until the tunnel ends, then
// closes neither: the callers own the connections. received and sent count
// the bytes relayed from and to the client. bufs gives the copy buffers.
func tunnel(client, backend tunnelEnd, idle time.Duration, bufs bufferPool, received, sent *atomic.Uint64) {
	cs, bs := h1.NewSocket(rawConn(client.conn)), h1.NewSocket(rawConn(backend.conn))
	var moves atomic.Uint64
	up := &pump{src: cs, dst: bs, dstConn: backend.conn, moved: received, moves: &moves, idle: idle, bufs: bufs}
	down := &pump{src: bs, dst: cs, dstConn: client.conn, moved: sent, moves: &moves, idle: idle, bufs: bufs}
	var failed atomic.Bool
	run := func(p *pump, pending []byte) {
		if err := p.run(pending); err != nil {
			failed.Store(true)
			// Unblock the other direction.
			client.conn.Close()
			backend.conn.Close()
			return
		}
		if failed.Load() {
			return
		}
		if tc, ok := p.dstConn.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite() //nolint:errcheck // the other direction's read reports a broken peer
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(up, client.pending)
	}()
	run(down, backend.pending)
	<-done
}

// bufferPool gives and takes back copy buffers (*[]byte): a sync.Pool.
type bufferPool interface {
	Get() any
	Put(any)
}

// rawConn unwraps a connection the HTTP/1.1 engine handed over with no
// bytes left to replay, so the tunnel can read its socket directly.
func rawConn(c net.Conn) net.Conn {
	if rc, ok := c.(*replayConn); ok && len(rc.pending) == 0 {
		return rc.Conn
	}
	return c
}

// pump is one direction of a tunnel.
type pump struct {
	src, dst *h1.Socket
	dstConn  net.Conn // for the half-close
	moved    *atomic.Uint64
	moves    *atomic.Uint64 // the tunnel's writes, both directions
	idle     time.Duration
	bufs     bufferPool
	buf      *[]byte // held while bytes flow
	eof      bool
	err      error // what ended ReadLoop from inside got

	bufFn func() []byte
	gotFn func(int, error) bool
}

// run relays pending, then src to dst, until src's EOF (nil) or an error.
func (p *pump) run(pending []byte) error {
	defer p.putBuf()
	if len(pending) > 0 {
		if err := p.write(pending); err != nil {
			return err
		}
	}
	// A peer that takes nothing for the idle timeout ends the tunnel.
	p.dst.BoundWrites(p.idle, time.Time{})
	p.bufFn, p.gotFn = p.loopBuf, p.got
	check := max(p.idle/idleChecks, time.Millisecond)
	seen, quiet := p.moves.Load(), 0
	armed := false
	for {
		if !armed {
			p.src.SetReadDeadline(time.Now().Add(check)) //nolint:errcheck // the read reports it
			armed = true
		}
		err := p.src.ReadLoop(p.bufFn, p.gotFn)
		if errors.Is(err, h1.ErrWouldBlock) { // not a raw socket (TLS): plain reads
			err = p.readOnce()
		} else if err == nil {
			err, p.err = p.err, nil
		}
		switch {
		case p.eof:
			return nil
		case err == nil:
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			armed = false
			if m := p.moves.Load(); m != seen {
				seen, quiet = m, 0
				continue
			}
			if quiet++; quiet >= idleChecks {
				return errTunnelIdle
			}
		default:
			return err
		}
	}
}

// readOnce is one read of a connection that cannot loop, and its write.
func (p *pump) readOnce() error {
	b := p.loopBuf()
	n, err := p.src.Read(b)
	if n > 0 {
		if werr := p.write(b[:n]); werr != nil {
			return werr
		}
	}
	if errors.Is(err, io.EOF) {
		p.eof = true
		return nil
	}
	return err
}

// loopBuf is the buffer each read fills, taken from the pool if none is
// held.
func (p *pump) loopBuf() []byte {
	if p.buf == nil {
		p.buf = p.bufs.Get().(*[]byte)
	}
	return *p.buf
}

// got takes a read's outcome inside ReadLoop: the bytes go to dst, and
// the loop ends so that the next read tries at once. A read that found
// nothing gives the buffer back and waits for the socket.
//
// Why not wait right after a read that returned fewer bytes than asked
// for: the peer's FIN may have come with those bytes in one readiness
// event, and no event would announce it again, so the half-close would
// not be passed on until the idle timeout.
func (p *pump) got(n int, err error) (wait bool) {
	switch {
	case errors.Is(err, h1.ErrWouldBlock):
		p.putBuf()
		return true
	case n > 0:
		p.err = p.write((*p.buf)[:n])
	case errors.Is(err, io.EOF):
		p.eof = true
	default:
		p.err = err
	}
	return false
}

func (p *pump) write(b []byte) error {
	n, err := p.dst.Write(b)
	p.moved.Add(uint64(n))
	p.moves.Add(1)
	return err
}

func (p *pump) putBuf() {
	if p.buf != nil {
		p.bufs.Put(p.buf)
		p.buf = nil
	}
}
