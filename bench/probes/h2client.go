package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2conn is a raw HTTP/2 client connection (h2c, prior knowledge): frames
// are written as the probe says, valid or not.
type h2conn struct {
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

// h2Dial connects to the h2c listener and sends the preface and settings.
func (t *target) h2Dial(ctx context.Context, settings ...http2.Setting) (*h2conn, error) {
	c, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", t.h2)
	if err != nil {
		return nil, err
	}
	h := &h2conn{c: c}
	h.fr = http2.NewFramer(c, c)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.fr.MaxHeaderListSize = 1 << 20
	h.enc = hpack.NewEncoder(&h.hb)
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		c.Close()
		return nil, err
	}
	if err := h.fr.WriteSettings(settings...); err != nil {
		c.Close()
		return nil, err
	}
	// A large connection window, so only the stream window (the settings)
	// limits what the proxy may send.
	if err := h.fr.WriteWindowUpdate(0, 1<<30); err != nil {
		c.Close()
		return nil, err
	}
	return h, nil
}

func (h *h2conn) close() { h.c.Close() }

// block HPACK-encodes fields in order, exactly as given.
func (h *h2conn) block(fields [][2]string) []byte {
	h.hb.Reset()
	for _, f := range fields {
		_ = h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return append([]byte(nil), h.hb.Bytes()...)
}

// reqFields are the usual request pseudo-headers and extra fields.
func reqFields(method, path string, extra ...[2]string) [][2]string {
	f := [][2]string{{":method", method}, {":scheme", "http"}, {":authority", "probes"}, {":path", path}}
	return append(f, extra...)
}

// headers writes one HEADERS frame with END_HEADERS.
func (h *h2conn) headers(id uint32, fields [][2]string, endStream bool) error {
	_ = h.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block(fields), EndStream: endStream, EndHeaders: true})
}

// streamResult is what the proxy answered on a stream and the connection.
type streamResult struct {
	status  int
	body    int
	ended   bool // END_STREAM received
	rst     http2.ErrCode
	gotRST  bool
	goaway  bool
	gaCode  http2.ErrCode
	closed  bool
	waited  bool // wait passed with nothing that ended the stream
	elapsed time.Duration
	fields  []hpack.HeaderField
}

func (s streamResult) String() string {
	var parts []string
	if s.status != 0 {
		parts = append(parts, fmt.Sprintf("%d, %d body bytes", s.status, s.body))
	}
	if s.ended {
		parts = append(parts, "END_STREAM")
	}
	if s.gotRST {
		parts = append(parts, "RST_STREAM "+s.rst.String())
	}
	if s.goaway {
		parts = append(parts, "GOAWAY "+s.gaCode.String())
	}
	if s.closed {
		parts = append(parts, "closed")
	}
	if s.waited {
		parts = append(parts, "nothing more")
	}
	if len(parts) == 0 {
		parts = append(parts, "no answer")
	}
	return strings.Join(parts, ", ") + ", " + fmtDur(s.elapsed)
}

// rejected: the stream or connection was refused without a 2xx.
func (s streamResult) rejected() bool {
	return (s.status >= 400 && s.status < 500) || (s.status == 0 && (s.gotRST || s.goaway || s.closed))
}

// get sends a GET and waits for its answer.
func (h *h2conn) get(ctx context.Context, id uint32, path string, extra [][2]string, wait time.Duration) streamResult {
	start := time.Now()
	if err := h.headers(id, reqFields("GET", path, extra...), true); err != nil {
		return streamResult{closed: true, elapsed: time.Since(start)}
	}
	return h.await(ctx, id, start, wait)
}

// await reads frames until stream id ends, the connection ends or wait
// passes, answering SETTINGS and PING and returning flow-control credit.
func (h *h2conn) await(ctx context.Context, id uint32, start time.Time, wait time.Duration) streamResult {
	return h.awaitOpts(ctx, id, start, wait, true)
}

func (h *h2conn) awaitOpts(ctx context.Context, id uint32, start time.Time, wait time.Duration, credit bool) streamResult {
	var s streamResult
	deadline := start.Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = h.c.SetReadDeadline(deadline)
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				s.waited = true
			case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF):
				s.closed = true
			default:
				var se http2.StreamError
				if errors.As(err, &se) {
					continue
				}
				s.closed = true
			}
			s.elapsed = time.Since(start)
			return s
		}
		_ = h.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = h.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			s.goaway, s.gaCode = true, f.ErrCode
			if f.LastStreamID < id || f.ErrCode != http2.ErrCodeNo {
				s.elapsed = time.Since(start)
				return s
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				if st, err := strconv.Atoi(f.PseudoValue("status")); err == nil && st >= 200 {
					s.status = st
					s.fields = f.Fields
				}
				if f.StreamEnded() {
					s.ended = true
					s.elapsed = time.Since(start)
					return s
				}
			}
		case *http2.DataFrame:
			if n := len(f.Data()); n > 0 && credit {
				_ = h.fr.WriteWindowUpdate(f.StreamID, uint32(n))
			}
			if f.StreamID == id {
				s.body += len(f.Data())
				if f.StreamEnded() {
					s.ended = true
					s.elapsed = time.Since(start)
					return s
				}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				s.gotRST, s.rst = true, f.ErrCode
				s.elapsed = time.Since(start)
				return s
			}
		}
	}
}
