package h2client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Bounds on every wait in these tests. None is an assertion on speed: each
// is how long a test waits for something that must happen before it fails
// with a message instead of hanging.
const (
	waitShort = 5 * time.Second  // something that should happen at once
	waitLong  = 20 * time.Second // a transfer of megabytes under -race
	reqTTL    = 10 * time.Second // context deadline of an ordinary request
)

// pattern returns n deterministic pseudo-random bytes for seed (xorshift64*).
func pattern(seed uint64, n int) []byte {
	b := make([]byte, n+8)
	x := seed*0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D
	for i := 0; i < n; i += 8 {
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		binary.LittleEndian.PutUint64(b[i:], x*0x2545F4914F6CDD1D)
	}
	return b[:n]
}

// firstDiff describes where got and want first differ, for failure messages.
func firstDiff(got, want []byte) string {
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("len(got)=%d len(want)=%d, first difference at byte %d", len(got), len(want), i)
		}
	}
	return fmt.Sprintf("len(got)=%d len(want)=%d, equal up to the shorter", len(got), len(want))
}

// recv waits up to d for a value from ch and fails the test if none comes.
func recv[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}

// eventually polls cond every 10ms for up to d and fails with what if it
// never holds.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newTransport returns New(o) whose idle connections are closed when the test
// ends.
func newTransport(t *testing.T, o Options) *Transport {
	t.Helper()
	tr := New(o)
	if tr == nil {
		t.Fatal("New returned nil")
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// newRequest makes a request whose context ends after reqTTL (or the test).
func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), reqTTL)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

type rtResult struct {
	resp *http.Response
	err  error
}

// goRoundTrip runs RoundTrip in a goroutine; the result arrives on the channel.
// A response nobody took is closed when the test ends.
func goRoundTrip(t *testing.T, tr *Transport, req *http.Request) <-chan rtResult {
	ch := make(chan rtResult, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err == nil && resp == nil {
			err = errors.New("RoundTrip returned a nil response and a nil error")
		}
		if err == nil && resp.Body == nil {
			err = errors.New("RoundTrip returned a response with a nil Body")
		}
		ch <- rtResult{resp, err}
	}()
	return ch
}

// roundTrip calls RoundTrip, failing the test if it does not return within
// waitLong; a response's body is closed when the test ends.
func roundTrip(t *testing.T, tr *Transport, req *http.Request) (*http.Response, error) {
	t.Helper()
	r := recv(t, goRoundTrip(t, tr, req), waitLong, "RoundTrip to return")
	if r.err == nil {
		t.Cleanup(func() { r.resp.Body.Close() })
	}
	return r.resp, r.err
}

// mustRoundTrip is roundTrip that fails the test on an error.
func mustRoundTrip(t *testing.T, tr *Transport, req *http.Request) *http.Response {
	t.Helper()
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatalf("RoundTrip %s %s: %v", req.Method, req.URL, err)
	}
	return resp
}

type readResult struct {
	b   []byte
	err error
}

// readAll reads r to its end or error, failing the test if that takes more
// than waitLong.
func readAll(t *testing.T, r io.Reader) ([]byte, error) {
	t.Helper()
	ch := make(chan readResult, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- readResult{b, err}
	}()
	res := recv(t, ch, waitLong, "the response body to be read to its end or an error")
	return res.b, res.err
}

// readFull reads exactly len(p) bytes of r, failing the test if that takes
// more than waitShort or fails.
func readFull(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	ch := make(chan readResult, 1)
	go func() {
		p := make([]byte, n)
		_, err := io.ReadFull(r, p)
		ch <- readResult{p, err}
	}()
	res := recv(t, ch, waitShort, fmt.Sprintf("%d bytes of the response body", n))
	if res.err != nil {
		t.Fatalf("reading %d bytes of the response body: %v", n, res.err)
	}
	return res.b
}

// ---- net/http's HTTP/2 server over clear text ----

// h2cServer serves h2c with prior knowledge by net/http's server on
// 127.0.0.1, counting the connections it accepted and those it has seen end.
type h2cServer struct {
	addr     string
	url      string // "http://" + addr
	accepted atomic.Int64
	closed   atomic.Int64 // connections that reached StateClosed
}

// startH2C serves h with cfg's HTTP/2 settings (nil: net/http's defaults).
func startH2C(t *testing.T, cfg *http.HTTP2Config, h http.Handler) *h2cServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &h2cServer{addr: ln.Addr().String()}
	s.url = "http://" + s.addr
	var serving, handlers sync.WaitGroup
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		h.ServeHTTP(w, r)
	})
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler: wrapped, Protocols: &protocols, HTTP2: cfg,
		ErrorLog: log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.accepted.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.closed.Add(1)
			}
		},
	}
	serving.Add(1)
	go func() {
		defer serving.Done()
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		waitGroup(t, &serving, "the h2c server to stop")
		waitGroup(t, &handlers, "the h2c server's handlers to return")
	})
	return s
}

// waitGroup waits up to waitLong for wg.
func waitGroup(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitLong):
		t.Errorf("timed out after %v waiting for %s", waitLong, what)
	}
}

// ---- a raw HTTP/2 server scripted frame by frame ----

// rawServer accepts connections on 127.0.0.1, does the HTTP/2 handshake
// (client preface, SETTINGS both ways) and hands each connection to script.
type rawServer struct {
	addr     string
	url      string
	accepted atomic.Int64
	t        *testing.T

	mu    sync.Mutex
	conns []net.Conn
}

// rawConn is one server connection of a rawServer. Its methods are called
// from the script's goroutine only.
type rawConn struct {
	t      *testing.T
	index  int // 0 for the server's first connection, 1 for the second...
	c      net.Conn
	fr     *http2.Framer
	enc    *hpack.Encoder
	encBuf bytes.Buffer

	clientSettings map[http2.SettingID]uint32
	settingsAcked  int  // SETTINGS ACKs received from the client
	autoWindow     bool // answer each DATA with WINDOW_UPDATEs (default true)
	pingAcks       [][8]byte
	connUpdates    int64            // WINDOW_UPDATE increments on stream 0
	streamUpdates  map[uint32]int64 // WINDOW_UPDATE increments per stream
}

// startRaw starts a raw server advertising settings; script runs once per
// accepted connection after the handshake; the connection is closed when it
// returns. Each connection's deadline is waitLong from its accept.
func startRaw(t *testing.T, settings []http2.Setting, script func(c *rawConn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String(), t: t}
	s.url = "http://" + s.addr
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(waitLong))
				rc := newRawConn(t, i, c)
				if err := rc.handshake(settings); err != nil {
					t.Errorf("raw server conn %d: handshake: %v", i, err)
					return
				}
				script(rc)
				// Close gracefully: a close with unread input would send
				// an RST that can discard what the client has not read yet.
				if tc, ok := c.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		waitGroup(t, &wg, "the raw server's connections to end")
	})
	return s
}

func newRawConn(t *testing.T, index int, c net.Conn) *rawConn {
	rc := &rawConn{
		t:              t,
		index:          index,
		c:              c,
		fr:             http2.NewFramer(c, c),
		clientSettings: map[http2.SettingID]uint32{},
		autoWindow:     true,
		streamUpdates:  map[uint32]int64{},
	}
	rc.fr.SetMaxReadFrameSize(16384) // what a server advertises by default
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.fr.MaxHeaderListSize = 1 << 20
	rc.enc = hpack.NewEncoder(&rc.encBuf)
	return rc
}

// handshake reads the client preface and the client's SETTINGS, writes the
// server's SETTINGS and acknowledges the client's.
func (rc *rawConn) handshake(settings []http2.Setting) error {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(rc.c, preface); err != nil {
		return fmt.Errorf("reading the client preface: %w", err)
	}
	if string(preface) != http2.ClientPreface {
		return fmt.Errorf("client preface is %q, want %q", preface, http2.ClientPreface)
	}
	f, err := rc.fr.ReadFrame()
	if err != nil {
		return fmt.Errorf("reading the client's first frame: %w", err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return fmt.Errorf("client's first frame after the preface is %v, want SETTINGS (RFC 9113 3.4)", f.Header())
	}
	rc.recordSettings(sf)
	if err := rc.fr.WriteSettings(settings...); err != nil {
		return err
	}
	return rc.fr.WriteSettingsAck()
}

func (rc *rawConn) recordSettings(sf *http2.SettingsFrame) {
	sf.ForeachSetting(func(s http2.Setting) error {
		rc.clientSettings[s.ID] = s.Val
		if s.ID == http2.SettingHeaderTableSize {
			rc.enc.SetMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
}

// clientInitialWindow is the client's SETTINGS_INITIAL_WINDOW_SIZE.
func (rc *rawConn) clientInitialWindow() int64 {
	if v, ok := rc.clientSettings[http2.SettingInitialWindowSize]; ok {
		return int64(v)
	}
	return 65535
}

// readFrame returns the next frame that is not SETTINGS, PING (but a PING
// ACK), WINDOW_UPDATE or PRIORITY; those it answers (SETTINGS ACK, PING
// ACK) or records.
func (rc *rawConn) readFrame() (http2.Frame, error) {
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				rc.settingsAcked++
				continue
			}
			rc.recordSettings(f)
			if err := rc.fr.WriteSettingsAck(); err != nil {
				return nil, err
			}
		case *http2.PingFrame:
			if f.IsAck() {
				rc.pingAcks = append(rc.pingAcks, f.Data)
				return f, nil
			}
			if err := rc.fr.WritePing(true, f.Data); err != nil {
				return nil, err
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				rc.connUpdates += int64(f.Increment)
			} else {
				rc.streamUpdates[f.StreamID] += int64(f.Increment)
			}
		case *http2.PriorityFrame:
		case *http2.DataFrame:
			if rc.autoWindow && len(f.Data()) > 0 {
				n := uint32(f.Length) // padding counts too
				if err := rc.fr.WriteWindowUpdate(0, n); err != nil {
					return nil, err
				}
				if !f.StreamEnded() {
					if err := rc.fr.WriteWindowUpdate(f.StreamID, n); err != nil {
						return nil, err
					}
				}
			}
			return f, nil
		default:
			return f, nil
		}
	}
}

// rawRequest is a request's header block as the raw server received it.
type rawRequest struct {
	streamID  uint32
	fields    []hpack.HeaderField
	endStream bool
}

// get returns the value of the first field named name, "" if none.
func (r *rawRequest) get(name string) string {
	for _, f := range r.fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// nextRequest reads frames until a HEADERS block and returns it; nil when the
// connection ends first. DATA and other frames of other streams are skipped.
func (rc *rawConn) nextRequest() *rawRequest {
	for {
		f, err := rc.readFrame()
		if err != nil {
			return nil
		}
		if mh, ok := f.(*http2.MetaHeadersFrame); ok {
			fields := append([]hpack.HeaderField(nil), mh.Fields...)
			return &rawRequest{streamID: mh.StreamID, fields: fields, endStream: mh.StreamEnded()}
		}
	}
}

// drain reads frames until the connection ends (the client closes it, the
// deadline passes or the test ends).
func (rc *rawConn) drain() {
	for {
		if _, err := rc.readFrame(); err != nil {
			return
		}
	}
}

// hf builds header fields from name, value pairs.
func hf(kv ...string) []hpack.HeaderField {
	var fs []hpack.HeaderField
	for i := 0; i+1 < len(kv); i += 2 {
		fs = append(fs, hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return fs
}

// writeHeaders encodes fields and writes them as HEADERS, followed by
// CONTINUATION frames when the block exceeds 16 KiB.
func (rc *rawConn) writeHeaders(id uint32, endStream bool, fields []hpack.HeaderField) error {
	rc.encBuf.Reset()
	for _, f := range fields {
		if err := rc.enc.WriteField(f); err != nil {
			return err
		}
	}
	block := rc.encBuf.Bytes()
	const max = 16384
	first := block
	if len(first) > max {
		first = first[:max]
	}
	block = block[len(first):]
	err := rc.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID:      id,
		BlockFragment: first,
		EndStream:     endStream,
		EndHeaders:    len(block) == 0,
	})
	for err == nil && len(block) > 0 {
		frag := block
		if len(frag) > max {
			frag = frag[:max]
		}
		block = block[len(frag):]
		err = rc.fr.WriteContinuation(id, len(block) == 0, frag)
	}
	return err
}

// writeData writes p on stream id in frames of at most 16 KiB, END_STREAM on
// the last if endStream. It does not wait for flow-control credit.
func (rc *rawConn) writeData(id uint32, endStream bool, p []byte) error {
	for {
		n := min(len(p), 16384)
		last := n == len(p)
		if err := rc.fr.WriteData(id, endStream && last, p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if last {
			return nil
		}
	}
}

// respond writes a complete small response: HEADERS with :status and fields,
// then body (if any) with END_STREAM.
func (rc *rawConn) respond(id uint32, status int, body string, kv ...string) error {
	fields := append(hf(":status", fmt.Sprint(status)), hf(kv...)...)
	if err := rc.writeHeaders(id, body == "", fields); err != nil {
		return err
	}
	if body == "" {
		return nil
	}
	return rc.writeData(id, true, []byte(body))
}

// ---- a silent TCP server ----

// startSilent accepts connections on 127.0.0.1 and reads and discards what
// arrives, never writing a byte.
func startSilent(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(waitLong))
				io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		waitGroup(t, &wg, "the silent server's connections to end")
	})
	return ln.Addr().String()
}

// isLowerToken reports whether a header field name is valid in HTTP/2:
// no upper-case letters (RFC 9113 8.2.1).
func isLowerToken(name string) bool {
	return name != "" && strings.ToLower(name) == name
}

// expectBody waits for a RoundTrip's result on ch and checks that it
// succeeded with the body want.
func expectBody(t *testing.T, ch <-chan rtResult, want string) {
	t.Helper()
	rt := recv(t, ch, waitShort, "RoundTrip to return")
	if rt.err != nil {
		t.Fatalf("RoundTrip: %v", rt.err)
	}
	defer rt.resp.Body.Close()
	if b, err := readAll(t, rt.resp.Body); err != nil || string(b) != want {
		t.Errorf("body %q, %v; want %q", b, err, want)
	}
}

// recordingServer is a raw server that hands over each connection's first
// request on the channel it returns and answers it with 200 "ok".
func recordingServer(t *testing.T) (*rawServer, <-chan *rawRequest) {
	got := make(chan *rawRequest, 1)
	srv := startRaw(t, nil, func(c *rawConn) {
		r := c.nextRequest()
		if r == nil {
			return
		}
		got <- r
		c.respond(r.streamID, 200, "ok")
		c.drain()
	})
	return srv, got
}
