package h2client

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/false-systems/rauta/internal/h2"
)

// maxContinuations bounds the CONTINUATION frames of one header block, so
// a backend cannot keep the reader busy with empty ones (CVE-2023-45288).
const maxContinuations = 256

// headBlock is the header block being read, decoded as each HEADERS or
// CONTINUATION frame arrives into a field slice the connection keeps (no
// MetaHeadersFrame and its slices per response). It is the reader's own.
type headBlock struct {
	id        uint32
	endStream bool
	fields    []hpack.HeaderField
	npseudo   int
	size      int // header list size so far (RFC 9113 6.5.2)
	frames    int
	tooLarge  bool
	invalid   error // the first malformed field (RFC 9113 8.2.1)
}

func (b *headBlock) pseudo() []hpack.HeaderField  { return b.fields[:b.npseudo] }
func (b *headBlock) regular() []hpack.HeaderField { return b.fields[b.npseudo:] }

// status is the :status value, "" when absent.
func (b *headBlock) status() string {
	for _, f := range b.pseudo() {
		if f.Name == ":status" {
			return f.Value
		}
	}
	return ""
}

// emit takes one decoded field: counted against the size limit, checked,
// kept.
func (cc *conn) emit(f hpack.HeaderField) {
	b := &cc.hb
	b.size += len(f.Name) + len(f.Value) + 32
	if b.size > cc.t.o.MaxResponseHeaderBytes {
		b.tooLarge = true
		cc.dec.SetEmitEnabled(false) // decoding goes on, for the table's sake
		return
	}
	if b.invalid != nil {
		return
	}
	if strings.HasPrefix(f.Name, ":") {
		if len(b.fields) > b.npseudo {
			b.invalid = fmt.Errorf("pseudo-header %s after a regular field", f.Name)
			return
		}
		b.npseudo++
	} else if !h2.ValidWireName(f.Name) {
		b.invalid = fmt.Errorf("field name %q", f.Name)
		return
	}
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		b.invalid = fmt.Errorf("value of field %s", f.Name)
		return
	}
	b.fields = append(b.fields, f)
}

var errCompression = errors.New("h2client: header block does not decode")

// readHeaderFrame decodes a HEADERS or CONTINUATION frame into cc.hb and
// reports whether the block is complete. The Framer has already checked
// that CONTINUATION frames follow their HEADERS on the same stream.
func (cc *conn) readHeaderFrame(f http2.Frame) (done bool, err error) {
	b := &cc.hb
	var frag []byte
	switch f := f.(type) {
	case *http2.HeadersFrame:
		fields := b.fields[:0]
		if cap(fields) > maxKeptFields {
			fields = nil
		}
		*b = headBlock{id: f.StreamID, endStream: f.StreamEnded(), fields: fields}
		cc.dec.SetEmitEnabled(true)
		frag, done = f.HeaderBlockFragment(), f.HeadersEnded()
	case *http2.ContinuationFrame:
		if b.frames++; b.frames > maxContinuations {
			return false, cc.connError(http2.ErrCodeEnhanceYourCalm, "too many CONTINUATION frames")
		}
		frag, done = f.HeaderBlockFragment(), f.HeadersEnded()
	}
	if _, err := cc.dec.Write(frag); err != nil {
		return false, cc.connError(http2.ErrCodeCompression, errCompression.Error())
	}
	if done {
		if err := cc.dec.Close(); err != nil {
			return false, cc.connError(http2.ErrCodeCompression, errCompression.Error())
		}
	}
	return done, nil
}

// maxKeptFields bounds the field slice a connection keeps between blocks.
const maxKeptFields = 256
