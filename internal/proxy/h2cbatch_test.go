package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/ir"
)

// countingConn records the size of every write that reaches the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes []int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock() // before the write: the peer may check once it has read
	c.writes = append(c.writes, len(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.writes...)
}

// Writes queued while the socket write is in progress leave together in
// the next one, each whole and in the order they were queued.
func TestBatchConnGathersWrites(t *testing.T) {
	a, peer := net.Pipe()
	cc := &countingConn{Conn: a}
	b := newBatchConn(cc, 64<<10)
	defer b.Close()
	defer peer.Close()

	// net.Pipe's write blocks until the peer reads: once one byte of
	// "first;" arrived, the writer holds it in its write, and the next ten
	// are queued before the rest is read.
	if _, err := b.Write([]byte("first;")); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("first;"))
	if _, err := io.ReadFull(peer, first[:1]); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := range 10 {
		p := fmt.Appendf(nil, "frame %d;", i)
		want.Write(p)
		if _, err := b.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.ReadFull(peer, first[1:]); err != nil || string(first) != "first;" {
		t.Fatalf("first read %q, %v", first, err)
	}
	rest := make([]byte, want.Len())
	if _, err := io.ReadFull(peer, rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, want.Bytes()) {
		t.Fatalf("read %q, want %q", rest, want.Bytes())
	}
	if got := cc.sizes(); len(got) != 2 || got[1] != want.Len() {
		t.Fatalf("socket writes %v, want 2: the first and one of %d bytes", got, want.Len())
	}
}

// No socket write carries more than the bound (each Write being within
// it), however many goroutines write while the socket is slow.
func TestBatchConnBounded(t *testing.T) {
	const max = 100
	a, peer := net.Pipe()
	cc := &countingConn{Conn: a}
	b := newBatchConn(cc, max)
	defer b.Close()
	defer peer.Close()

	const writers, each, size = 8, 50, 30
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			p := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range each {
				if _, err := b.Write(p); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	got := make([]byte, writers*each*size)
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := 0; i < len(got); i += size { // every Write arrived whole
		if !bytes.Equal(got[i:i+size], bytes.Repeat(got[i:i+1], size)) {
			t.Fatalf("write at %d interleaved: %q", i, got[i:i+size])
		}
	}
	sizes := cc.sizes()
	for _, n := range sizes {
		if n > max {
			t.Fatalf("a socket write of %d bytes, bound %d (writes %v)", n, max, sizes)
		}
	}
	if len(sizes) >= writers*each {
		t.Fatalf("%d socket writes for %d Writes: nothing gathered", len(sizes), writers*each)
	}
}

// failingConn fails every write; closed is closed by Close.
type failingConn struct {
	net.Conn
	closed chan struct{}
}

var errTestWrite = errors.New("test: write failed")

func (c *failingConn) Write([]byte) (int, error) { return 0, errTestWrite }
func (c *failingConn) Close() error              { close(c.closed); return c.Conn.Close() }

// A failed socket write closes the connection, so the HTTP/2 client's
// reader ends, and the next Write reports the failure.
func TestBatchConnWriteError(t *testing.T) {
	a, peer := net.Pipe()
	defer peer.Close()
	fc := &failingConn{Conn: a, closed: make(chan struct{})}
	b := newBatchConn(fc, 64<<10)
	if _, err := b.Write([]byte("lost")); err != nil {
		t.Fatal(err) // queued; the failure comes later
	}
	<-fc.closed // the writer closed the connection after the failure
	if _, err := b.Write([]byte("more")); !errors.Is(err, errTestWrite) {
		t.Fatalf("Write after a failed write: %v, want %v", err, errTestWrite)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// recordingConn keeps a copy of every byte read from the connection.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	got []byte
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got = append(c.got, p[:n]...)
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.got...)
}

// recordingListener hands its first connection, recording, to conns.
type recordingListener struct {
	net.Listener
	conns chan *recordingConn
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recordingConn{Conn: c}
	select {
	case l.conns <- rc:
	default:
	}
	return rc, nil
}

// hpackIndexed counts the fields of a header block sent with incremental
// indexing (RFC 7541 6.2.1), which add to the decoder's dynamic table.
func hpackIndexed(t *testing.T, b []byte) int {
	t.Helper()
	integer := func(prefix uint) int { // RFC 7541 5.1
		if len(b) == 0 {
			t.Fatal("header block truncated")
		}
		max := 1<<prefix - 1
		v := int(b[0]) & max
		b = b[1:]
		if v < max {
			return v
		}
		for m := 0; ; m += 7 {
			if len(b) == 0 {
				t.Fatal("header block truncated")
			}
			c := b[0]
			b = b[1:]
			v += int(c&0x7f) << m
			if c&0x80 == 0 {
				return v
			}
		}
	}
	skipString := func() { // RFC 7541 5.2
		n := integer(7)
		if n > len(b) {
			t.Fatal("header block truncated")
		}
		b = b[n:]
	}
	indexed := 0
	for len(b) > 0 {
		switch c := b[0]; {
		case c&0x80 != 0: // indexed field
			integer(7)
		case c&0xe0 == 0x20: // dynamic table size update
			integer(5)
		default: // a literal: with incremental indexing, without, never indexed
			prefix := uint(4)
			if c&0xc0 == 0x40 {
				indexed++
				prefix = 6
			}
			if integer(prefix) == 0 {
				skipString() // a literal name
			}
			skipString()
		}
	}
	return indexed
}

// TestH2CBackendRequestsUnindexed: requests to an h2c backend add nothing
// to the backend's HPACK table, so the X-Request-Id every request carries
// does not evict an entry per request in the proxy's encoder.
func TestH2CBackendRequestsUnindexed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	recorded := make(chan *recordingConn, 1)
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols: protocols,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok") //nolint:errcheck // the test reads it
		}),
	}
	go srv.Serve(recordingListener{ln, recorded}) //nolint:errcheck // ends with Close
	defer srv.Close()
	backend := ir.Backend{Name: "default/h2c:80", Weight: 1, AppProtocol: "h2c", Endpoints: []ir.Endpoint{endpointOf(t, ln.Addr().String())}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("web", catchAll(prefixRoute("r", "/", backend)))}}, Options{})
	const requests = 3
	for range requests {
		resp, err := http.Get(p.url(t, "web") + "/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Fatalf("answer %d %q", resp.StatusCode, body)
		}
	}
	rc := <-recorded
	wire := rc.bytes()
	if !bytes.HasPrefix(wire, []byte(http2.ClientPreface)) {
		t.Fatalf("backend connection does not start with the preface: %q", wire[:min(len(wire), 24)])
	}
	fr := http2.NewFramer(nil, bytes.NewReader(wire[len(http2.ClientPreface):]))
	blocks := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break // the end of what was recorded
		}
		if h, ok := f.(*http2.HeadersFrame); ok {
			blocks++
			if n := hpackIndexed(t, h.HeaderBlockFragment()); n > 0 {
				t.Errorf("request %d: %d fields sent with incremental indexing", blocks, n)
			}
		}
	}
	if blocks != requests {
		t.Fatalf("%d HEADERS frames at the backend, want %d", blocks, requests)
	}
}

// The HTTP/2 connections on both sides of an h2c proxy (a backend's, from
// the dialer; a client's, handed over by the HTTP/1.1 engine) are read and
// written with raw system calls, not through net.Conn's blocking-call
// path, and a client's bytes already read are replayed first.
func TestH2CConnsUseRawSockets(t *testing.T) {
	near, far := tcpPair(t)
	dial := func(context.Context, string, string) (net.Conn, error) { return near, nil }
	c, err := batchDialer{dial: rawDial(dial), max: 64 << 10}.DialContext(t.Context(), "tcp", "backend")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s, ok := c.(*batchConn).Conn.(*h1.Socket); !ok || !s.Raw() {
		t.Fatalf("backend connection %T over %T, want a raw h1.Socket", c, c.(*batchConn).Conn)
	}
	sc := h2cConn(far, []byte("PRI"))
	if s, ok := sc.(*replayConn).Conn.(*h1.Socket); !ok || !s.Raw() {
		t.Fatalf("client connection over %T, want a raw h1.Socket", sc.(*replayConn).Conn)
	}
	io.WriteString(c, " and the rest")
	got := make([]byte, len("PRI and the rest"))
	if _, err := io.ReadFull(sc, got); err != nil || string(got) != "PRI and the rest" {
		t.Fatalf("read %q, %v", got, err)
	}
}
