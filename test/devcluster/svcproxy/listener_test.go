package svcproxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// backend is a loopback TCP server that greets with its name and echoes what it reads
// until EOF, then writes "bye" and closes.
func backend(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, name+"\n")
				io.Copy(c, c)
				io.WriteString(c, "bye")
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func startListener(t *testing.T, maxConns int, backends ...netip.AddrPort) (*listener, *connTracker) {
	return startListenerAttempts(t, maxConns, 1, backends...)
}

func startListenerAttempts(t *testing.T, maxConns, attempts int, backends ...netip.AddrPort) (*listener, *connTracker) {
	t.Helper()
	conns := newConnTracker()
	l, err := listen(netip.MustParseAddrPort("127.0.0.1:0"), maxConns, 2*time.Second, attempts, conns)
	if err != nil {
		t.Fatal(err)
	}
	l.setBackends(backends)
	t.Cleanup(func() {
		l.close()
		conns.close()
	})
	return l, conns
}

func dial(t *testing.T, l *listener) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp4", l.ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Bounds every read, so a bug shows as a failure instead of a hung test.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

func greeting(t *testing.T, c net.Conn) string {
	t.Helper()
	buf := make([]byte, 0, 16)
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			t.Fatalf("read greeting: %v (got %q)", err, buf)
		}
		if one[0] == '\n' {
			return string(buf)
		}
		buf = append(buf, one[0])
	}
}

// wantRefused checks the proxy ends a new connection without data and without a hang:
// the reset may already fail the dial, or the first read.
func wantRefused(t *testing.T, l *listener) {
	t.Helper()
	c, err := net.DialTimeout("tcp4", l.ln.Addr().String(), 5*time.Second)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial: %v; want success or a reset", err)
		}
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 16))
	if n != 0 || err == nil {
		t.Fatalf("read %d bytes, err %v; want the connection ended", n, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection hung until the deadline; want a reset or EOF at once")
	}
}

func TestListenerRoundRobin(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	l, _ := startListener(t, 16, a, b)
	seen := map[string]int{}
	for range 4 {
		seen[greeting(t, dial(t, l))]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Errorf("greetings %v, want 2 from each backend", seen)
	}
}

func TestListenerHalfClose(t *testing.T) {
	l, _ := startListener(t, 16, backend(t, "a"))
	c := dial(t, l)
	greeting(t, c)
	io.WriteString(c, "ping")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The backend only answers "bye" after it saw EOF: the half-close must pass through.
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "pingbye" {
		t.Fatalf("after half-close read %q, %v; want \"pingbye\"", rest, err)
	}
}

func TestListenerNoEndpointsRefusesAtOnce(t *testing.T) {
	l, _ := startListener(t, 16)
	wantRefused(t, l)
}

func TestListenerEndpointChangeKeepsOpenConnections(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	l, _ := startListener(t, 16, a)
	old := dial(t, l)
	if g := greeting(t, old); g != "a" {
		t.Fatalf("greeting %q", g)
	}
	l.setBackends([]netip.AddrPort{b})
	if g := greeting(t, dial(t, l)); g != "b" {
		t.Errorf("new connection after the change reached %q, want b", g)
	}
	// The connection made before the change still works on its backend.
	io.WriteString(old, "still")
	old.CloseWrite()
	if rest, err := io.ReadAll(old); err != nil || string(rest) != "stillbye" {
		t.Errorf("old connection read %q, %v", rest, err)
	}
	// Scaling to zero: new connections are refused, not queued.
	l.setBackends(nil)
	wantRefused(t, l)
}

func TestListenerSkipsDeadEndpoint(t *testing.T) {
	dead, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := netip.MustParseAddrPort(dead.Addr().String())
	dead.Close() // nothing listens there now: dials are refused
	live := backend(t, "live")
	l, _ := startListenerAttempts(t, 16, 3, deadAddr, live)
	for range 2 { // whichever one round robin starts with, the connection lands on live
		if g := greeting(t, dial(t, l)); g != "live" {
			t.Errorf("greeting %q", g)
		}
	}
}

func TestListenerConnectionLimit(t *testing.T) {
	l, conns := startListener(t, 1, backend(t, "a"))
	held := dial(t, l)
	greeting(t, held)
	wantRefused(t, l)
	// Once the first connection ends its slot is free again.
	held.Close()
	for i := 0; conns.count() > 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if g := greeting(t, dial(t, l)); g != "a" {
		t.Errorf("greeting %q", g)
	}
}

func TestListenerCloseLeavesConnectionsUntilTrackerCloses(t *testing.T) {
	l, conns := startListener(t, 16, backend(t, "a"))
	c := dial(t, l)
	greeting(t, c)
	addr := l.ln.Addr().String()
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	if nc, err := net.DialTimeout("tcp4", addr, time.Second); err == nil {
		nc.Close()
		t.Error("listener still accepts after close")
	}
	io.WriteString(c, "x")
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("open connection broke when its listener closed: %q %v", buf, err)
	}
	conns.close()
	if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read after tracker close: %v", err)
	}
	if conns.count() != 0 {
		t.Errorf("%d connections tracked after close", conns.count())
	}
}

// TestListenerDoesNotRetryByDefault: like kube-proxy, a refused dial is the
// client's failure, so a test of rolling restarts sees what a real cluster
// would.
func TestListenerDoesNotRetryByDefault(t *testing.T) {
	dead, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := netip.MustParseAddrPort(dead.Addr().String())
	dead.Close()
	l, _ := startListener(t, 16, deadAddr)
	wantRefused(t, l)
}
