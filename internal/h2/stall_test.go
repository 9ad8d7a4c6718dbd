package h2

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/poll"
)

// stallSlack is how much later than its timeout a stalled stream may be
// cut: the sweep's quarter, and a loaded test machine.
const stallSlack = 5 * time.Second

// handlerErrs records the error each handler saw and counts the handlers
// that returned.
type handlerErrs struct {
	mu       sync.Mutex
	errs     []error
	returned atomic.Int32
}

func (h *handlerErrs) add(err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
}

// timeouts counts the recorded errors that are timeouts.
func (h *handlerErrs) timeouts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, err := range h.errs {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			n++
		}
	}
	return n
}

// streamIDs returns n client stream ids from 1.
func streamIDs(n int) []uint32 {
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(2*i + 1)
	}
	return ids
}

// TestBodyIdleTimeout: streams that declare a request body and never send
// it are ended after BodyIdleTimeout: 408 when the handler had not begun
// its response, RST_STREAM CANCEL when it had; the handlers' reads fail
// and they return, freeing their slots. Before, they waited for as long
// as the client held the connection.
func TestBodyIdleTimeout(t *testing.T) {
	const streams = 200
	const timeout = 300 * time.Millisecond
	for _, flushed := range []bool{false, true} {
		t.Run("flushed="+strconv.FormatBool(flushed), func(t *testing.T) {
			var he handlerErrs
			ts := startCleartext(t, &Server{BodyIdleTimeout: timeout, MaxConcurrentStreams: 2 * streams},
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					defer he.returned.Add(1)
					if flushed {
						w.WriteHeader(200)
						w.(http.Flusher).Flush()
					}
					_, err := io.ReadAll(r.Body)
					he.add(err)
				}))
			rc := ts.dialRaw(t)
			w := watchHeap()
			start := time.Now()
			ids := streamIDs(streams)
			for _, id := range ids {
				rc.request(id, "POST", "/", false, "content-length", "10")
			}
			res, err := rc.collect(timeout+stallSlack, ids...)
			took := time.Since(start)
			growth := w.growth()
			if err != nil {
				t.Fatalf("after %v: %v", took, err)
			}
			for _, id := range ids {
				r := res[id]
				switch {
				case !flushed && (r.status != "408" || !r.ended):
					t.Fatalf("stream %d: %v, want 408", id, r)
				case flushed && (!r.reset || r.code != http2.ErrCodeCancel):
					t.Fatalf("stream %d: %v, want RST_STREAM CANCEL", id, r)
				}
			}
			if took < timeout {
				t.Errorf("streams ended after %v, before the timeout of %v", took, timeout)
			}
			if !poll.Until(stallSlack, func() bool { return he.returned.Load() == streams }) {
				t.Fatalf("%d of %d handlers returned", he.returned.Load(), streams)
			}
			if n := he.timeouts(); n != streams {
				t.Errorf("%d of %d handlers' reads failed with a timeout: %v", n, streams, he.errs[:1])
			}
			if growth > maxFloodGrowth {
				t.Errorf("heap grew %.1f MiB", float64(growth)/(1<<20))
			}
			t.Logf("%d streams ended after %v, heap grew %.1f MiB", streams, took, float64(growth)/(1<<20))
			// The slots are free: a new stream is served.
			rc.request(2*streams+1, "GET", "/", true)
			if r := rc.one(2*streams + 1); r.status != "200" && r.status != "408" {
				t.Errorf("a stream after the stalled ones: %v", r)
			}
		})
	}
}

// TestBodyIdleProgress: a client that sends its body slowly, a piece
// every third of the timeout for three timeouts, is not cut: each DATA
// frame is progress.
func TestBodyIdleProgress(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startCleartext(t, &Server{BodyIdleTimeout: timeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	}))
	rc := ts.dialRaw(t)
	rc.request(1, "POST", "/", false)
	for i := range 10 {
		time.Sleep(timeout / 3)
		rc.data(1, i == 9, []byte{'a' + byte(i)})
	}
	if r := rc.one(1); r.status != "200" || string(r.body) != "abcdefghij" {
		t.Fatalf("slow body: %v %q", r, r.body)
	}
}

// TestSendStallTimeout: streams whose response the client never lets the
// server send, with a stream window of 0 (400 streams) or an exhausted
// connection window, are reset with RST_STREAM CANCEL after
// SendStallTimeout; the handlers' writes fail and they return. Issue 14:
// 400 such streams held their handlers for over 130 s (CVE-2019-9517).
func TestSendStallTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	cases := []struct {
		name     string
		streams  int
		settings []http2.Setting
	}{
		{"stream window 0", 400, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}},
		{"connection window 0", 20, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1 << 20}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var he handlerErrs
			big := make([]byte, 64<<10) // past the response buffer: Write sends
			ts := startCleartext(t, &Server{SendStallTimeout: timeout, MaxConcurrentStreams: 500},
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					defer he.returned.Add(1)
					_, err := w.Write(big)
					he.add(err)
				}))
			rc := ts.dialRaw(t, tc.settings...)
			rc.autoWindow = false
			w := watchHeap()
			start := time.Now()
			ids := streamIDs(tc.streams)
			for _, id := range ids {
				rc.request(id, "GET", "/", true)
			}
			res, err := rc.collect(timeout+stallSlack, ids...)
			took := time.Since(start)
			growth := w.growth()
			if err != nil {
				t.Fatalf("after %v: %v", took, err)
			}
			for _, id := range ids {
				if r := res[id]; !r.reset || r.code != http2.ErrCodeCancel {
					t.Fatalf("stream %d: %v, want RST_STREAM CANCEL", id, r)
				}
			}
			if took < timeout {
				t.Errorf("streams reset after %v, before the timeout of %v", took, timeout)
			}
			if !poll.Until(stallSlack, func() bool { return he.returned.Load() == int32(tc.streams) }) {
				t.Fatalf("%d of %d handlers returned", he.returned.Load(), tc.streams)
			}
			if n := he.timeouts(); n != tc.streams {
				t.Errorf("%d of %d handlers' writes failed with a timeout", n, tc.streams)
			}
			if growth > maxFloodGrowth {
				t.Errorf("heap grew %.1f MiB", float64(growth)/(1<<20))
			}
			t.Logf("%d streams reset after %v, heap grew %.1f MiB", tc.streams, took, float64(growth)/(1<<20))
		})
	}
}

// TestSendStallProgress: a client that reads slowly, granting 16 KiB every
// third of the timeout, gets its whole 256 KiB response: data sent is
// progress, so only a window that stays shut is cut.
func TestSendStallProgress(t *testing.T) {
	const timeout = 300 * time.Millisecond
	body := pattern(256 << 10)
	ts := startCleartext(t, &Server{SendStallTimeout: timeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	rc := ts.dialRaw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 16 << 10})
	rc.autoWindow = false
	rc.request(1, "GET", "/", true)
	var got []byte
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < len(body) && time.Now().Before(deadline) {
		f, err := rc.next(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			t.Fatalf("after %d bytes: RST_STREAM %v", len(got), f.ErrCode)
		case *http2.DataFrame:
			got = append(got, f.Data()...)
			if len(got)%(16<<10) == 0 && len(got) < len(body) {
				time.Sleep(timeout / 3)
				rc.write(func() error { return rc.fr.WriteWindowUpdate(0, 16<<10) })
				rc.write(func() error { return rc.fr.WriteWindowUpdate(1, 16<<10) })
			}
		}
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes, want %d", len(got), len(body))
	}
}

// TestWriteTimeout: a client that grants window but stops reading the
// socket blocks the connection's writer; after WriteTimeout the
// connection closes and the handler's writes fail.
func TestWriteTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	writeErr := make(chan error, 1)
	ts := startCleartext(t, &Server{WriteTimeout: timeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 1024 { // 64 MiB at most: far past the socket buffers
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}))
	rc := ts.dialRaw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	rc.write(func() error { return rc.fr.WriteWindowUpdate(0, 1<<31-1-initialWindow) })
	rc.ping()
	start := time.Now()
	rc.request(1, "GET", "/", true)
	// The client reads nothing from here on.
	if err := nextErr(t, writeErr, "handler still writing 5 s after the write timeout"); err == nil {
		t.Fatal("64 MiB written to a client that reads nothing")
	}
	t.Logf("handler's write failed after %v", time.Since(start))
	if !ts.waitServing(stallSlack) {
		t.Error("connection still served after the write timeout")
	}
}

// TestHeaderBlockTimeout: a header block trickled in CONTINUATION frames
// must end within ReadTimeout: no other frame of the connection may come
// in between, so it would hold the whole connection.
func TestHeaderBlockTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	logs := &logBuf{}
	ts := startCleartext(t, &Server{ReadTimeout: timeout, Logger: logs.logger()}, http.HandlerFunc(echoHandler))
	rc := ts.dialRaw(t)
	block := rc.encode(":method", "GET", ":scheme", "http", ":authority", "example.test", ":path", "/",
		"x-a", "1", "x-b", "2", "x-c", "3", "x-d", "4", "x-e", "5", "x-f", "6", "x-g", "7", "x-h", "8")
	start := time.Now()
	rc.write(func() error {
		return rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:1], EndStream: true})
	})
	// One byte every third of the timeout: 20 frames would take 2 s, and
	// stay under MaxContinuationFrames (24).
	sent := 0
	for i := 1; i < 20 && i < len(block); i++ {
		time.Sleep(timeout / 3)
		rc.wmu.Lock()
		err := rc.fr.WriteContinuation(1, false, block[i:i+1])
		rc.wmu.Unlock()
		if err != nil {
			break
		}
		sent++
	}
	goAway, closed := rc.waitClosed(stallSlack)
	if !closed {
		t.Fatalf("connection open %v after a header block began", time.Since(start))
	}
	if sent >= 19 {
		t.Errorf("all %d CONTINUATION frames taken over %v", sent, time.Since(start))
	}
	if goAway != nil && goAway.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", goAway.ErrCode)
	}
	t.Logf("closed after %d CONTINUATION frames, %v", sent, time.Since(start))
}

// TestBodyIdleQuietClient: a handler that waits for the body while it
// streams its response (a gRPC bidi call whose client is quiet) is not
// cut: data either way is progress.
func TestBodyIdleQuietClient(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const chunks = 10 // over three timeouts
	ts := startCleartext(t, &Server{BodyIdleTimeout: timeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(r.Body)
			read <- err
		}()
		for range chunks {
			if _, err := w.Write([]byte("chunk;")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(timeout / 3)
		}
		if err := <-read; err != nil {
			w.Write([]byte("body: " + err.Error()))
		}
	}))
	rc := ts.dialRaw(t)
	rc.request(1, "POST", "/", false)
	var got []byte
	sentEnd := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		f, err := rc.next(5 * time.Second)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			t.Fatalf("after %q: RST_STREAM %v", got, f.ErrCode)
		case *http2.DataFrame:
			got = append(got, f.Data()...)
			if !sentEnd && len(got) == chunks*len("chunk;") {
				rc.data(1, true, nil)
				sentEnd = true
			}
			if f.StreamEnded() {
				if want := bytes.Repeat([]byte("chunk;"), chunks); !bytes.Equal(got, want) {
					t.Fatalf("got %q, want %q", got, want)
				}
				return
			}
		}
	}
	t.Fatalf("stream not ended; got %q", got)
}

// TestZeroValueDefaults pins the defaults docs/http2.md lists: the zero
// Server and Limits are the safe settings, so a caller that sets none (or
// a flag left at 0) gets them.
func TestZeroValueDefaults(t *testing.T) {
	l := Limits{}.withDefaults()
	want := Limits{MaxQueuedControlFrames: 1000, ResetBudget: 200, MaxHeaderFields: 100, MaxContinuationFrames: 24,
		MaxEmptyFrames: 1, MaxPriorityFramesPerStream: 100, MaxWindowUpdatesPerDataFrame: 10}
	if l != want {
		t.Errorf("Limits{} means %+v, want %+v", l, want)
	}
	s := &Server{}
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"ReadTimeout", s.readTimeout(), 10 * time.Second},
		{"BodyIdleTimeout", s.bodyIdleTimeout(), 60 * time.Second},
		{"SendStallTimeout", s.sendStallTimeout(), 60 * time.Second},
		{"WriteTimeout", s.writeTimeout(), 60 * time.Second},
	} {
		if c.got != c.want {
			t.Errorf("%s 0 means %v, want %v", c.name, c.got, c.want)
		}
	}
}
