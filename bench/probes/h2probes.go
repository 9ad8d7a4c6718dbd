package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/false-systems/rauta/bench/internal/procgroup"
)

// Flood bounds: each flood stops after floodBytes or floodTime, whichever
// comes first; memGrowth is the most the proxy's RSS may grow.
const (
	floodBytes = 64 << 20
	floodTime  = 5 * time.Second
	memGrowth  = 16 << 20
	h2Wait     = 3 * time.Second
)

func h2Probes() []probe {
	g := "HTTP/2"
	return []probe{
		{name: "h2-baseline", group: g, pass: "200 from the backend",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				s := c.get(ctx, 1, t.path("/api/TOK/x"), nil, h2Wait)
				return passIf(s.status == 200 && s.ended, "%s", s)
			}},
		floodProbe("h2-settings-flood", "empty SETTINGS, never reading (CVE-2019-9515)", false, func(b *frameBuf) { _ = b.fr.WriteSettings() }),
		floodProbe("h2-ping-flood", "PING, never reading (CVE-2019-9512)", false, func(b *frameBuf) { _ = b.fr.WritePing(false, [8]byte{1}) }),
		floodProbe("h2-reset-provoking-flood", "HEADERS with an uppercase name on new streams, each answered by RST_STREAM, never reading (CVE-2019-9514)", false, func(b *frameBuf) {
			_ = b.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: b.nextID(), BlockFragment: b.block(reqFields("GET", "/api/x", [2]string{"X-Upper", "1"})), EndStream: true, EndHeaders: true})
		}),
		floodProbe("h2-continuation-flood", "one header block of endless CONTINUATION frames with 1 KiB of fields each (CVE-2024-27316, CVE-2023-45288)", true, func(b *frameBuf) {
			if b.n == 0 {
				_ = b.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.block(reqFields("GET", "/api/x")), EndHeaders: false})
				return
			}
			_ = b.fr.WriteContinuation(1, false, b.block([][2]string{{"x-c", strings.Repeat("c", 1000)}}))
		}),
		floodProbe("h2-empty-continuation-flood", "one header block of endless empty CONTINUATION frames (issue 14 finding 2)", true, func(b *frameBuf) {
			if b.n == 0 {
				_ = b.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.block(reqFields("GET", "/api/x")), EndHeaders: false})
				return
			}
			_ = b.fr.WriteContinuation(1, false, nil)
		}),
		floodProbe("h2-empty-data-flood", "a POST stream of endless empty DATA frames (CVE-2019-9518)", true, func(b *frameBuf) {
			if b.n == 0 {
				_ = b.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.block(reqFields("POST", "/api/x")), EndHeaders: true})
				return
			}
			_ = b.fr.WriteData(1, false, nil)
		}),
		{name: "h2-rapid-reset", group: g, pass: "the proxy ends the connection, or at most 10 % of 20,000 immediately reset requests reach the backend (CVE-2023-44487)",
			run: rapidReset},
		{name: "h2-window-0-stall", group: g, pass: "stream reset or connection closed within the timeout (+50 %) when the client's window stays 0 (CVE-2019-9517 class)",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				start := time.Now()
				if err := c.headers(1, reqFields("GET", t.path("/api/TOK/big")), true); err != nil {
					return passIf(false, "%v", err)
				}
				s := c.awaitOpts(ctx, 1, start, 3*t.timeout, false)
				ok := (s.gotRST || s.goaway || s.closed) && s.elapsed <= t.within()
				return passIf(ok, "%s", s)
			}},
		{name: "h2-body-stall", group: g, pass: "4xx/5xx, stream reset or connection closed within the timeout (+50 %) when a declared body never comes",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				start := time.Now()
				if err := c.headers(1, reqFields("POST", t.path("/api/TOK/x"), [2]string{"content-length", "1000"}), false); err != nil {
					return passIf(false, "%v", err)
				}
				s := c.await(ctx, 1, start, 3*t.timeout)
				ok := (s.status >= 400 || s.status == 0 && (s.gotRST || s.goaway || s.closed)) && s.elapsed <= t.within()
				return passIf(ok, "%s", s)
			}},
		{name: "h2-continuation-trickle", group: g, pass: "a header block trickled one CONTINUATION a second is cut within the timeout (+50 %)",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				start := time.Now()
				_ = c.c.SetWriteDeadline(start.Add(time.Second))
				if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(reqFields("GET", t.path("/api/TOK/x"))), EndHeaders: false, EndStream: true}); err != nil {
					return passIf(false, "%v", err)
				}
				var ended atomic.Value
				done := make(chan struct{})
				go func() {
					defer close(done)
					c.watchEnd(&ended, 1)
				}()
				for i := 0; ended.Load() == nil && time.Since(start) < 3*t.timeout && ctx.Err() == nil; i++ {
					time.Sleep(time.Second)
					_ = c.c.SetWriteDeadline(time.Now().Add(time.Second))
					if err := c.fr.WriteContinuation(1, false, c.block([][2]string{{"x-t", fmt.Sprint(i)}})); err != nil {
						ended.CompareAndSwap(nil, "closed")
					}
				}
				d := time.Since(start)
				e, _ := ended.Load().(string)
				c.close()
				<-done
				if e == "" {
					return passIf(false, "still open after %s", fmtDur(d))
				}
				return passIf(d <= t.within(), "%s after %s", e, fmtDur(d))
			}},
		{name: "h2-window-0-x100", group: g, pass: "100 streams stalled at window 0 on one connection: every one reset (or the connection closed) within the timeout (+50 %)",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				start := time.Now()
				for i := range 100 {
					if err := c.headers(uint32(2*i+1), reqFields("GET", t.path(fmt.Sprintf("/api/TOK/%d/big", i))), true); err != nil {
						return passIf(false, "%v", err)
					}
				}
				cut, last, closed := 0, time.Duration(0), false
				_ = c.c.SetReadDeadline(start.Add(3 * t.timeout))
				for cut < 100 {
					f, err := c.fr.ReadFrame()
					if err != nil {
						var se http2.StreamError
						if errors.As(err, &se) {
							continue
						}
						closed = !isTimeout(err)
						break
					}
					switch f := f.(type) {
					case *http2.RSTStreamFrame:
						cut++
						last = time.Since(start)
					case *http2.GoAwayFrame:
						if f.ErrCode != http2.ErrCodeNo {
							closed = true
						}
					case *http2.SettingsFrame:
						if !f.IsAck() {
							_ = c.fr.WriteSettingsAck()
						}
					}
					if closed {
						break
					}
				}
				if closed {
					last = time.Since(start)
				}
				ok := (cut == 100 || closed) && last <= t.within()
				return passIf(ok, "%d of 100 reset, connection closed: %v, last after %s", cut, closed, fmtDur(last))
			}},
		{name: "h2-cancel-while-waiting", group: g, pass: "RST_STREAM CANCEL from the client aborts the backend exchange within 2 s",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				if err := c.headers(1, reqFields("GET", t.path("/slow/TOK")), true); err != nil {
					return passIf(false, "%v", err)
				}
				time.Sleep(500 * time.Millisecond)
				cancelled := time.Now()
				_ = c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
				return t.awaitSlowGone(ctx, cancelled, "the client reset its stream")
			}},
		{name: "h2-idle", group: g, pass: "a connection with no stream closed within the timeout (+50 %)",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				s := c.await(ctx, 1, time.Now(), 3*t.timeout)
				return passIf((s.goaway || s.closed) && s.elapsed <= t.within(), "%s", s)
			}},
		{name: "h2-hpack-bomb", group: g, pass: "431 or reset, not forwarded: a 4 KiB field indexed once and referenced 1,000 times (4 MB from 5 KB)",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				f := reqFields("GET", t.path("/api/TOK/x"))
				for range 1000 {
					f = append(f, [2]string{"x-bomb", strings.Repeat("b", 4000)})
				}
				base := t.rss()
				start := time.Now()
				if err := c.headers(1, f, true); err != nil {
					return passIf(false, "%v", err)
				}
				s := c.await(ctx, 1, start, h2Wait)
				grow := t.rss() - base
				n := len(t.be.w.requestLines(t.tok))
				return passIf(s.rejected() && n == 0 && grow < memGrowth, "%s; forwarded: %d; RSS %+.1f MiB", s, n, mib(grow))
			}},
		{name: "h2-64k-header", group: g, pass: "431 or reset, not forwarded: one 64 KiB field over HEADERS and CONTINUATION",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				blk := c.block(reqFields("GET", t.path("/api/TOK/x"), [2]string{"x-big", strings.Repeat("a", 64<<10)}))
				start := time.Now()
				// A proxy may end the connection while the block is
				// still being written; what it sent before is read below.
				werr := c.writeBlock(1, blk)
				s := c.await(ctx, 1, start, h2Wait)
				if werr != nil && !s.rejected() {
					s.closed = true
				}
				n := len(t.be.w.requestLines(t.tok))
				return passIf(s.rejected() && n == 0, "%s; forwarded: %d", s, n)
			}},
		malformed("h2-path-absolute-form", "rejected (RFC 9113 8.3.1), not forwarded", [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "probes"}, {":path", "http://evil.example/api/TOK/x"}}),
		malformed("h2-missing-path", "rejected (RFC 9113 8.3.1), not forwarded", [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "probes"}, {"x-tok", "TOK"}}),
		malformed("h2-duplicate-path", "rejected (RFC 9113 8.3), not forwarded", [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "probes"}, {":path", "/api/TOK/a"}, {":path", "/api/TOK/b"}}),
		malformed("h2-pseudo-after-regular", "rejected (RFC 9113 8.3), not forwarded", [][2]string{{":method", "GET"}, {":scheme", "http"}, {"x-a", "1"}, {":authority", "probes"}, {":path", "/api/TOK/x"}}),
		malformed("h2-uppercase-name", "rejected (RFC 9113 8.2.1), not forwarded", reqFields("GET", "/api/TOK/x", [2]string{"X-Upper", "1"})),
		malformed("h2-connection-header", "rejected (RFC 9113 8.2.2), not forwarded", reqFields("GET", "/api/TOK/x", [2]string{"connection", "keep-alive"})),
		malformed("h2-te-gzip", "rejected (RFC 9113 8.2.2: te other than trailers), not forwarded", reqFields("GET", "/api/TOK/x", [2]string{"te", "gzip"})),
		malformed("h2-crlf-in-value", "rejected (RFC 9113 8.2.1), not forwarded", reqFields("GET", "/api/TOK/x", [2]string{"x-a", "1\r\nX-Injected: TOK"})),
		malformed("h2-space-in-method", "rejected, not forwarded", [][2]string{{":method", "GET /api/TOK-smuggled HTTP/1.1\r\nX:"}, {":scheme", "http"}, {":authority", "probes"}, {":path", "/api/TOK/x"}}),
		h2Smuggle("h2-transfer-encoding-chunked", [2]string{"transfer-encoding", "chunked"}),
		h2Smuggle("h2-content-length-mismatch", [2]string{"content-length", "0"}),
		{name: "h2-stream-id-reuse", group: g, pass: "connection error (GOAWAY or close), no second response on a closed stream",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				first := c.get(ctx, 1, t.path("/api/TOK/a"), nil, h2Wait)
				second := c.get(ctx, 1, t.path("/api/TOK/b"), nil, h2Wait)
				n := len(t.be.w.requestLines(t.tok + "/b"))
				ok := first.status == 200 && (second.goaway || second.closed) && second.status == 0 && n == 0
				return passIf(ok, "first: %s; reused: %s", first, second)
			}},
		{name: "h2-even-stream-id", group: g, pass: "connection error PROTOCOL_ERROR (GOAWAY or close), not forwarded",
			run: func(ctx context.Context, t *target) result {
				c, err := t.h2Dial(ctx)
				if err != nil {
					return passIf(false, "%v", err)
				}
				defer c.close()
				s := c.get(ctx, 2, t.path("/api/TOK/x"), nil, h2Wait)
				n := len(t.be.w.requestLines(t.tok))
				return passIf((s.goaway || s.closed) && s.status == 0 && n == 0, "%s; forwarded: %d", s, n)
			}},
	}
}

// writeBlock writes a header block as HEADERS plus CONTINUATION frames of
// at most 16 KiB.
func (h *h2conn) writeBlock(id uint32, blk []byte) error {
	const max = 16 << 10
	first := blk[:min(len(blk), max)]
	rest := blk[len(first):]
	_ = h.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: true, EndHeaders: len(rest) == 0}); err != nil {
		return err
	}
	for len(rest) > 0 {
		part := rest[:min(len(rest), max)]
		rest = rest[len(part):]
		if err := h.fr.WriteContinuation(id, len(rest) == 0, part); err != nil {
			return err
		}
	}
	return nil
}

// malformed sends one request with the given fields (TOK replaced);
// the proxy must refuse it and forward nothing.
func malformed(name, pass string, fields [][2]string) probe {
	return probe{name: name, group: "HTTP/2", pass: pass,
		run: func(ctx context.Context, t *target) result {
			c, err := t.h2Dial(ctx)
			if err != nil {
				return passIf(false, "%v", err)
			}
			defer c.close()
			f := make([][2]string, len(fields))
			for i, kv := range fields {
				f[i] = [2]string{kv[0], t.path(kv[1])}
			}
			start := time.Now()
			if err := c.headers(1, f, true); err != nil {
				return passIf(false, "%v", err)
			}
			s := c.await(ctx, 1, start, h2Wait)
			n := len(t.be.w.heads(t.tok))
			return passIf(s.rejected() && n == 0, "%s; forwarded: %d", s, n)
		}}
}

// h2Smuggle sends a POST with field whose DATA is a chunked end and a
// second request: an HTTP/2-to-HTTP/1.1 downgrade that copies the field
// lets the backend see the second request.
func h2Smuggle(name string, field [2]string) probe {
	return probe{name: name, group: "HTTP/2", pass: "rejected, and the smuggled request never reaches the backend",
		run: func(ctx context.Context, t *target) result {
			c, err := t.h2Dial(ctx)
			if err != nil {
				return passIf(false, "%v", err)
			}
			defer c.close()
			start := time.Now()
			if err := c.headers(1, reqFields("POST", t.path("/api/TOK/x"), field), false); err != nil {
				return passIf(false, "%v", err)
			}
			_ = c.fr.WriteData(1, true, []byte(t.path(chunkedSmuggle())))
			s := c.await(ctx, 1, start, h2Wait)
			time.Sleep(200 * time.Millisecond) // let a smuggled request reach the backend
			n := len(t.be.w.requestLines(t.tok + "-smuggled"))
			return passIf(n == 0 && s.rejected(), "%s; smuggled at backend: %d", s, n)
		}}
}

// frameBuf builds frames for a flood into a buffer.
type frameBuf struct {
	buf bytes.Buffer
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
	n   int    // frames built so far
	id  uint32 // last stream id handed out
}

func newFrameBuf() *frameBuf {
	b := &frameBuf{}
	b.fr = http2.NewFramer(&b.buf, nil)
	b.fr.AllowIllegalWrites = true
	b.enc = hpack.NewEncoder(&b.hb)
	return b
}

func (b *frameBuf) nextID() uint32 {
	b.id += 2
	return b.id - 1
}

func (b *frameBuf) block(fields [][2]string) []byte {
	b.hb.Reset()
	for _, f := range fields {
		_ = b.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return append([]byte(nil), b.hb.Bytes()...)
}

// floodResult is what a flood did to the proxy.
type floodResult struct {
	sent       int64
	frames     int
	ended      string // how the proxy ended the connection, "" if it did not
	peak, last int64  // RSS growth during the flood and 2 s after the close
	dur        time.Duration
	cpu        float64 // proxy CPU seconds from the dial to the close
}

// floodProbe writes frames built by next as fast as the proxy reads them,
// bounded by floodBytes and floodTime. With mustEnd the proxy must end the
// connection before the flood does; always its RSS must grow by less than
// memGrowth during the flood and after the close.
func floodProbe(name, what string, mustEnd bool, next func(*frameBuf)) probe {
	pass := fmt.Sprintf("%s: RSS growth under %d MiB during and 2 s after", what, memGrowth>>20)
	if mustEnd {
		pass += "; the proxy ends the connection before the flood ends"
	}
	return probe{name: name, group: "HTTP/2", pass: pass,
		run: func(ctx context.Context, t *target) result {
			r, err := t.flood(ctx, next, mustEnd)
			if err != nil {
				return passIf(false, "%v", err)
			}
			ok := r.peak < memGrowth && r.last < memGrowth && (!mustEnd || r.ended != "")
			ended := r.ended
			if ended == "" {
				ended = "connection still open"
			}
			return passIf(ok, "%s after %.1f MiB (%d frames) in %s; proxy CPU %.2f s; RSS peak %+.1f MiB, after close %+.1f MiB",
				ended, mib(r.sent), r.frames, fmtDur(r.dur), r.cpu, mib(r.peak), mib(r.last))
		}}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (t *target) flood(ctx context.Context, next func(*frameBuf), read bool) (floodResult, error) {
	var r floodResult
	base := t.rss()
	cpu0 := procgroup.CPUSeconds(t.proc.PGID())
	c, err := t.h2Dial(ctx)
	if err != nil {
		return r, err
	}
	defer c.close()
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // sample RSS
		defer wg.Done()
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if g := t.rss() - base; g > peak.Load() {
					peak.Store(g)
				}
			}
		}
	}()
	var ended atomic.Value
	if read { // the attacker reads: GOAWAY and the close are seen at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.watchEnd(&ended, 1)
		}()
	}
	fb := newFrameBuf()
	start := time.Now()
	for r.sent < floodBytes && time.Since(start) < floodTime && ended.Load() == nil && ctx.Err() == nil {
		fb.buf.Reset()
		before := fb.n
		for fb.buf.Len() < 32<<10 {
			next(fb)
			fb.n++
		}
		_ = c.c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.c.Write(fb.buf.Bytes())
		r.sent += int64(n)
		// Frames of a batch written in part count in proportion.
		r.frames += (fb.n - before) * n / fb.buf.Len()
		if err != nil && !isTimeout(err) {
			ended.CompareAndSwap(nil, "closed")
			break
		}
	}
	r.dur = time.Since(start)
	time.Sleep(300 * time.Millisecond) // a GOAWAY in flight
	// Read before closing: the reader sees our own close as an error too.
	if e, ok := ended.Load().(string); ok {
		r.ended = e
	}
	c.close()
	r.cpu = procgroup.CPUSeconds(t.proc.PGID()) - cpu0
	close(stop)
	wg.Wait()
	time.Sleep(2 * time.Second) // the proxy notices the close and frees
	r.peak = max(peak.Load(), t.rss()-base)
	r.last = t.rss() - base
	return r, nil
}

// watchEnd reads frames until the connection ends or the flood's time is
// over, storing in ended the first sign that the proxy ended it: a GOAWAY,
// the close, or RST_STREAM of stream (0: no stream's reset counts).
func (h *h2conn) watchEnd(ended *atomic.Value, stream uint32) {
	_ = h.c.SetReadDeadline(time.Now().Add(floodTime + 5*time.Second))
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				continue
			}
			if !isTimeout(err) {
				ended.CompareAndSwap(nil, "closed")
			}
			return
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			ended.CompareAndSwap(nil, "GOAWAY "+f.ErrCode.String())
		case *http2.RSTStreamFrame:
			if stream != 0 && f.StreamID == stream {
				ended.CompareAndSwap(nil, "RST_STREAM "+f.ErrCode.String())
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// rapidReset opens and at once resets 20,000 streams, reading what the
// proxy sends.
func rapidReset(ctx context.Context, t *target) result {
	const streams = 20000
	c, err := t.h2Dial(ctx)
	if err != nil {
		return passIf(false, "%v", err)
	}
	defer c.close()
	var ended atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.watchEnd(&ended, 0)
	}()
	fb := newFrameBuf()
	start := time.Now()
	sent := 0
	for sent < streams && time.Since(start) < floodTime && ended.Load() == nil {
		fb.buf.Reset()
		for i := 0; i < 100 && sent < streams; i++ {
			id := fb.nextID()
			_ = fb.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: fb.block(reqFields("GET", t.path(fmt.Sprintf("/api/TOK-r/%d", id)))), EndStream: true, EndHeaders: true})
			_ = fb.fr.WriteRSTStream(id, http2.ErrCodeCancel)
			sent++
		}
		_ = c.c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.c.Write(fb.buf.Bytes()); err != nil {
			ended.CompareAndSwap(nil, "closed")
			break
		}
	}
	dur := time.Since(start)
	time.Sleep(time.Second)       // requests still on their way to the backend
	e, _ := ended.Load().(string) // before our own close, which the reader sees too
	c.close()
	<-done
	n := len(t.be.w.requestLines(t.tok + "-r/"))
	if e == "" {
		e = "connection still open"
	}
	return passIf(e != "connection still open" || n <= streams/10, "%s after %d streams in %s; %d reached the backend", e, sent, fmtDur(dur), n)
}
