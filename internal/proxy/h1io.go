package proxy

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"unsafe"
)

// errHeadTooLarge: no end of head within the allowed size.
var errHeadTooLarge = errors.New("message head too large")

// bufConn is a connection with a read buffer that the engine parses in
// place: one read usually brings a whole request or response head, often
// with its body.
type bufConn struct {
	nc   *sockIO
	buf  []byte
	r, w int // unread bytes are buf[r:w]
	// scanned is how many unread bytes are known not to end a head.
	scanned int
}

func (b *bufConn) buffered() []byte { return b.buf[b.r:b.w] }

// fill reads at least one byte more, compacting the buffer or growing it up
// to limit bytes when it is full.
func (b *bufConn) fill(limit int) error {
	if err := b.makeRoom(limit); err != nil {
		return err
	}
	n, err := b.nc.Read(b.buf[b.w:])
	return b.filled(n, err)
}

// fillAfter is fill for a relay: it takes what has arrived without
// waiting, and only when nothing has does it run flush (sending what the
// relay holds) and wait.
func (b *bufConn) fillAfter(limit int, flush func() error) error {
	if err := b.makeRoom(limit); err != nil {
		return err
	}
	n, err := b.nc.ReadNow(b.buf[b.w:])
	if errors.Is(err, errWouldBlock) {
		if err := flush(); err != nil {
			return err
		}
		n, err = b.nc.Read(b.buf[b.w:])
	}
	return b.filled(n, err)
}

// makeRoom makes space after the unread bytes: it compacts the buffer, or
// grows it up to limit bytes.
func (b *bufConn) makeRoom(limit int) error {
	if b.r == b.w {
		b.r, b.w = 0, 0
	}
	if b.w < len(b.buf) {
		return nil
	}
	switch {
	case b.r > 0:
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	case len(b.buf) < limit:
		nb := make([]byte, min(2*len(b.buf), limit))
		b.w = copy(nb, b.buf[b.r:b.w])
		b.r, b.buf = 0, nb
	default:
		return errHeadTooLarge
	}
	return nil
}

// filled accounts for a read of n bytes into the buffer.
func (b *bufConn) filled(n int, err error) error {
	b.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// head returns the message head at the start of the unread bytes, through
// its empty line, as one string whose substrings the parsers keep. It
// consumes it. ok is false while the head is incomplete.
//
// The string is a view of *scratch, which the caller owns and reuses, so
// reading a head allocates nothing: it stays valid until the next head
// read into the same scratch, which is why the client's request heads and
// the backend's response heads each have their own, owned by the client
// connection (a pooled backend connection moves between clients).
func (b *bufConn) head(scratch *[]byte) (head string, ok bool) {
	un := b.buf[b.r:b.w]
	i := bytes.Index(un[b.scanned:], crlfcrlf)
	if i < 0 {
		b.scanned = max(0, len(un)-3)
		return "", false
	}
	end := b.scanned + i + 4
	b.scanned = 0
	b.r += end
	if cap(*scratch) > maxKeptHead {
		*scratch = nil // a big head grew it; do not keep it per connection
	}
	*scratch = append((*scratch)[:0], un[:end]...)
	return unsafe.String(unsafe.SliceData(*scratch), end), true
}

// maxKeptHead is the largest head buffer a connection keeps for reuse.
const maxKeptHead = 16 << 10

// readHead reads until a whole head is buffered and returns it as head
// does; limit bounds the head's size.
func (b *bufConn) readHead(limit int, scratch *[]byte) (string, error) {
	for {
		if h, ok := b.head(scratch); ok {
			return h, nil
		}
		if b.w-b.r >= limit {
			return "", errHeadTooLarge
		}
		if err := b.fill(limit); err != nil {
			return "", err
		}
	}
}

// readLine returns the next line without its CRLF, consuming it; it is
// valid until the next read. flush runs before any read that waits.
func (b *bufConn) readLine(limit int, flush func() error) ([]byte, error) {
	for {
		un := b.buf[b.r:b.w]
		if i := bytes.Index(un, crlf); i >= 0 {
			b.r += i + 2
			return un[:i], nil
		}
		if len(un) >= limit {
			return nil, errBadResponse
		}
		if err := b.fillAfter(limit+2, flush); err != nil {
			return nil, err
		}
	}
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
)

// h1writer batches what goes to a client; the engine flushes it before it
// waits on the backend, so a streamed body is never held back while what
// one response brings at once still becomes one write.
//
// Its own buffer is small (heads, small bodies). A large body is read
// straight into a relay buffer from a shared pool, which goes back at the
// next flush: memory for large bodies is held only while they move, not
// per idle connection.
type h1writer struct {
	nc   *sockIO
	buf  []byte
	err  error
	pool *sync.Pool // of *[]byte, relayBufferSize each
	// relay is the pooled buffer buf points into, nil while buf is own.
	relay *[]byte
	own   []byte
}

// maxWriteBatch is the most the writer holds before writing.
const maxWriteBatch = 64 << 10

// relayBufferSize holds a 64 KiB body with its head, so such a response
// that has fully arrived leaves in one write.
const relayBufferSize = maxWriteBatch + 4<<10

func newRelayBuffer() any {
	b := make([]byte, 0, relayBufferSize)
	return &b
}

func (w *h1writer) write(p []byte) {
	if w.err != nil {
		return
	}
	if len(w.buf)+len(p) > maxWriteBatch {
		w.flush()
		if len(p) >= maxWriteBatch/2 {
			_, w.err = w.nc.Write(p)
			return
		}
	}
	w.buf = append(w.buf, p...)
}

// spare returns free room after the batched bytes, at most want bytes, for
// the caller to read into and then claim with grow. It moves the batch into
// a relay buffer when its own is short of room, and flushes a full one.
func (w *h1writer) spare(want int) []byte {
	if w.err != nil {
		return nil
	}
	if w.relay == nil && cap(w.buf)-len(w.buf) < want {
		w.relay = w.pool.Get().(*[]byte)
		w.own = w.buf[:0]
		w.buf = append((*w.relay)[:0], w.buf...)
	}
	if len(w.buf) == cap(w.buf) {
		if w.flush() != nil {
			return nil
		}
		return w.spare(want)
	}
	free := w.buf[len(w.buf):cap(w.buf)]
	return free[:min(len(free), want)]
}

// grow claims n bytes read into what spare returned.
func (w *h1writer) grow(n int) { w.buf = w.buf[:len(w.buf)+n] }

// flush writes what is batched; it returns the first write error, after
// which the writer drops everything.
func (w *h1writer) flush() error {
	if len(w.buf) > 0 && w.err == nil {
		_, w.err = w.nc.Write(w.buf)
	}
	if w.relay != nil {
		// A write that outgrew the relay buffer left it unused; it goes
		// back either way.
		w.pool.Put(w.relay)
		w.relay, w.buf, w.own = nil, w.own, nil
	}
	if cap(w.buf) > maxWriteBatch {
		w.buf = nil // a big head grew it; do not keep it per connection
	}
	w.buf = w.buf[:0]
	return w.err
}
