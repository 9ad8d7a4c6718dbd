package h1

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// TestH1WriterRelayBufferGoesBack: a relay buffer is borrowed for a large
// body and returned at the next flush, so an idle connection holds only its
// own small buffer.
func TestH1WriterRelayBufferGoesBack(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(io.Discard, b)
	pool := &sync.Pool{New: NewRelayBuffer}
	w := Writer{Sock: NewSocket(a), Buf: make([]byte, 0, 64), Pool: pool}
	w.Buf = append(w.Buf, "HTTP/1.1 200 OK\r\n\r\n"...)
	p := w.Spare(50 << 10)
	if len(p) != 50<<10 || w.relay == nil {
		t.Fatalf("spare gave %d bytes (relay %v), want 50 KiB from a relay buffer", len(p), w.relay != nil)
	}
	copy(p, bytes.Repeat([]byte("0123456789"), len(p)/10))
	w.Grow(len(p))
	if !strings.HasPrefix(string(w.Buf), "HTTP/1.1 200 OK\r\n\r\n0123456789") {
		t.Fatalf("batched bytes lost the head or the body's start: %.40q", w.Buf)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.relay != nil || cap(w.Buf) != 64 {
		t.Errorf("after flush: relay held %v, own buffer cap %d; want the relay back and the 64-byte buffer", w.relay != nil, cap(w.Buf))
	}
	// A full relay buffer is flushed to make room rather than grown.
	w.Spare(RelayBufferSize)
	w.Grow(RelayBufferSize - len(w.Buf))
	if p := w.Spare(10); len(p) != 10 || len(w.Buf) != 0 {
		t.Errorf("spare on a full relay buffer: %d bytes of room, %d batched; want it flushed first", len(p), len(w.Buf))
	}
}

// TestH1WriterAddBorrowsInsteadOfGrowing: bytes added past the own buffer's
// room go into a pooled relay buffer (given back at the flush), not into a
// grown copy of the own buffer: that copy was garbage per large response.
func TestH1WriterAddBorrowsInsteadOfGrowing(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	got := make(chan []byte, 1)
	go func() { p, _ := io.ReadAll(b); got <- p }()
	pool := &sync.Pool{New: NewRelayBuffer}
	own := make([]byte, 0, 64)
	w := Writer{Sock: NewSocket(a), Buf: own, Pool: pool}
	w.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	body := bytes.Repeat([]byte("abcdefgh"), 2<<10) // 16 KiB, below the direct-write size
	w.Add(body)
	if w.relay == nil {
		t.Fatalf("16 KiB added to a 64-byte buffer: no relay buffer borrowed (cap now %d)", cap(w.Buf))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.relay != nil || cap(w.Buf) != 64 || &w.Buf[:1][0] != &own[:1][0] {
		t.Errorf("after flush: relay held %v, own buffer cap %d; want the relay back and the own buffer again", w.relay != nil, cap(w.Buf))
	}
	head := []byte("HTTP/1.1 200 OK\r\n\r\n")
	allocs := testing.AllocsPerRun(50, func() {
		w.Add(head)
		w.Add(body)
		w.Flush()
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per large response, want 0", allocs)
	}
	a.Close()
	if p := <-got; !bytes.HasSuffix(p, body) || !bytes.HasPrefix(p, []byte("HTTP/1.1 200 OK\r\n\r\n")) {
		t.Errorf("client got %d bytes, not the head and body", len(p))
	}
}
