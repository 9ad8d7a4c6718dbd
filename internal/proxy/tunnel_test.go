package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/poll"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (near, far net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	near, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far = <-accepted
	if far == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { near.Close(); far.Close() })
	return near, far
}

// countingPool is a buffer pool that counts the buffers out of it.
type countingPool struct {
	sync.Pool
	out atomic.Int64
}

func newCountingPool() *countingPool {
	p := &countingPool{}
	p.New = func() any { b := make([]byte, copyBufferSize); return &b }
	return p
}

func (p *countingPool) Get() any  { p.out.Add(1); return p.Pool.Get() }
func (p *countingPool) Put(b any) { p.out.Add(-1); p.Pool.Put(b) }

// tunnelled is a tunnel between two loopback connections: client and
// backend are the far ends the test talks on.
type tunnelled struct {
	client, backend net.Conn
	rx, tx          atomic.Uint64
	bufs            *countingPool
	done            chan struct{}
}

// startTunnel starts a tunnel with the given pending bytes; before runs
// first, on the ends the test holds, before the tunnel reads anything.
func startTunnel(t *testing.T, idle time.Duration, clientPending, backendPending string, before func(client, backend net.Conn)) *tunnelled {
	t.Helper()
	tn := &tunnelled{bufs: newCountingPool(), done: make(chan struct{})}
	var proxyClient, proxyBackend net.Conn
	tn.client, proxyClient = tcpPair(t)
	proxyBackend, tn.backend = tcpPair(t)
	if before != nil {
		before(tn.client, tn.backend)
	}
	go func() {
		defer close(tn.done)
		tunnel(tunnelEnd{conn: proxyClient, pending: []byte(clientPending)}, tunnelEnd{conn: proxyBackend, pending: []byte(backendPending)},
			idle, tn.bufs, &tn.rx, &tn.tx)
		proxyClient.Close()
		proxyBackend.Close()
	}()
	t.Cleanup(func() {
		tn.client.Close()
		tn.backend.Close()
		<-tn.done
	})
	tn.client.SetDeadline(time.Now().Add(10 * time.Second))
	tn.backend.SetDeadline(time.Now().Add(10 * time.Second))
	return tn
}

// Bytes a parser took before the tunnel (pending) reach the other side
// first, in both directions, and the counters count every byte.
func TestTunnelSendsPendingFirst(t *testing.T) {
	tn := startTunnel(t, time.Minute, "from-client-", "from-backend-", nil)
	io.WriteString(tn.client, "then-client")
	io.WriteString(tn.backend, "then-backend")
	got := make([]byte, len("from-client-then-client"))
	if _, err := io.ReadFull(tn.backend, got); err != nil || string(got) != "from-client-then-client" {
		t.Fatalf("backend read %q, %v", got, err)
	}
	got = make([]byte, len("from-backend-then-backend"))
	if _, err := io.ReadFull(tn.client, got); err != nil || string(got) != "from-backend-then-backend" {
		t.Fatalf("client read %q, %v", got, err)
	}
	// The counters move after each write the far end already read: look
	// once the tunnel has ended.
	tn.client.Close()
	tn.backend.Close()
	<-tn.done
	if rx, tx := tn.rx.Load(), tn.tx.Load(); rx != 23 || tx != 25 {
		t.Fatalf("counted %d received, %d sent; want 23 and 25", rx, tx)
	}
}

// A peer's last bytes and its FIN can arrive together, before the tunnel
// reads them, as one readiness event: both are passed on (the half-close
// too), and the other direction keeps working until it ends as well.
func TestTunnelPassesHalfCloseThatCameWithData(t *testing.T) {
	tn := startTunnel(t, time.Minute, "", "", func(client, backend net.Conn) {
		io.WriteString(backend, "last words")
		backend.(*net.TCPConn).CloseWrite()
		time.Sleep(20 * time.Millisecond) // both are in the proxy's socket before the tunnel starts
	})
	got, err := io.ReadAll(tn.client)
	if err != nil || string(got) != "last words" {
		t.Fatalf("client read %q, %v; want the bytes, then EOF", got, err)
	}
	// The client's direction is still open after the backend's half-close.
	io.WriteString(tn.client, "reply")
	tn.client.(*net.TCPConn).CloseWrite()
	got, err = io.ReadAll(tn.backend)
	if err != nil || string(got) != "reply" {
		t.Fatalf("backend read %q, %v; want the client's reply, then EOF", got, err)
	}
	select {
	case <-tn.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the tunnel did not end after both directions ended")
	}
}

// A tunnel that moves bytes stays open past the idle timeout; one that
// moves none is closed, not before the timeout. While idle it holds no
// copy buffer.
func TestTunnelIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	tn := startTunnel(t, idle, "", "", nil)
	go io.Copy(tn.backend, tn.backend) // echo
	buf := make([]byte, 1)
	var lastSent time.Time // taken before the tunnel's last move
	// 10 x 100 ms: longer than the idle timeout.
	for range 10 {
		lastSent = time.Now()
		if _, err := tn.client.Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(tn.client, buf); err != nil {
			t.Fatalf("tunnel closed while moving bytes: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	poll.Require(t, 5*time.Second, "copy buffers given back while the tunnel waits", func() bool { return tn.bufs.out.Load() == 0 })
	// Measured from the last byte, not from here: the sleep and the poll
	// above take a varying part of the idle timeout on a loaded machine.
	select {
	case <-tn.done:
		if waited := time.Since(lastSent); waited < idle {
			t.Fatalf("closed %s after the last byte, before the idle timeout %s", waited, idle)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an idle tunnel was not closed")
	}
}

// A connection that is not a plain socket (TLS) is relayed by plain reads.
func TestTunnelOverTLS(t *testing.T) {
	c := newTestCert(t, "c", []string{"a"})
	cert, err := tls.X509KeyPair(c.ir.CertPEM, c.ir.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	var proxyClient, client net.Conn
	client, proxyClient = tcpPair(t)
	proxyBackend, backend := tcpPair(t)
	srv := tls.Server(proxyClient, &tls.Config{Certificates: []tls.Certificate{cert}})
	cli := tls.Client(client, &tls.Config{InsecureSkipVerify: true})
	var rx, tx atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		tunnel(tunnelEnd{conn: srv}, tunnelEnd{conn: proxyBackend}, time.Minute, newCountingPool(), &rx, &tx)
		srv.Close()
		proxyBackend.Close()
	}()
	go io.Copy(backend, backend)
	cli.SetDeadline(time.Now().Add(10 * time.Second))
	for _, msg := range []string{"one", "two"} {
		io.WriteString(cli, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(cli, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	cli.Close()
	backend.Close()
	<-done
}
