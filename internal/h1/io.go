package h1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"unsafe"
)

// ErrHeadTooLarge: no end of head within the allowed size.
var ErrHeadTooLarge = errors.New("message head too large")

// Reader is a connection with a read buffer that the engine parses in
// place: one read usually brings a whole request or response head, often
// with its body.
type Reader struct {
	Sock *Socket
	Buf  []byte
	R, W int // unread bytes are Buf[R:W]
	// scanned is how many unread bytes are known not to end a head.
	scanned int
}

func (b *Reader) Buffered() []byte { return b.Buf[b.R:b.W] }

// Reset forgets the unread bytes, keeping the buffer: a backend connection
// starting an exchange, or a client connection giving its buffer back.
func (b *Reader) Reset() { b.R, b.W, b.scanned = 0, 0, 0 }

// Fill reads at least one byte more, compacting the buffer or growing it up
// to limit bytes when it is full.
func (b *Reader) Fill(limit int) error {
	if err := b.makeRoom(limit); err != nil {
		return err
	}
	n, err := b.Sock.Read(b.Buf[b.W:])
	return b.Filled(n, err)
}

// SendFill writes p on the socket, then fills as Fill does, without a
// read before the answer to p can have come (Socket.WriteRead). sent is
// false when the error is the write's.
func (b *Reader) SendFill(p []byte, limit int) (sent bool, err error) {
	if err := b.makeRoom(limit); err != nil {
		return false, err
	}
	w, n, err := b.Sock.WriteRead(p, b.Buf[b.W:])
	if w < len(p) {
		return false, err
	}
	return true, b.Filled(n, err)
}

// FillAfter is Fill for a relay: it takes what has arrived without
// waiting, and only when nothing has does it acknowledge what it read
// (AckNow), run flush (sending what the relay holds) and wait.
func (b *Reader) FillAfter(limit int, flush func() error) error {
	if err := b.makeRoom(limit); err != nil {
		return err
	}
	n, err := b.Sock.ReadNow(b.Buf[b.W:])
	if errors.Is(err, ErrWouldBlock) {
		b.Sock.AckNow()
		if err := flush(); err != nil {
			return err
		}
		n, err = b.Sock.Read(b.Buf[b.W:])
	}
	return b.Filled(n, err)
}

// makeRoom makes space after the unread bytes: it compacts the buffer, or
// grows it up to limit bytes.
func (b *Reader) makeRoom(limit int) error {
	if b.R == b.W {
		b.R, b.W = 0, 0
	}
	if b.W < len(b.Buf) {
		return nil
	}
	switch {
	case b.R > 0:
		b.W = copy(b.Buf, b.Buf[b.R:b.W])
		b.R = 0
	case len(b.Buf) < limit:
		nb := make([]byte, min(2*len(b.Buf), limit))
		b.W = copy(nb, b.Buf[b.R:b.W])
		b.R, b.Buf = 0, nb
	default:
		return ErrHeadTooLarge
	}
	return nil
}

// Filled accounts for a read of n bytes into the buffer.
func (b *Reader) Filled(n int, err error) error {
	b.W += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// Head returns the message head at the start of the unread bytes, through
// its empty line, as one string whose substrings the parsers keep. It
// consumes it. ok is false while the head is incomplete.
//
// The string is a view of *scratch, which the caller owns and reuses, so
// reading a head allocates nothing: it stays valid until the next head
// read into the same scratch, which is why the client's request heads and
// the backend's response heads each have their own, owned by the client
// connection (a pooled backend connection moves between clients).
func (b *Reader) Head(scratch *[]byte) (head string, ok bool) {
	un := b.Buf[b.R:b.W]
	i := bytes.Index(un[b.scanned:], crlfcrlf)
	if i < 0 {
		b.scanned = max(0, len(un)-3)
		return "", false
	}
	end := b.scanned + i + 4
	b.scanned = 0
	b.R += end
	if cap(*scratch) > MaxKeptHead {
		*scratch = nil // a big head grew it; do not keep it per connection
	}
	*scratch = append((*scratch)[:0], un[:end]...)
	return unsafe.String(unsafe.SliceData(*scratch), end), true
}

// MaxKeptHead is the largest head buffer a connection keeps for reuse.
const MaxKeptHead = 16 << 10

// ReadHead reads until a whole head is buffered and returns it as Head
// does; limit bounds the head's size.
func (b *Reader) ReadHead(limit int, scratch *[]byte) (string, error) {
	for {
		if h, ok := b.Head(scratch); ok {
			if len(h) > limit { // arrived whole in one read
				return "", ErrHeadTooLarge
			}
			return h, nil
		}
		if b.W-b.R >= limit {
			return "", ErrHeadTooLarge
		}
		if err := b.Fill(limit); err != nil {
			return "", err
		}
	}
}

// readLine returns the next line without its CRLF, consuming it; it is
// valid until the next read. flush runs before any read that waits.
func (b *Reader) readLine(limit int, flush func() error) ([]byte, error) {
	for {
		un := b.Buf[b.R:b.W]
		if i := bytes.Index(un, crlf); i >= 0 {
			b.R += i + 2
			return un[:i], nil
		}
		if len(un) >= limit {
			return nil, ErrBadResponse
		}
		if err := b.FillAfter(limit+2, flush); err != nil {
			return nil, err
		}
	}
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
)

// Writer batches what goes to a client; the engine flushes it before it
// waits on the backend, so a streamed body is never held back while what
// one response brings at once still becomes one write.
//
// Its own buffer is small (heads, small bodies). A large body is read
// straight into a relay buffer from a shared pool, which goes back at the
// next flush: memory for large bodies is held only while they move, not
// per idle connection.
type Writer struct {
	Sock *Socket
	Buf  []byte
	err  error
	Pool *sync.Pool // of *[]byte, RelayBufferSize each
	// relay is the pooled buffer Buf points into, nil while Buf is own.
	relay *[]byte
	own   []byte
}

// maxWriteBatch is the most the writer holds before writing.
const maxWriteBatch = 64 << 10

// RelayBufferSize holds a 64 KiB body with its head, so such a response
// that has fully arrived leaves in one write.
const RelayBufferSize = maxWriteBatch + 4<<10

func NewRelayBuffer() any {
	b := make([]byte, 0, RelayBufferSize)
	return &b
}

func (w *Writer) Add(p []byte) {
	if w.err != nil {
		return
	}
	if len(w.Buf)+len(p) > maxWriteBatch {
		w.Flush()
		if len(p) >= maxWriteBatch/2 {
			_, w.err = w.Sock.Write(p)
			return
		}
	}
	if w.relay == nil && cap(w.Buf)-len(w.Buf) < len(p) {
		// Into a pooled relay buffer rather than growing the own one:
		// append would allocate a new array per large response (three
		// in four bytes allocated in the 64 KiB cell, docs/performance.md
		// round 11) and Flush would drop it again.
		w.borrowRelay()
	}
	w.Buf = append(w.Buf, p...)
}

// borrowRelay moves the batch into a relay buffer from the pool.
func (w *Writer) borrowRelay() {
	w.relay = w.Pool.Get().(*[]byte)
	w.own = w.Buf[:0]
	w.Buf = append((*w.relay)[:0], w.Buf...)
}

// Spare returns free room after the batched bytes, at most want bytes, for
// the caller to read into and then claim with Grow. It moves the batch into
// a relay buffer when its own is short of room, and flushes a full one.
func (w *Writer) Spare(want int) []byte {
	if w.err != nil {
		return nil
	}
	if w.relay == nil && cap(w.Buf)-len(w.Buf) < want {
		w.borrowRelay()
	}
	if len(w.Buf) == cap(w.Buf) {
		if w.Flush() != nil {
			return nil
		}
		return w.Spare(want)
	}
	free := w.Buf[len(w.Buf):cap(w.Buf)]
	return free[:min(len(free), want)]
}

// Grow claims n bytes read into what Spare returned.
func (w *Writer) Grow(n int) { w.Buf = w.Buf[:len(w.Buf)+n] }

// Err returns the first write error; after it the writer drops everything.
func (w *Writer) Err() error { return w.err }

// Idle reports a writer with nothing batched and no relay buffer held, whose
// own buffer its owner may take back (Detach) while the connection idles.
func (w *Writer) Idle() bool { return w.relay == nil && len(w.Buf) == 0 }

// Detach forgets the writer's own buffer, which its owner takes back to a
// pool; the owner sets Buf again before the next write.
func (w *Writer) Detach() { w.Buf, w.own = nil, nil }

// Discard drops what is batched and gives a relay buffer back: the
// connection is ending.
func (w *Writer) Discard() {
	w.putRelay()
	w.Buf = w.Buf[:0]
}

// putRelay gives the relay buffer back, if one is held, and makes the own
// buffer the batch again.
func (w *Writer) putRelay() {
	if w.relay != nil {
		w.Pool.Put(w.relay)
		w.relay, w.Buf, w.own = nil, w.own, nil
	}
}

// Flush writes what is batched; it returns the first write error, after
// which the writer drops everything.
func (w *Writer) Flush() error {
	if len(w.Buf) > 0 && w.err == nil {
		_, w.err = w.Sock.Write(w.Buf)
	}
	// A write that outgrew the relay buffer left it unused; it goes back
	// either way.
	w.putRelay()
	if cap(w.Buf) > maxWriteBatch {
		w.Buf = nil // a big head grew it; do not keep it per connection
	}
	w.Buf = w.Buf[:0]
	return w.err
}

// MaxInterim bounds the 1xx responses skipped before the final one.
const MaxInterim = 16

// ReadFinalHead reads response heads into rs until a final one, skipping
// 1xx: internal/proxy's net/http path does not relay interim responses either. The
// head is copied into *scratch, which rs's strings then view.
// limit bounds each head's size (DefaultMaxResponseHead when <= 0).
func (b *Reader) ReadFinalHead(headRequest bool, limit int, scratch *[]byte, rs *ResponseHead) error {
	if limit <= 0 {
		limit = DefaultMaxResponseHead
	}
	for range MaxInterim {
		head, err := b.ReadHead(limit, scratch)
		if err != nil {
			return err
		}
		if err := ParseResponseHead(head, headRequest, rs); err != nil {
			return err
		}
		switch {
		case rs.Status == http.StatusSwitchingProtocols:
			return errors.New("backend switched protocols without being asked to")
		case rs.Status >= 200:
			return nil
		}
	}
	return errors.New("too many interim responses from backend")
}

// DefaultMaxResponseHead bounds a backend's response head: Envoy's
// default (60 KiB). nginx answers 502 past its proxy_buffer_size (a page),
// HAProxy past its 16 KiB buffer; a head larger than this is a broken or
// hostile backend, not a response worth relaying.
const DefaultMaxResponseHead = 60 << 10

// MaxChunkLine bounds a chunk-size or trailer line.
const MaxChunkLine = 4 << 10

// The chunked framing both engines read (RFC 9112 7.1): a size line, that
// many data bytes and a CRLF, until a zero size; then trailer lines through
// an empty one. The framing is checked here, once, for both.

// ChunkSize reads the next chunk-size line.
func (b *Reader) ChunkSize(flush func() error) (int64, error) {
	line, err := b.readLine(MaxChunkLine, flush)
	if err != nil {
		return 0, err
	}
	return ParseChunkSize(line)
}

// ChunkEnd reads the CRLF that ends a chunk's data.
func (b *Reader) ChunkEnd(flush func() error) error {
	end, err := b.readLine(MaxChunkLine, flush)
	if err != nil {
		return err
	}
	if len(end) != 0 {
		return ErrBadResponse
	}
	return nil
}

// TrailerLine reads the next trailer line, empty at the end of the
// section; a line that is not a well-formed field is an error.
func (b *Reader) TrailerLine(flush func() error) ([]byte, error) {
	line, err := b.readLine(MaxChunkLine, flush)
	if err != nil {
		return nil, err
	}
	if len(line) != 0 && !ValidTrailer(line) {
		return nil, fmt.Errorf("%w: trailer line %.40q", ErrBadResponse, line)
	}
	return line, nil
}
