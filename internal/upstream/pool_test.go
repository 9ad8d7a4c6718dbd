package upstream

import (
	"net"
	"testing"
	"time"
)

// backend accepts loopback connections and hands the server side of each
// to the test, in the order they were dialed.
type backend struct {
	ln    net.Listener
	conns chan net.Conn
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln, conns: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-b.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return b
}

// accepted returns the server side of the next connection dialed.
func (b *backend) accepted(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-b.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted in 5 s")
		return nil
	}
}

func get(t *testing.T, p *Pool, addr string, now time.Time) (*Conn, bool) {
	t.Helper()
	c, reused, err := p.Get(addr, time.Time{}, now)
	if err != nil {
		t.Fatal(err)
	}
	return c, reused
}

// setup makes a backend and a pool closed at the end of the test, and
// returns the backend's address.
func setup(t *testing.T) (*backend, *Pool, string) {
	t.Helper()
	b := newBackend(t)
	p := NewPool(5 * time.Second)
	t.Cleanup(p.Close)
	return b, p, b.ln.Addr().String()
}

// idle dials a connection and puts it back in the pool at now.
func idle(t *testing.T, b *backend, p *Pool, addr string, now time.Time) (*Conn, net.Conn) {
	t.Helper()
	c, _ := get(t, p, addr, now)
	server := b.accepted(t)
	p.Put(c, now)
	return c, server
}

// Idle connections are reused last put, first taken, and a connection
// dialed fresh says it was not reused.
func TestPoolReusesLastUsedFirst(t *testing.T) {
	b, p, addr := setup(t)
	now := time.Now()
	c1, r1 := get(t, p, addr, now)
	c2, r2 := get(t, p, addr, now)
	if r1 || r2 || c1 == c2 {
		t.Fatalf("two fresh dials: reused %v %v, same connection %v", r1, r2, c1 == c2)
	}
	b.accepted(t)
	b.accepted(t)
	p.Put(c1, now)
	p.Put(c2, now)
	if c, reused := get(t, p, addr, now); c != c2 || !reused {
		t.Errorf("first Get after two Puts: the last put %v, reused %v; want the last put, reused", c == c2, reused)
	}
	if c, reused := get(t, p, addr, now); c != c1 || !reused {
		t.Errorf("second Get: the first put %v, reused %v; want the first put, reused", c == c1, reused)
	}
}

// A pooled connection the backend closed, or wrote bytes on that nobody
// asked for, is closed instead of reused, and a new one is dialed: those
// bytes must never be read as the next exchange's response.
func TestPoolNeverReusesClosedOrDirtyConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(server net.Conn)
	}{
		{"closed by the backend", func(s net.Conn) { s.Close() }},
		{"unsolicited bytes", func(s net.Conn) { s.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, p, addr := setup(t)
			now := time.Now()
			c, server := idle(t, b, p, addr, now)
			// On loopback, the write or FIN is in the client's receive
			// queue once the server's call returns.
			tc.spoil(server)
			got, reused := get(t, p, addr, now)
			if got == c || reused {
				t.Fatalf("Get returned the spoiled connection (%v) or a reused one (%v); want a new dial", got == c, reused)
			}
			b.accepted(t)
			if _, err := c.Sock.Write([]byte("x")); err == nil {
				t.Error("the spoiled connection is still open; want it closed")
			}
		})
	}
}

// A connection idle longer than the idle timeout is closed, not reused.
func TestPoolIdleTimeout(t *testing.T) {
	b, p, addr := setup(t)
	now := time.Now()
	c, _ := idle(t, b, p, addr, now)
	got, reused := get(t, p, addr, now.Add(p.idleTimeout))
	if got == c || reused {
		t.Fatalf("a connection idle for the whole timeout was reused")
	}
	b.accepted(t)
}

// Close closes the idle connections and every one put back after it; the
// open count the collector exports falls back to zero.
func TestPoolCloseClosesEverything(t *testing.T) {
	b, p, addr := setup(t)
	now := time.Now()
	busy, _ := get(t, p, addr, now)
	b.accepted(t)
	idle(t, b, p, addr, now)
	if n := p.open.Load(); n != 2 {
		t.Fatalf("%d connections counted open, want 2", n)
	}
	p.Close()
	p.Put(busy, now)
	if n, idles := p.open.Load(), p.idleCount(); n != 0 || idles != 0 {
		t.Errorf("after Close and a late Put: %d open, %d idle; want 0 and 0", n, idles)
	}
}
