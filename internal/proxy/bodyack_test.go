package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/poll"
)

// TestRequestBodyWaitAcksFirst: when the relay of a request body has sent
// on everything the client's connection held and is about to wait for the
// rest, it acknowledges what came first (TCP_QUICKACK). A client that
// holds its last short piece until its data is acknowledged (Nagle's rule,
// on in Java's HttpURLConnection and many embedded clients) would
// otherwise wait for the kernel's delayed-ACK timer, 40 ms or more, on
// every upload over a kept-alive connection (docs/performance.md, round
// 19).
//
// The test reads the mode of the proxy's own socket: 0 while the kernel
// delays ACKs ("pingpong", which a request answered soon after puts a
// connection in), 1 once the relay asked for the ACK. The timer, when it
// fires, also leaves pingpong mode; so the mode is read within 30 ms of
// the backend receiving the first piece (the timer needs 40 ms from its
// arrival), and of three uploads one seeing the ACK is enough: a slow
// machine can only make the test pass without the fix, never fail with it.
func TestRequestBodyWaitAcksFirst(t *testing.T) {
	received := make(chan int, 16) // body bytes the backend has, per read
	be := newWireBackend(t, func(b *wireBackend, c net.Conn) {
		br := bufio.NewReader(c)
		buf := make([]byte, 64<<10)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			n := 0
			for {
				k, err := r.Body.Read(buf)
				n += k
				if k > 0 {
					received <- n
				}
				if err != nil {
					break
				}
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	cl := dialWire(t, p.addr)
	exchange := func(raw string) {
		t.Helper()
		cl.send(raw)
		if resp, body, err := cl.response(http.MethodPost); err != nil || resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("status %d, body %q, error %v", resp.StatusCode, body, err)
		}
	}
	// One request answered puts the proxy's side in pingpong mode.
	exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	fd := peerSocket(t, cl.c.LocalAddr().(*net.TCPAddr))

	first, rest := strings.Repeat("a", 1000), strings.Repeat("b", 1000)
	head := "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(first)+len(rest)) + "\r\n\r\n"
	tried, acked := 0, 0
	for range 3 {
		if socketQuickAck(t, fd) != 0 {
			continue // not in pingpong mode: nothing to observe this time
		}
		tried++
		cl.send(head + first)
		awaitBody(t, received, len(first))
		if poll.Until(30*time.Millisecond, func() bool { return socketQuickAck(t, fd) == 1 }) {
			acked++
		}
		cl.send(rest)
		awaitBody(t, received, len(first)+len(rest))
		exchange("")
	}
	if tried == 0 {
		t.Skip("this kernel did not put the connection in pingpong mode; nothing to observe")
	}
	if acked == 0 {
		t.Fatalf("in %d uploads the relay waited for the rest of the body without acknowledging the first piece (TCP_QUICKACK stayed 0)", tried)
	}
}

// awaitBody waits until the backend has want bytes of the body.
func awaitBody(t *testing.T, received <-chan int, want int) {
	t.Helper()
	for {
		select {
		case n := <-received:
			if n > want {
				t.Fatalf("backend has %d body bytes, want %d", n, want)
			}
			if n == want {
				return
			}
		case <-time.After(wireTimeout):
			t.Fatalf("the backend did not get %d body bytes", want)
		}
	}
}

// peerSocket finds, among this process's descriptors, the proxy's socket
// whose peer is the client at addr.
func peerSocket(t *testing.T, addr *net.TCPAddr) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := syscall.Getpeername(fd)
		if err != nil {
			continue
		}
		if in4, ok := sa.(*syscall.SockaddrInet4); ok && in4.Port == addr.Port && net.IP(in4.Addr[:]).Equal(addr.IP) {
			return fd
		}
	}
	t.Fatalf("no socket of this process has the peer %s", addr)
	return -1
}

// socketQuickAck reads TCP_QUICKACK of fd: 0 while the kernel delays ACKs
// ("pingpong" mode), 1 once an ACK was asked for.
func socketQuickAck(t *testing.T, fd int) int {
	t.Helper()
	v, err := syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
	if err != nil {
		t.Fatalf("getsockopt TCP_QUICKACK: %v", err)
	}
	return v
}
