package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
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
