package h2

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
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

// refServer runs the behaviour tests against net/http's own HTTP/2 server
// instead of Server, to check that an expectation is net/http's behaviour:
//
//	go test ./internal/h2 -run 'Test[^H]' -args -h2.ref
var refServer = flag.Bool("h2.ref", false, "serve the behaviour tests with net/http's HTTP/2 server instead of h2.Server")

// serveCtxKey marks the context given to ServeConn; handlers must see it.
type serveCtxKey struct{}

// testCert is one self-signed certificate for 127.0.0.1, made once.
var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "h2 test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
})

// testLog forwards server logs to t.Log while the test runs and drops them
// afterwards, when a late handler goroutine may still log.
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("server: %s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}

// testServer serves one handler on a loopback listener, over TLS with ALPN
// "h2" or over cleartext with prior knowledge.
type testServer struct {
	addr     string
	tls      bool
	srv      *Server
	hs       *http.Server // net/http's server in -h2.ref mode
	accepted atomic.Int32 // TCP connections accepted
	serving  atomic.Int32 // ServeConn calls (or net/http conns) not yet returned
	mu       sync.Mutex
	conns    []net.Conn
}

// startTLS serves h with srv over TLS; startCleartext with prior knowledge.
func startTLS(t *testing.T, srv *Server, h http.Handler) *testServer {
	return startServer(t, srv, h, true)
}

func startCleartext(t *testing.T, srv *Server, h http.Handler) *testServer {
	return startServer(t, srv, h, false)
}

func startServer(t *testing.T, srv *Server, h http.Handler, useTLS bool) *testServer {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), tls: useTLS, srv: srv}
	lw := &testLog{t: t}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), serveCtxKey{}, "serve-ctx"))
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}

	if *refServer {
		ts.startRef(srv, h, ln, tlsConf, ctx, lw)
	} else {
		if srv.Logger == nil {
			srv.Logger = slog.New(slog.NewTextHandler(lw, nil))
		}
		go ts.acceptLoop(ctx, ln, tlsConf, h)
	}

	t.Cleanup(func() {
		ln.Close()
		if ts.hs != nil {
			ts.hs.Close()
		}
		ts.mu.Lock()
		for _, c := range ts.conns {
			c.Close()
		}
		ts.mu.Unlock()
		if !ts.waitServing(5 * time.Second) {
			t.Errorf("%d ServeConn calls still running 5s after their connections were closed", ts.serving.Load())
		}
		cancel()
		lw.stop()
	})
	return ts
}

func (ts *testServer) acceptLoop(ctx context.Context, ln net.Listener, tlsConf *tls.Config, h http.Handler) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		ts.accepted.Add(1)
		ts.serving.Add(1)
		ts.mu.Lock()
		ts.conns = append(ts.conns, c)
		ts.mu.Unlock()
		go func() {
			defer ts.serving.Add(-1)
			if ts.tls {
				tc := tls.Server(c, tlsConf)
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.HandshakeContext(ctx); err != nil || tc.ConnectionState().NegotiatedProtocol != "h2" {
					c.Close()
					return
				}
				tc.SetDeadline(time.Time{})
				c = tc
			}
			ts.srv.ServeConn(ctx, c, h)
		}()
	}
}

// startRef serves with net/http's bundled HTTP/2 server, configured like srv.
func (ts *testServer) startRef(srv *Server, h http.Handler, ln net.Listener, tlsConf *tls.Config, ctx context.Context, lw *testLog) {
	var protos http.Protocols
	if ts.tls {
		protos.SetHTTP2(true)
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	ts.hs = &http.Server{
		Handler:        h,
		Protocols:      &protos,
		IdleTimeout:    srv.IdleTimeout,
		MaxHeaderBytes: srv.MaxHeaderBytes,
		ReadTimeout:    srv.ReadTimeout,
		ErrorLog:       log.New(lw, "", 0),
		BaseContext:    func(net.Listener) context.Context { return ctx },
		ConnState: func(c net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				ts.accepted.Add(1)
				ts.serving.Add(1)
			case http.StateClosed, http.StateHijacked:
				ts.serving.Add(-1)
			}
		},
	}
	if srv.MaxConcurrentStreams != 0 {
		ts.hs.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: int(srv.MaxConcurrentStreams)}
	}
	if ts.tls {
		ts.hs.TLSConfig = tlsConf
		ln = tls.NewListener(ln, tlsConf)
	}
	go ts.hs.Serve(ln)
}

// shutdown starts a graceful shutdown and does not wait for it.
func (ts *testServer) shutdown() {
	if ts.hs != nil {
		go ts.hs.Shutdown(context.Background())
		return
	}
	ts.srv.Shutdown()
}

// waitServing waits until every ServeConn call has returned.
func (ts *testServer) waitServing(d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ts.serving.Load() == 0 {
			return true
		}
	}
	return ts.serving.Load() == 0
}

// port is the listener's port, as h2spec's -p takes it.
func (ts *testServer) port() string {
	_, port, _ := net.SplitHostPort(ts.addr)
	return port
}

func (ts *testServer) url(path string) string {
	if ts.tls {
		return "https://" + ts.addr + path
	}
	return "http://" + ts.addr + path
}

// client returns an HTTP/2-only client for ts, net/http's Transport: over
// TLS with ALPN "h2", or over cleartext with prior knowledge. conf, when
// set, tunes its HTTP/2 settings (receive windows).
func (ts *testServer) client(t *testing.T, conf *http.HTTP2Config) *http.Client {
	t.Helper()
	var protos http.Protocols
	if ts.tls {
		protos.SetHTTP2(true)
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: true,
		Protocols:         &protos,
		HTTP2:             conf,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// get does one GET and returns the response with its whole body.
func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, body
}

// pattern returns n deterministic bytes that are not all alike, so a
// reordered or repeated chunk changes the hash.
func pattern(n int) []byte {
	b := make([]byte, n)
	var x uint32 = 2463534242
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// released returns a channel that a blocked handler waits on, and the
// function that closes it once. Tests defer the call, so that it runs
// before the cleanups, also when the test fails.
func released() (ch chan struct{}, release func()) {
	ch = make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	return ch, release
}

// rawClient speaks HTTP/2 frames to the server, for what a Transport does
// not let a test do or see.
type rawClient struct {
	t        *testing.T
	c        net.Conn
	fr       *http2.Framer
	wmu      sync.Mutex // guards fr's writing side, hbuf and enc
	hbuf     bytes.Buffer
	enc      *hpack.Encoder
	settings map[http2.SettingID]uint32 // the server's, from its first SETTINGS
	// autoWindow returns the flow-control credit of every DATA frame read,
	// so the server is never blocked by the client.
	autoWindow bool
	goAway     *http2.GoAwayFrame
	goAwayDbg  string
	// granted sums the server's WINDOW_UPDATE increments, by stream (0 is
	// the connection).
	granted map[uint32]int64
}

// dialRaw connects, sends the preface and settings, and reads the server's
// SETTINGS, which must come first.
func (ts *testServer) dialRaw(t *testing.T, settings ...http2.Setting) *rawClient {
	t.Helper()
	var c net.Conn
	var err error
	if ts.tls {
		var tc *tls.Conn
		tc, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ts.addr,
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err == nil && tc.ConnectionState().NegotiatedProtocol != "h2" {
			err = fmt.Errorf("ALPN negotiated %q, want h2", tc.ConnectionState().NegotiatedProtocol)
		}
		c = tc
	} else {
		c, err = net.DialTimeout("tcp", ts.addr, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, fr: http2.NewFramer(c, c), autoWindow: true,
		settings: map[http2.SettingID]uint32{}, granted: map[uint32]int64{}}
	rc.fr.AllowIllegalWrites = true
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	rc.fr.MaxHeaderListSize = 1 << 20
	rc.enc = hpack.NewEncoder(&rc.hbuf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	rc.write(func() error { return rc.fr.WriteSettings(settings...) })
	f, err := rc.next(5 * time.Second)
	if err != nil {
		t.Fatalf("read server's first frame: %v", err)
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		t.Fatalf("server's first frame is %v, want SETTINGS", f)
	}
	return rc
}

// write runs one framer write under the write lock.
func (rc *rawClient) write(fn func() error) {
	rc.t.Helper()
	rc.wmu.Lock()
	err := fn()
	rc.wmu.Unlock()
	if err != nil {
		rc.t.Fatalf("write frame: %v", err)
	}
}

// encode returns an HPACK block for the fields, given as name, value pairs.
// The encoder's state is the connection's, so blocks must be sent in the
// order they were encoded.
func (rc *rawClient) encode(kv ...string) []byte {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	rc.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return bytes.Clone(rc.hbuf.Bytes())
}

// request opens a stream with the usual pseudo-headers and extra fields.
func (rc *rawClient) request(id uint32, method, path string, endStream bool, extra ...string) {
	rc.t.Helper()
	kv := append([]string{":method", method, ":scheme", "https", ":authority", "example.test", ":path", path}, extra...)
	rc.headers(id, endStream, kv...)
}

// headers sends one HEADERS frame with exactly the given fields.
func (rc *rawClient) headers(id uint32, endStream bool, kv ...string) {
	rc.t.Helper()
	block := rc.encode(kv...)
	rc.write(func() error {
		return rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: endStream, EndHeaders: true})
	})
}

func (rc *rawClient) data(id uint32, endStream bool, p []byte) {
	rc.t.Helper()
	rc.write(func() error { return rc.fr.WriteData(id, endStream, p) })
}

// next reads one frame within d. It answers SETTINGS and PING itself (and
// still returns them), keeps the server's settings and GOAWAY, and returns
// DATA flow-control credit when autoWindow is set.
func (rc *rawClient) next(d time.Duration) (http2.Frame, error) {
	rc.c.SetReadDeadline(time.Now().Add(d))
	f, err := rc.fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() {
			f.ForeachSetting(func(s http2.Setting) error { rc.settings[s.ID] = s.Val; return nil })
			rc.wmu.Lock()
			rc.fr.WriteSettingsAck()
			rc.wmu.Unlock()
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			rc.wmu.Lock()
			rc.fr.WritePing(true, f.Data)
			rc.wmu.Unlock()
		}
	case *http2.WindowUpdateFrame:
		rc.granted[f.StreamID] += int64(f.Increment)
	case *http2.GoAwayFrame:
		rc.goAway = f
		rc.goAwayDbg = string(f.DebugData())
	case *http2.DataFrame:
		if n := len(f.Data()); n > 0 && rc.autoWindow {
			rc.wmu.Lock()
			rc.fr.WriteWindowUpdate(0, uint32(n))
			if !f.StreamEnded() {
				rc.fr.WriteWindowUpdate(f.StreamID, uint32(n))
			}
			rc.wmu.Unlock()
		}
	}
	return f, nil
}

// streamResult is what the server sent on one stream.
type streamResult struct {
	infos    []string // 1xx statuses
	status   string
	fields   []hpack.HeaderField // regular fields of the final HEADERS
	body     []byte
	trailers []hpack.HeaderField
	data     int  // DATA frames with a payload
	ended    bool // END_STREAM seen
	reset    bool
	code     http2.ErrCode
}

func (r *streamResult) header(name string) []string {
	var vv []string
	for _, f := range r.fields {
		if f.Name == name {
			vv = append(vv, f.Value)
		}
	}
	return vv
}

func (r *streamResult) String() string {
	if r.reset {
		return fmt.Sprintf("RST_STREAM %v", r.code)
	}
	return fmt.Sprintf("status %q, %d body bytes, ended %v", r.status, len(r.body), r.ended)
}

// collect reads frames until each listed stream has ended or was reset,
// the connection failed, or d passed. Frames of other streams are dropped.
// It returns what each stream got and the read error, if any.
func (rc *rawClient) collect(d time.Duration, ids ...uint32) (map[uint32]*streamResult, error) {
	res := map[uint32]*streamResult{}
	open := map[uint32]bool{}
	for _, id := range ids {
		res[id] = &streamResult{}
		open[id] = true
	}
	deadline := time.Now().Add(d)
	for len(open) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return res, errors.New("timeout")
		}
		f, err := rc.next(left)
		if err != nil {
			return res, err
		}
		id := f.Header().StreamID
		r := res[id]
		if r == nil || !open[id] {
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			switch st := f.PseudoValue("status"); {
			case st == "":
				r.trailers = append(r.trailers, f.RegularFields()...)
			case strings.HasPrefix(st, "1"):
				r.infos = append(r.infos, st)
			default:
				r.status = st
				r.fields = f.RegularFields()
			}
			if f.StreamEnded() {
				r.ended = true
				delete(open, id)
			}
		case *http2.DataFrame:
			if len(f.Data()) > 0 {
				r.data++
				r.body = append(r.body, f.Data()...)
			}
			if f.StreamEnded() {
				r.ended = true
				delete(open, id)
			}
		case *http2.RSTStreamFrame:
			r.reset, r.code = true, f.ErrCode
			delete(open, id)
		}
	}
	return res, nil
}

// one collects a single stream and fails the test if it did not end.
func (rc *rawClient) one(id uint32) *streamResult {
	rc.t.Helper()
	res, err := rc.collect(5*time.Second, id)
	if err != nil {
		rc.t.Fatalf("stream %d: %v (got %v so far)", id, err, res[id])
	}
	return res[id]
}

// ping sends a PING and reads until its ACK, so that every frame the
// server sent before it has been read (and its settings and window
// updates applied).
func (rc *rawClient) ping() {
	rc.t.Helper()
	data := [8]byte{'h', '2', 't', 'e', 's', 't'}
	rc.write(func() error { return rc.fr.WritePing(false, data) })
	for range 10000 {
		f, err := rc.next(5 * time.Second)
		if err != nil {
			rc.t.Fatalf("waiting for PING ack: %v", err)
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() && p.Data == data {
			return
		}
	}
	rc.t.Fatal("no PING ack in 10000 frames")
}

// waitClosed reads until the server closes the connection or d passes, and
// reports whether a GOAWAY and the close were seen.
func (rc *rawClient) waitClosed(d time.Duration) (goAway *http2.GoAwayFrame, closed bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		_, err := rc.next(time.Until(deadline))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return rc.goAway, true
		}
	}
	return rc.goAway, false
}

// nextErr waits up to 5 s for the next error (or nil) from ch; if none
// comes, the test fails with what.
func nextErr(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal(what)
		return nil
	}
}
