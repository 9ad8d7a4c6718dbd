package h2

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/false-systems/rauta/internal/poll"
)

// maxFloodGrowth is the most a flood on one connection may grow the heap
// by (issue 14: a SETTINGS flood grew it by 1.17 GiB).
const maxFloodGrowth = 16 << 20

// floodBytes bounds what a flood test sends: enough to fill the loopback
// socket buffers (a few MiB) many times over, so a server without the
// limit grows far past maxFloodGrowth.
const floodBytes = 64 << 20

// heapWatch samples the heap while a flood runs and keeps the peak.
type heapWatch struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func watchHeap() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{base: ms.HeapAlloc, stop: make(chan struct{}), done: make(chan struct{})}
	w.peak.Store(ms.HeapAlloc)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > w.peak.Load() {
				w.peak.Store(ms.HeapAlloc)
			}
		}
	}()
	return w
}

// growth stops the sampling and returns the peak's growth over the base.
func (w *heapWatch) growth() uint64 {
	close(w.stop)
	<-w.done
	if p := w.peak.Load(); p > w.base {
		return p - w.base
	}
	return 0
}

// flood writes the frames gen makes (i counts from 0) to c in 64 KiB
// writes, until max bytes are written, a write fails (the server closed)
// or d passes, and returns the frames written. It never reads.
func flood(c net.Conn, max int, d time.Duration, gen func(fr *http2.Framer, i int)) int {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	fr.AllowIllegalWrites = true
	c.SetWriteDeadline(time.Now().Add(d))
	defer c.SetWriteDeadline(time.Time{})
	frames, sent := 0, 0
	for sent < max {
		buf.Reset()
		for buf.Len() < 64<<10 {
			gen(fr, frames)
			frames++
		}
		if _, err := c.Write(buf.Bytes()); err != nil {
			return frames
		}
		sent += buf.Len()
	}
	return frames
}

// floodResult is what a flood test checks.
type floodResult struct {
	frames int
	growth uint64
	goAway *http2.GoAwayFrame // nil when the client never got to read it
	closed bool
	resets int // RST_STREAM frames read
}

// runFlood opens a connection, sends a flood without reading, then reads
// until the server closes, and checks the limits every flood must keep:
// heap growth under maxFloodGrowth, the connection closed, and its
// goroutines and ServeConn gone afterwards.
func runFlood(t *testing.T, ts *testServer, gen func(fr *http2.Framer, i int)) floodResult {
	t.Helper()
	rc := ts.dialRaw(t)
	rc.ping()
	goroutines := runtime.NumGoroutine()
	w := watchHeap()
	var res floodResult
	res.frames = flood(rc.c, floodBytes, 20*time.Second, gen)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		f, err := rc.next(time.Until(deadline))
		if err != nil {
			var ne net.Error
			res.closed = !errors.As(err, &ne) || !ne.Timeout()
			break
		}
		if _, ok := f.(*http2.RSTStreamFrame); ok {
			res.resets++
		}
	}
	res.goAway = rc.goAway
	res.growth = w.growth()
	t.Logf("%d frames sent, heap grew %.1f MiB, %d RST_STREAM, GOAWAY %v, closed %v",
		res.frames, float64(res.growth)/(1<<20), res.resets, res.goAway, res.closed)
	if res.growth > maxFloodGrowth {
		t.Errorf("heap grew %.1f MiB during the flood, want under %d MiB", float64(res.growth)/(1<<20), maxFloodGrowth>>20)
	}
	if !res.closed {
		t.Errorf("connection still open after a flood of %d frames", res.frames)
	}
	rc.c.Close()
	if !ts.waitServing(5 * time.Second) {
		t.Error("ServeConn still running 5s after the flood")
	}
	// The connection's goroutines (reader, writer, workers) are gone: a
	// few of the test's own may come and go.
	if !poll.Until(5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines }) {
		t.Errorf("%d goroutines after the flood, %d before it", runtime.NumGoroutine(), goroutines)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > w.base+4<<20 {
		t.Errorf("heap %.1f MiB over its size before the flood after the connection closed", float64(ms.HeapAlloc-w.base)/(1<<20))
	}
	return res
}

// logBuf collects a server's log, debug level included.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// wantAbuse checks that the server closed the connection for reason: in
// its GOAWAY ENHANCE_YOUR_CALM when the client read it, and in its log.
func wantAbuse(t *testing.T, res floodResult, logs *logBuf, reason string) {
	t.Helper()
	if ga := res.goAway; ga != nil && (ga.ErrCode != http2.ErrCodeEnhanceYourCalm || !strings.Contains(string(ga.DebugData()), reason)) {
		t.Errorf("GOAWAY %v %q, want ENHANCE_YOUR_CALM %q", ga.ErrCode, ga.DebugData(), reason)
	}
	if !poll.Until(2*time.Second, func() bool { return strings.Contains(logs.String(), reason) }) {
		t.Errorf("server log does not say %q:\n%s", reason, logs.String())
	}
}

// requestBlock is an HPACK block for a GET with the given path, encoded
// without the dynamic table, so it can be sent any number of times.
func requestBlock(path string, extra ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSizeLimit(0)
	kv := append([]string{":method", "GET", ":scheme", "https", ":authority", "example.test", ":path", path}, extra...)
	for i := 0; i+1 < len(kv); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return buf.Bytes()
}

// TestControlFrameFlood: a client that asks for control frames (SETTINGS
// and PING acks) and never reads them loses the connection once 1000 are
// queued, instead of growing the queue by every frame (issue 14:
// +1.17 GiB from 256 MiB of empty SETTINGS; CVE-2019-9515, CVE-2019-9512).
func TestControlFrameFlood(t *testing.T) {
	cases := map[string]func(fr *http2.Framer, i int){
		"SETTINGS": func(fr *http2.Framer, i int) { fr.WriteSettings() },
		"PING":     func(fr *http2.Framer, i int) { fr.WritePing(false, [8]byte{byte(i)}) },
	}
	for name, gen := range cases {
		t.Run(name, func(t *testing.T) {
			logs := &logBuf{}
			ts := startCleartext(t, &Server{Logger: logs.logger()}, http.HandlerFunc(echoHandler))
			res := runFlood(t, ts, gen)
			wantAbuse(t, res, logs, "too many queued control frames")
		})
	}
}

// TestResetFlood: streams that end in a reset cost the server work and the
// client nothing, so each connection has a budget of them (ResetBudget,
// 200), refilled by completed streams: past it the connection ends with
// GOAWAY ENHANCE_YOUR_CALM. Issue 14: malformed HEADERS each got a
// RST_STREAM, without limit and without GOAWAY (CVE-2019-9514); rapid reset
// (CVE-2023-44487) opens and cancels streams.
func TestResetFlood(t *testing.T) {
	var calls atomic.Int64
	// The handler runs until the client cancels, so that every reset
	// hits a running stream.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		<-ctx.Done()
	})
	malformed := requestBlock("") // an empty :path is malformed (RFC 9113 8.3.1)
	valid := requestBlock("/")
	cases := map[string]func(fr *http2.Framer, i int){
		"malformed HEADERS": func(fr *http2.Framer, i int) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: malformed, EndStream: true, EndHeaders: true})
		},
		"rapid reset": func(fr *http2.Framer, i int) {
			id := uint32(2*i + 1)
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: valid, EndStream: true, EndHeaders: true})
			fr.WriteRSTStream(id, http2.ErrCodeCancel)
		},
	}
	for name, gen := range cases {
		t.Run(name, func(t *testing.T) {
			calls.Store(0)
			logs := &logBuf{}
			ts := startCleartext(t, &Server{Logger: logs.logger()}, h)
			res := runFlood(t, ts, gen)
			wantAbuse(t, res, logs, "too many stream resets")
			// The budget, a little refill over time, and the streams
			// of the last read before the GOAWAY.
			if res.resets > 400 {
				t.Errorf("%d RST_STREAM sent, want about the budget of 200", res.resets)
			}
			if n := calls.Load(); n > 400 {
				t.Errorf("%d handlers ran for streams the client reset at once, want about the budget of 200", n)
			}
		})
	}

	t.Run("completed streams refill the budget", func(t *testing.T) {
		ts := startCleartext(t, &Server{Limits: Limits{ResetBudget: 5}}, http.HandlerFunc(echoHandler))
		rc := ts.dialRaw(t)
		// Each round: one stream the client resets, one that completes.
		// 20 resets against a budget of 5: only the completed streams
		// keep the connection.
		for i := uint32(0); i < 20; i++ {
			id := 4*i + 1
			rc.request(id, "POST", "/", false)
			rc.write(func() error { return rc.fr.WriteRSTStream(id, http2.ErrCodeCancel) })
			rc.request(id+2, "GET", "/", true)
			if r := rc.one(id + 2); r.status != "200" {
				t.Fatalf("round %d: %v (GOAWAY %v %q)", i, r, rc.goAway, rc.goAwayDbg)
			}
		}
	})
}
