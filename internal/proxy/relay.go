package proxy

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/upstream"
)

// relayBody is the one copy of a backend's response body to the client, for
// every forwarding path. The body comes from a bodySource: an
// upstream.Conn read as the response head frames it (the HTTP/1.1 engine
// and the pooled path), or the Transport's decoded body read to its end
// (TLS and h2c backends, declined upgrades). It goes to a bodySink: the
// engine's client writer, which frames it for HTTP/1.1 itself (h1sink), or
// net/http's ResponseWriter (httpSink). Whichever pair, the same rules
// hold: what the backend has sent is taken without waiting and reaches the
// client no later than the next wait on the backend (the sink is flushed
// before it), so event streams, gRPC and long polls never sit in a buffer;
// each wait on the backend is bounded by its connection's relay deadline
// (BackendIdleTimeout, the route's deadline) or the Transport's watch, each
// wait on the client by ClientSendTimeout; chunked trailers (gRPC's status)
// reach the client as trailers.
//
// A Transport body cannot tell a read that will wait from one that will
// not, so the sink is flushed before every read of it but the first: a
// small body still leaves with its head in one write, and a trickling one
// streams whether or not its length is known (the Transport path used to
// hold a known-length body in net/http's buffer while it waited).

// bodySource is a backend response body.
type bodySource struct {
	// uc is the backend connection, framing and length how its body ends.
	uc      *upstream.Conn
	framing h1.Framing
	length  int64
	// r is the Transport's body, read through buf (framing BodyToEOF);
	// read says r was read before. pending is an error r returned with
	// data, given on the next read.
	r       io.Reader
	buf     []byte
	read    bool
	pending error
}

// bodySink is where a relayed body goes.
type bodySink interface {
	// write takes body bytes.
	write(p []byte) error
	// room is space to read body bytes straight into, at most want long,
	// nil when the sink has none; filled claims k bytes read into it.
	room(want int) []byte
	filled(k int)
	// chunk starts a chunk of size bytes of a body the client gets in
	// chunks (0: the last); chunkEnd ends one.
	chunk(size int64)
	chunkEnd()
	// trailer takes one trailer field line; the empty line ends them.
	trailer(line []byte)
	// flush sends what the sink holds; it runs before every wait on the
	// backend.
	flush() error
	// err is the first error a write met, if the sink defers them.
	err() error
}

// relayBody copies src's body to s and returns the body bytes relayed.
func relayBody(src *bodySource, s bodySink) (int64, error) {
	switch src.framing {
	case h1.BodyLength:
		n, err := relayN(src.uc, src.length, s)
		if err != nil {
			return n, err
		}
		return n, s.err()
	case h1.BodyChunked:
		return relayChunked(src.uc, s)
	case h1.BodyToEOF:
		return relayToEOF(src, s)
	}
	return 0, nil
}

// directRelay is the smallest rest of a body relayN reads straight into
// the sink's room.
const directRelay = 16 << 10

// relayN copies exactly n bytes. A large rest is read straight into the
// sink's room when it has one (copied once); a small one goes through the
// backend read buffer, which may also take the chunk framing after it.
func relayN(uc *upstream.Conn, n int64, s bodySink) (int64, error) {
	flush := s.flush
	done := int64(0)
	for done < n {
		if uc.R < uc.W {
			k := min(n-done, int64(uc.W-uc.R))
			if err := s.write(uc.Buf[uc.R : uc.R+int(k)]); err != nil {
				return done, err
			}
			uc.R += int(k)
			done += k
			continue
		}
		if n-done >= directRelay {
			if p := s.room(int(min(n-done, h1.RelayBufferSize))); p != nil {
				k, err := uc.Sock.ReadNow(p)
				if errors.Is(err, h1.ErrWouldBlock) {
					uc.Sock.AckNow() // the backend may hold its last piece for our ACK
					if err := flush(); err != nil {
						return done, err
					}
					if p = s.room(int(min(n-done, h1.RelayBufferSize))); p == nil {
						return done, s.err()
					}
					k, err = uc.Sock.Read(p)
				}
				s.filled(k)
				done += int64(k)
				if err != nil {
					return done, err
				}
				continue
			}
			if err := s.err(); err != nil {
				return done, err
			}
		}
		if err := uc.FillAfter(len(uc.Buf), flush); err != nil {
			return done, err
		}
	}
	return done, nil
}

// relayChunked passes a chunked body through chunk by chunk, trailers
// included, checking its framing to find its end. Chunk extensions are
// dropped (RFC 9112 7.1.1 lets recipients ignore them) and trailer lines
// must be well-formed fields, so a client reads exactly the framing RAUTA
// read.
func relayChunked(uc *upstream.Conn, s bodySink) (int64, error) {
	flush := s.flush
	total := int64(0)
	for {
		size, err := uc.ChunkSize(flush)
		if err != nil {
			return total, err
		}
		s.chunk(size)
		if size == 0 {
			break
		}
		if _, err := relayN(uc, size, s); err != nil {
			return total, err
		}
		total += size
		if err := uc.ChunkEnd(flush); err != nil {
			return total, err
		}
		s.chunkEnd()
	}
	for { // trailer section, through its empty line
		line, err := uc.TrailerLine(flush)
		if err != nil {
			return total, err
		}
		s.trailer(line)
		if len(line) == 0 {
			return total, s.err()
		}
	}
}

// relayToEOF copies a body that ends with its source, each piece as a
// chunk for a sink that frames (the engine keeps the client connection
// open that way).
func relayToEOF(src *bodySource, s bodySink) (int64, error) {
	flush := s.flush
	total := int64(0)
	for {
		p, err := src.next(flush)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, err
		}
		s.chunk(int64(len(p)))
		if err := s.write(p); err != nil {
			return total, err
		}
		s.chunkEnd()
		total += int64(len(p))
	}
	s.chunk(0)
	s.trailer(nil)
	return total, s.err()
}

// next returns the next piece of a body read to its end, waiting (after
// flush) only when nothing has arrived; io.EOF at the end.
func (src *bodySource) next(flush func() error) ([]byte, error) {
	if src.r == nil {
		uc := src.uc
		if uc.R == uc.W {
			if err := uc.FillAfter(len(uc.Buf), flush); err != nil {
				return nil, err
			}
		}
		p := uc.Buf[uc.R:uc.W]
		uc.R = uc.W
		return p, nil
	}
	for src.pending == nil {
		if src.read {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		src.read = true
		n, err := src.r.Read(src.buf)
		src.pending = err
		if n > 0 {
			return src.buf[:n], nil
		}
	}
	return nil, src.pending
}

// h1sink is the HTTP/1.1 engine's client writer as a bodySink: it writes
// the client's framing itself, so a chunked or re-framed body keeps its
// chunks, and defers write errors to Flush and Err.
type h1sink h1conn

// crlf ends a line of the chunked framing the engine writes.
var crlf = []byte("\r\n")

func (s *h1sink) write(p []byte) error { s.Out.Add(p); return nil }
func (s *h1sink) room(want int) []byte { return s.Out.Spare(want) }
func (s *h1sink) filled(k int)         { s.Out.Grow(k) }
func (s *h1sink) chunkEnd()            { s.Out.Add(crlf) }
func (s *h1sink) flush() error         { return s.Out.Flush() }
func (s *h1sink) err() error           { return s.Out.Err() }
func (s *h1sink) trailer(line []byte)  { s.Out.Add(line); s.Out.Add(crlf) }
func (s *h1sink) chunk(size int64) {
	s.Out.Buf = strconv.AppendInt(s.Out.Buf, size, 16)
	s.Out.Add(crlf)
}

// httpSink is net/http's ResponseWriter as a bodySink: net/http frames
// the body, trailer lines become its trailers (in h, the response's header
// map), and each wait for the client is bounded by ClientSendTimeout.
type httpSink struct {
	cs clientSend
	h  http.Header
}

func (s *httpSink) write(p []byte) error {
	if _, err := s.cs.Write(p); err != nil {
		return clientError{Err: err}
	}
	return nil
}

func (s *httpSink) room(int) []byte { return nil }
func (s *httpSink) filled(int)      {}
func (s *httpSink) chunk(int64)     {}
func (s *httpSink) chunkEnd()       {}
func (s *httpSink) flush() error    { return s.cs.flush() }
func (s *httpSink) err() error      { return nil }

func (s *httpSink) trailer(line []byte) {
	if len(line) == 0 {
		return
	}
	name, value, _ := strings.Cut(string(line), ":")
	if !h1.IsHopField(name) {
		k := http.TrailerPrefix + http.CanonicalHeaderKey(name)
		s.h[k] = append(s.h[k], h1.TrimOWS(value))
	}
}
