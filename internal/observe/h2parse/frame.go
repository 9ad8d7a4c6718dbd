// Package h2parse decodes h2c (cleartext HTTP/2) connections from captured
// TCP segments and pairs each stream's request HEADERS with its response
// HEADERS (and, for gRPC, the grpc-status of its trailers) into
// pair.Exchange values, the same ones the HTTP/1.x pairer emits.
//
// HPACK makes every header block depend on all earlier ones of the same
// direction (the dynamic table), so a connection is decoded only when it
// was seen from its client preface and every byte that could hold a
// header block arrived in order. When bytes are missing (a ring-buffer
// drop, a capture window that cuts a frame the parser needs, a segment
// out of order) the connection is marked desynchronised: its pending
// streams are dropped and counted, and nothing more is reported for it.
// An exchange is never reported from state that may be wrong.
package h2parse

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/net/http2/hpack"

	"github.com/false-systems/rauta/internal/observe/httpparse"
)

// Preface is the HTTP/2 client connection preface (RFC 9113 3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Frame types and flags (RFC 9113 6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20

	frameHeaderLen = 9
)

// Errors that desynchronise a direction; each is counted by reason.
var (
	errProtocol = errors.New("h2: frame sequence not valid HTTP/2")
	errHPACK    = errors.New("h2: header block does not decode")
	errLimit    = errors.New("h2: header block over the size limit")
)

// Block is a decoded header block with the fields the observer uses.
type Block struct {
	Stream    uint32
	EndStream bool
	// Push: a PUSH_PROMISE's block, decoded only to keep the dynamic
	// table in step.
	Push bool
	// TS is the kernel timestamp of the segment holding the block's
	// first byte.
	TS uint64

	Method, Path, Authority, Scheme string
	UserAgent, ContentType          string
	TraceParent, TraceState         string
	Status                          int   // :status, 0 when absent
	GRPCStatus                      int   // grpc-status, -1 when absent
	ContentLength                   int64 // -1 when absent
	// RequestIDHash is httpparse.HashRequestID of the one x-request-id
	// field, 0 without one or with several (as for HTTP/1.x): what the
	// gateway's join finds an upstream leg to an h2c backend by.
	RequestIDHash uint64
	requestIDs    int
}

func (b *Block) reset(stream uint32, endStream bool, ts uint64) {
	*b = Block{Stream: stream, EndStream: endStream, TS: ts, GRPCStatus: -1, ContentLength: -1}
}

// Strings kept from a header block are cut at this length (the HTTP/1.x
// parser cuts targets at 256 bytes, Host and User-Agent at 128).
const (
	maxPathLen  = 256
	maxFieldLen = 128
)

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (b *Block) field(f hpack.HeaderField) {
	switch f.Name {
	case ":method":
		b.Method = cut(f.Value, maxFieldLen)
	case ":path":
		b.Path = cut(f.Value, maxPathLen)
	case ":authority":
		b.Authority = cut(f.Value, maxFieldLen)
	case ":scheme":
		b.Scheme = cut(f.Value, maxFieldLen)
	case ":status":
		if n, err := strconv.Atoi(f.Value); err == nil && n >= 100 && n <= 999 {
			b.Status = n
		}
	case "user-agent":
		b.UserAgent = cut(f.Value, maxFieldLen)
	case "content-type":
		b.ContentType = cut(f.Value, maxFieldLen)
	case "traceparent":
		b.TraceParent = cut(f.Value, maxFieldLen)
	case "tracestate":
		b.TraceState = cut(f.Value, httpparse.MaxTraceStateLen)
	case "grpc-status":
		if n, err := strconv.Atoi(f.Value); err == nil && n >= 0 && n <= 16 {
			b.GRPCStatus = n
		}
	case "content-length":
		if n, err := strconv.ParseInt(f.Value, 10, 64); err == nil && n >= 0 {
			b.ContentLength = n
		}
	case "x-request-id":
		if b.requestIDs++; b.requestIDs == 1 {
			b.RequestIDHash = httpparse.HashRequestID(f.Value)
		} else {
			b.RequestIDHash = 0
		}
	}
}

// isGRPC: content-type application/grpc, +proto, +json, ...
func isGRPC(contentType string) bool {
	return strings.HasPrefix(contentType, "application/grpc")
}

// sink receives what a direction's frames say.
type sink interface {
	headers(b *Block)
	endStream(stream uint32, ts uint64)
	rstStream(stream uint32, ts uint64)
	goAway(lastStream uint32, ts uint64)
}

type state uint8

const (
	stHeader   state = iota // reading a 9-byte frame header
	stPrefix                // reading a HEADERS/PUSH_PROMISE pad length, priority, promised id
	stFragment              // feeding a header block fragment to HPACK
	stSmall                 // reading RST_STREAM's code / GOAWAY's last stream and code
	stSkip                  // skipping payload the observer does not need
)

// framer follows one direction's frames. Its memory is bounded by the
// HPACK dynamic table (Limits.MaxTable) and the decoder's string buffer
// (Limits.MaxString); header blocks are decoded as their bytes arrive,
// never buffered whole.
type framer struct {
	lim *Limits
	dec *hpack.Decoder
	out sink

	st     state
	buf    [frameHeaderLen]byte // frame header, prefix or small payload
	have   int                  // bytes of buf filled
	need   int                  // bytes of buf wanted in stPrefix/stSmall
	typ    uint8
	flags  uint8
	stream uint32
	remain uint32 // payload bytes left in the current frame
	pad    uint32 // trailing padding of the current frame

	inBlock    bool // a header block awaits CONTINUATION frames
	blockBytes int
	block      Block
}

func newFramer(lim *Limits, out sink) *framer {
	f := &framer{lim: lim, out: out}
	// The table starts at the protocol's 4096 bytes; the encoder may grow
	// it (announced in the block) up to what its peer's SETTINGS allow,
	// which the observer does not track: it allows up to MaxTable.
	f.dec = hpack.NewDecoder(4096, f.block.field)
	f.dec.SetAllowedMaxDynamicTableSize(lim.MaxTable)
	f.dec.SetMaxStringLength(lim.MaxString)
	return f
}

// feed consumes bytes in stream order; ts is their segment's timestamp.
func (f *framer) feed(p []byte, ts uint64) error {
	for len(p) > 0 {
		switch f.st {
		case stHeader:
			n := copy(f.buf[f.have:frameHeaderLen], p)
			f.have += n
			p = p[n:]
			if f.have == frameHeaderLen {
				if err := f.frameStart(ts); err != nil {
					return err
				}
			}
		case stPrefix, stSmall:
			n := copy(f.buf[f.have:f.need], p)
			f.have += n
			p = p[n:]
			f.remain -= uint32(n)
			if f.have == f.need {
				if err := f.prefixDone(ts); err != nil {
					return err
				}
			}
		case stFragment:
			n := min(uint32(len(p)), f.remain-f.pad)
			f.blockBytes += int(n)
			if f.blockBytes > f.lim.MaxHeaderBlock {
				return errLimit
			}
			if _, err := f.dec.Write(p[:n]); err != nil {
				return errHPACK
			}
			p = p[n:]
			f.remain -= n
			if f.remain == f.pad {
				if err := f.fragmentDone(); err != nil {
					return err
				}
			}
		case stSkip:
			n := min(uint32(len(p)), f.remain)
			p = p[n:]
			f.remain -= n
			if f.remain == 0 {
				f.st, f.have = stHeader, 0
			}
		}
	}
	return nil
}

// skipMissing accounts for n bytes the capture did not hold. Only the
// payload of a frame the observer skips anyway can be missing.
func (f *framer) skipMissing(n uint32) bool {
	if n == 0 {
		return true
	}
	if f.st != stSkip || f.remain < n {
		return false
	}
	f.remain -= n
	if f.remain == 0 {
		f.st, f.have = stHeader, 0
	}
	return true
}

func (f *framer) frameStart(ts uint64) error {
	h := f.buf[:frameHeaderLen]
	f.remain = uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
	f.typ, f.flags = h[3], h[4]
	f.stream = binary.BigEndian.Uint32(h[5:9]) & 0x7fffffff
	f.have, f.pad = 0, 0
	// A header block is one HEADERS (or PUSH_PROMISE) and its
	// CONTINUATIONs with nothing between (RFC 9113 6.10).
	if f.inBlock != (f.typ == frameContinuation) || f.inBlock && f.stream != f.block.Stream {
		return errProtocol
	}
	switch f.typ {
	case frameData:
		if f.stream == 0 {
			return errProtocol
		}
		if f.flags&flagEndStream != 0 {
			f.out.endStream(f.stream, ts)
		}
	case frameHeaders, framePushPromise:
		if f.stream == 0 {
			return errProtocol
		}
		f.block.reset(f.stream, f.typ == frameHeaders && f.flags&flagEndStream != 0, ts)
		f.block.Push = f.typ == framePushPromise
		f.inBlock, f.blockBytes = true, 0
		f.need = 0
		if f.flags&flagPadded != 0 {
			f.need++
		}
		if f.typ == framePushPromise {
			f.need += 4
		} else if f.flags&flagPriority != 0 {
			f.need += 5
		}
		if uint32(f.need) > f.remain {
			return errProtocol
		}
		if f.need > 0 {
			f.st = stPrefix
			return nil
		}
		return f.startFragment()
	case frameContinuation:
		return f.startFragment()
	case frameRSTStream:
		if f.remain != 4 || f.stream == 0 {
			return errProtocol
		}
		f.st, f.need = stSmall, 4
		return nil
	case frameGoAway:
		if f.remain < 8 || f.stream != 0 {
			return errProtocol
		}
		f.st, f.need = stSmall, 8
		return nil
	}
	f.skip()
	return nil
}

// skip ignores the rest of the current frame's payload.
func (f *framer) skip() {
	f.st, f.have = stSkip, 0
	if f.remain == 0 {
		f.st = stHeader
	}
}

func (f *framer) prefixDone(ts uint64) error {
	switch f.typ {
	case frameRSTStream:
		f.out.rstStream(f.stream, ts)
		f.skip()
		return nil
	case frameGoAway:
		f.out.goAway(binary.BigEndian.Uint32(f.buf[0:4])&0x7fffffff, ts)
		f.skip()
		return nil
	}
	if f.flags&flagPadded != 0 {
		f.pad = uint32(f.buf[0])
		if f.pad > f.remain {
			return errProtocol
		}
	}
	return f.startFragment()
}

func (f *framer) startFragment() error {
	f.st, f.have = stFragment, 0
	if f.remain == f.pad {
		return f.fragmentDone()
	}
	return nil
}

// fragmentDone ends a frame's fragment: the block is complete with
// END_HEADERS; trailing padding is skipped.
func (f *framer) fragmentDone() error {
	if f.flags&flagEndHeaders != 0 {
		f.inBlock = false
		if err := f.dec.Close(); err != nil {
			return errHPACK
		}
		f.out.headers(&f.block)
	}
	f.skip()
	return nil
}
