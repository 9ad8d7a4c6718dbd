package h1

import (
	"net"
	"syscall"
	"testing"
)

// quickAck reads TCP_QUICKACK of c: 0 while the kernel delays ACKs of a
// request/response connection ("pingpong" mode), 1 once AckNow ran.
func quickAck(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v, gerr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}

// TestFillAfterAcksBeforeItWaits: a relay that has read all that arrived
// in the middle of a body acknowledges it before it flushes and waits, so a
// backend holding its last piece for that ACK (Nagle) does not sit on the
// 40 ms delayed-ACK timer (docs/performance.md, round 18).
func TestFillAfterAcksBeforeItWaits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); accepted <- c }()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	backend := <-accepted
	if backend == nil {
		t.Fatal("accept failed")
	}
	defer backend.Close()

	// One exchange each way puts the proxy's side in pingpong mode: it
	// received, then sent soon after.
	one := make([]byte, 1)
	if _, err := backend.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Read(one); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := backend.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	tc := nc.(*net.TCPConn)
	if quickAck(t, tc) != 0 {
		t.Skip("this kernel did not put the connection in pingpong mode; nothing to observe")
	}

	if _, err := backend.Write([]byte("first piece")); err != nil {
		t.Fatal(err)
	}
	r := Reader{Sock: NewSocket(nc), Buf: make([]byte, 64)}
	if err := r.Fill(64); err != nil { // the first piece, as a relay has it
		t.Fatal(err)
	}
	flushed := false
	flush := func() error {
		flushed = true
		// The delayed-ACK timer may have fired by now, which also leaves
		// pingpong mode: then this passes without AckNow, never fails
		// with it.
		if v := quickAck(t, tc); v != 1 {
			t.Errorf("TCP_QUICKACK %d when the relay is about to wait, want 1 (AckNow before the wait)", v)
		}
		_, err := backend.Write([]byte(", the rest"))
		return err
	}
	if err := r.FillAfter(64, flush); err != nil {
		t.Fatal(err)
	}
	if !flushed {
		t.Fatal("FillAfter found data without waiting; the test needs it to wait")
	}
	for string(r.Buffered()) != "first piece, the rest" {
		if err := r.Fill(64); err != nil {
			t.Fatalf("reading the rest: %v (have %q)", err, r.Buffered())
		}
	}
}
