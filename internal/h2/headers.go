package h2

import (
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headerBlock is the header block being read: a HEADERS frame and its
// CONTINUATION frames, decoded by the reader as each frame arrives, so that
// the field count, the list size and the frame count are bounded while
// decoding rather than checked afterwards (x/net's Framer bounds a block's
// bytes only, and reads any number of empty CONTINUATION frames:
// CVE-2023-45288). It belongs to the reader goroutine; handleHeaders reads
// it under c.mu.
type headerBlock struct {
	id        uint32
	endStream bool
	hasPrio   bool
	prio      http2.PriorityParam
	// fields holds the pseudo-header fields, then the regular ones; the
	// slice is reused block after block.
	fields  []hpack.HeaderField
	npseudo int
	size    uint32 // the header list size so far (RFC 9113 6.5.2)
	frames  int    // CONTINUATION frames so far
	// tooLarge: past MaxHeaderBytes or Limits.MaxHeaderFields; the
	// request is answered 431. invalid: a malformed field (RFC 9113
	// 8.2.1), answered with a stream error. After either, decoding goes
	// on with emitting off, to keep the HPACK state.
	tooLarge, invalid bool
}

func (b *headerBlock) pseudo() []hpack.HeaderField  { return b.fields[:b.npseudo] }
func (b *headerBlock) regular() []hpack.HeaderField { return b.fields[b.npseudo:] }

// maxKeptFields bounds the field slice a connection keeps between blocks.
const maxKeptFields = 256

// maxPseudoFields is the number of request pseudo-header fields there are
// (:method, :scheme, :authority, :path, :protocol): a block with more
// repeats one, which is malformed.
const maxPseudoFields = 5

// readHeaderFrame decodes a HEADERS or CONTINUATION frame into c.hb and
// reports whether the block is complete. Only the reader calls it, without
// c.mu: the decoder and c.hb are its own.
func (c *conn) readHeaderFrame(f http2.Frame) (done bool, err error) {
	b := &c.hb
	var frag []byte
	var end bool
	switch f := f.(type) {
	case *http2.HeadersFrame:
		if cap(b.fields) > maxKeptFields {
			b.fields = nil
		}
		*b = headerBlock{id: f.StreamID, endStream: f.StreamEnded(), hasPrio: f.HasPriority(), prio: f.Priority, fields: b.fields[:0]}
		c.hdec.SetEmitEnabled(true)
		frag, end = f.HeaderBlockFragment(), f.HeadersEnded()
	case *http2.ContinuationFrame: // the Framer checks it follows its HEADERS
		if b.frames++; b.frames > c.lim.MaxContinuationFrames {
			// The HPACK state cannot be kept without decoding the rest,
			// so the connection ends.
			return false, abuse("too many CONTINUATION frames")
		}
		frag, end = f.HeaderBlockFragment(), f.HeadersEnded()
	}
	if _, err := c.hdec.Write(frag); err != nil {
		return false, http2.ConnectionError(http2.ErrCodeCompression)
	}
	if !end {
		if !c.hbOpen {
			// A block in several frames must end within ReadTimeout:
			// no other frame may come between them, so a trickled
			// block holds the whole connection.
			c.hbOpen = true
			c.nc.SetReadDeadline(time.Now().Add(c.srv.readTimeout())) //nolint:errcheck // a failed read reports it
		}
		return false, nil
	}
	if c.hbOpen {
		c.hbOpen = false
		c.nc.SetReadDeadline(time.Time{}) //nolint:errcheck // a failed read reports it
	}
	if err := c.hdec.Close(); err != nil {
		return false, http2.ConnectionError(http2.ErrCodeCompression)
	}
	return true, nil
}

// emitField takes one decoded field into c.hb, checking it as RFC 9113
// 8.2.1 and 8.3 ask and counting it against the limits.
func (c *conn) emitField(hf hpack.HeaderField) {
	b := &c.hb
	switch pseudo := strings.HasPrefix(hf.Name, ":"); {
	case !httpguts.ValidHeaderFieldValue(hf.Value),
		pseudo && (len(b.fields) > b.npseudo || b.npseudo == maxPseudoFields),
		!pseudo && !ValidWireName(hf.Name):
		b.invalid = true
	case !pseudo && len(b.fields)-b.npseudo >= c.lim.MaxHeaderFields:
		b.tooLarge = true
	default:
		if b.size += hf.Size(); b.size > c.srv.maxHeaderBytes() {
			b.tooLarge = true
			break
		}
		b.fields = append(b.fields, hf)
		if pseudo {
			b.npseudo++
		}
		return
	}
	c.hdec.SetEmitEnabled(false)
}

// ValidWireName reports a valid field name as HTTP/2 sends it: a token in
// lower case (RFC 9113 8.2.1). The client (internal/h2client) checks
// response heads with it too.
func ValidWireName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !httpguts.IsTokenRune(rune(c)) || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}
