package h1

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingPool hands out fresh buffers and counts what is taken and given
// back.
type countingPool struct{ gets, puts atomic.Int64 }

func (p *countingPool) Get() any { p.gets.Add(1); b := make([]byte, 64); return &b }
func (p *countingPool) Put(any)  { p.puts.Add(1) }

func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// An idle read holds no buffer while it waits: the try that finds nothing
// gives its buffer back before the netpoller parks it; the bytes that come
// land in a buffer taken then, which the caller gets; the peer's close is
// io.EOF.
func TestReadIdleHoldsNoBufferWhileWaiting(t *testing.T) {
	client, server := tcpPair(t)
	sio := NewSocket(server)
	if sio.rc == nil {
		t.Fatal("a TCP connection without a raw socket")
	}
	var pool countingPool
	type result struct {
		p   *[]byte
		n   int
		err error
	}
	read := func() chan result {
		done := make(chan result, 1)
		go func() {
			p, n, err := sio.ReadIdle(&pool)
			done <- result{p, n, err}
		}()
		return done
	}
	done := read()
	for i := 0; i < 1000 && pool.puts.Load() == 0; i++ {
		time.Sleep(time.Millisecond)
	}
	if g, p := pool.gets.Load(), pool.puts.Load(); g == 0 || g != p {
		t.Fatalf("waiting: %d buffers taken, %d given back; want every one given back", g, p)
	}
	client.Write([]byte("GET / HTTP/1.1\r\n"))
	r := <-done
	if r.err != nil || r.p == nil || string((*r.p)[:r.n]) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("read %q, %v", r.p, r.err)
	}
	if held := pool.gets.Load() - pool.puts.Load(); held != 1 {
		t.Errorf("%d buffers held after the read, want the one returned", held)
	}
	done = read()
	client.Close()
	if r := <-done; !errors.Is(r.err, io.EOF) {
		t.Errorf("after the peer closed: %v, want EOF", r.err)
	}
}
