package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// Issue 14, points 3 and 4: stalls and dead backends are cut as nginx and
// HAProxy cut them, on every forwarding path. The HTTP/1.1 paths are
// reached with raw requests: the wire engine with a plain head, net/http
// over the engine's pool with a head in bare LFs (which the engine hands
// to net/http), net/http's Transport with a chunked request body (which
// the pool does not send).

// shortTimeout is the timeout under test; slack is how much later than it
// a stall may be cut on a loaded machine.
const (
	shortTimeout = 300 * time.Millisecond
	slack        = 3 * time.Second
)

// timeoutPaths are the HTTP/1.1 forwarding paths and how a raw client
// reaches each with a GET (the Transport one needs a body; a complete one).
var timeoutPaths = []struct {
	name string
	get  string
}{
	{"engine", "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
	{"net/http pooled", "GET /x HTTP/1.1\nHost: a\nConnection: close\n\n"},
	{"net/http transport", "POST /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
}

// stallBackend runs serve on each connection, then waits for the proxy to
// close it, and counts the connections open and the ones the proxy
// closed.
type stallBackend struct {
	ln     net.Listener
	open   atomic.Int64
	closed atomic.Int64
	wg     sync.WaitGroup
}

func newStallBackend(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) *stallBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &stallBackend{ln: ln}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.open.Add(1)
			b.wg.Go(func() {
				defer b.open.Add(-1)
				defer c.Close()
				c.SetDeadline(time.Now().Add(15 * time.Second))
				br := bufio.NewReader(c)
				serve(c, br)
				// The proxy must close it: EOF or a reset, never the
				// deadline.
				if _, err := io.Copy(io.Discard, br); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
					b.closed.Add(1)
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *stallBackend) backend() ir.Backend {
	a := b.ln.Addr().(*net.TCPAddr)
	return ir.Backend{Name: "default/stall:80", Weight: 1,
		Endpoints: []ir.Endpoint{{Address: a.IP.String(), Port: uint32(a.Port)}}}
}

// waitClosed waits until the backend saw want connections closed by the
// proxy and none is left open.
func (b *stallBackend) waitClosed(t *testing.T, want int64) {
	t.Helper()
	end := time.Now().Add(slack)
	for time.Now().Before(end) {
		if b.closed.Load() >= want && b.open.Load() == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("backend: %d connections closed by the proxy, %d open; want %d and 0", b.closed.Load(), b.open.Load(), want)
}

// readHead reads a request head, and the body as far as want bytes of it.
func readHead(br *bufio.Reader) bool {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" || line == "\n" {
			return true
		}
	}
}

func startTimeoutProxy(t *testing.T, route ir.Route, o Options) *testProxy {
	t.Helper()
	o.ReadHeaderTimeout = 10 * time.Second
	return startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(route))}}, o)
}

func (p *testProxy) addr() string { return p.Addr("l").String() }

// waitNoConns waits until the proxy serves no client connection.
func (p *testProxy) waitNoConns(t *testing.T) {
	t.Helper()
	end := time.Now().Add(slack)
	for p.Conns() > 0 && time.Now().Before(end) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := p.Conns(); n > 0 {
		t.Errorf("%d client connections still open", n)
	}
}

// rawExchange sends raw on a new connection (then, if more is set, runs
// it), reads one response to method and reports the status (0 when the
// connection ended without one), the time it took, and whether the proxy
// closed the connection after it.
func timedExchange(t *testing.T, addr, method, raw string, more func(net.Conn)) (status int, took time.Duration, closed bool) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Error(err)
		return 0, 0, false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	start := time.Now()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Error(err)
		return 0, 0, false
	}
	if more != nil {
		more(c)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err == nil && resp.StatusCode == http.StatusContinue {
		resp, err = http.ReadResponse(br, &http.Request{Method: method})
	}
	took = time.Since(start)
	if err != nil {
		return 0, took, true
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return resp.StatusCode, took, true
	}
	c.SetReadDeadline(time.Now().Add(slack))
	_, err = br.ReadByte()
	return resp.StatusCode, took, err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !strings.Contains(err.Error(), "timeout")
}

// concurrently runs n exchanges at once.
func concurrently(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}

// Finding 1: a request body that stalls (after its head, or after a few
// bytes) was held forever. Each wait for more of it is now bounded by
// ClientBodyTimeout: 408 and the connection closed, the backend exchange
// aborted.
func TestSlowRequestBodyCut(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		n         int
	}{
		{"engine", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc", 300},
		{"engine, body never started", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n", 50},
		{"engine, large body", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("y", 40000), 20},
		{"net/http pooled", "POST /x HTTP/1.1\nHost: a\nContent-Length: 100\n\nabc", 50},
		{"net/http pooled, large body", "POST /x HTTP/1.1\nHost: a\nContent-Length: 100000\n\n" + strings.Repeat("y", 40000), 20},
		{"net/http transport", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", 50},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := newStallBackend(t, func(_ net.Conn, br *bufio.Reader) { readHead(br) })
			p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{ClientBodyTimeout: shortTimeout})
			var bad atomic.Int64
			concurrently(c.n, func(int) {
				status, took, closed := timedExchange(t, p.addr(), "POST", c.raw, nil)
				if status != http.StatusRequestTimeout || !closed || took > shortTimeout+slack || took < shortTimeout/2 {
					if bad.Add(1) == 1 {
						t.Errorf("status %d after %v, closed %v; want 408 after about %v, closed", status, took, closed, shortTimeout)
					}
				}
			})
			if n := bad.Load(); n > 0 {
				t.Errorf("%d of %d exchanges wrong", n, c.n)
			}
			if c.name != "engine, body never started" || be.closed.Load() > 0 {
				// The engine sends the head with the first body bytes; a
				// body never started may or may not have reached the
				// backend.
				be.waitClosed(t, int64(min(c.n, int(be.closed.Load())+int(be.open.Load()))))
			}
			p.waitNoConns(t)
		})
	}
}

// A body that keeps coming, a little at a time, is not cut: the timeout
// bounds each wait, not the whole body.
func TestSlowRequestBodyTrickleKept(t *testing.T) {
	for _, c := range []struct{ name, head string }{
		{"engine", "POST /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 6\r\n\r\n"},
		{"net/http pooled", "POST /x HTTP/1.1\nHost: a\nConnection: close\nContent-Length: 6\n\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := newWireBackend(t, scripted(echoAnswer))
			p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{ClientBodyTimeout: 400 * time.Millisecond})
			status, _, _ := timedExchange(t, p.addr(), "POST", c.head, func(conn net.Conn) {
				for range 6 {
					time.Sleep(150 * time.Millisecond) // 900 ms in all
					io.WriteString(conn, "z")
				}
			})
			if status != http.StatusOK {
				t.Errorf("status %d, want 200", status)
			}
		})
	}
}

// Finding 1: Expect: 100-continue uploads whose body never came after the
// 100 Continue were held forever.
func TestExpectContinueBodyNeverSent(t *testing.T) {
	be := newStallBackend(t, func(c net.Conn, br *bufio.Reader) {
		if readHead(br) {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
	})
	p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{ClientBodyTimeout: shortTimeout})
	var bad, continued atomic.Int64
	concurrently(50, func(int) {
		raw := "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"
		status, took, closed := timedExchange(t, p.addr(), "POST", raw, func(c net.Conn) {
			br := bufio.NewReader(c)
			line, _ := br.ReadString('\n')
			if strings.Contains(line, " 100 ") {
				continued.Add(1)
			}
			br.ReadString('\n') // the empty line
		})
		if status != http.StatusRequestTimeout || !closed || took > shortTimeout+slack+time.Second {
			if bad.Add(1) == 1 {
				t.Errorf("status %d after %v, closed %v; want 408, closed", status, took, closed)
			}
		}
	})
	if bad.Load() > 0 || continued.Load() != 50 {
		t.Errorf("%d of 50 wrong, %d got 100 Continue", bad.Load(), continued.Load())
	}
	be.waitClosed(t, 50)
	p.waitNoConns(t)
}

// A route's timeouts.request covers the request body too: on the pooled
// path a small body was read before its timer started.
func TestRouteTimeoutCoversRequestBody(t *testing.T) {
	for _, c := range []struct{ name, raw string }{
		{"engine", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc"},
		{"net/http pooled", "POST /x HTTP/1.1\nHost: a\nContent-Length: 100\n\nabc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := newStallBackend(t, func(_ net.Conn, br *bufio.Reader) { readHead(br) })
			rt := prefixRoute("r", "/", be.backend())
			rt.Timeouts.Request = shortTimeout
			p := startTimeoutProxy(t, rt, Options{})
			status, took, closed := timedExchange(t, p.addr(), "POST", c.raw, nil)
			if status != http.StatusGatewayTimeout || !closed || took > shortTimeout+slack {
				t.Errorf("status %d after %v, closed %v; want 504 after about %v, closed", status, took, closed, shortTimeout)
			}
			p.waitNoConns(t)
		})
	}
}

// Finding 2: a backend that accepts and never answers held the request
// forever; BackendResponseTimeout answers 504.
func TestBackendNeverAnswers(t *testing.T) {
	for _, c := range timeoutPaths {
		t.Run(c.name, func(t *testing.T) {
			be := newStallBackend(t, func(_ net.Conn, br *bufio.Reader) { readHead(br) })
			p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{BackendResponseTimeout: shortTimeout})
			var bad atomic.Int64
			concurrently(20, func(int) {
				status, took, _ := timedExchange(t, p.addr(), "GET", c.get, nil)
				if status != http.StatusGatewayTimeout || took > shortTimeout+slack || took < shortTimeout/2 {
					if bad.Add(1) == 1 {
						t.Errorf("status %d after %v; want 504 after about %v", status, took, shortTimeout)
					}
				}
			})
			be.waitClosed(t, 20)
		})
	}
	t.Run("upgrade", func(t *testing.T) {
		be := newStallBackend(t, func(_ net.Conn, br *bufio.Reader) { readHead(br) })
		p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{BackendResponseTimeout: shortTimeout})
		raw := "GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
		if status, took, _ := timedExchange(t, p.addr(), "GET", raw, nil); status != http.StatusGatewayTimeout || took > shortTimeout+slack {
			t.Errorf("status %d after %v; want 504 after about %v", status, took, shortTimeout)
		}
		be.waitClosed(t, 1)
	})
	t.Run("h2c", func(t *testing.T) {
		be := newStallBackend(t, func(_ net.Conn, br *bufio.Reader) { readHead(br) })
		p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{BackendResponseTimeout: shortTimeout})
		start := time.Now()
		resp, _, _ := h2cGet(t, "http://"+p.addr()+"/x")
		if took := time.Since(start); resp.StatusCode != http.StatusGatewayTimeout || took > shortTimeout+slack {
			t.Errorf("status %d after %v; want 504", resp.StatusCode, took)
		}
		be.waitClosed(t, 1)
	})
}

// A route's timeout replaces BackendResponseTimeout, longer or shorter.
func TestRouteTimeoutReplacesBackendResponseTimeout(t *testing.T) {
	slow := func(c net.Conn, br *bufio.Reader) {
		if !readHead(br) {
			return
		}
		time.Sleep(3 * shortTimeout)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	}
	for _, c := range timeoutPaths {
		t.Run(c.name, func(t *testing.T) {
			for _, tc := range []struct {
				name    string
				timeout ir.Timeouts
				want    int
			}{
				{"request longer", ir.Timeouts{Request: 10 * shortTimeout}, http.StatusOK},
				{"backendRequest longer", ir.Timeouts{BackendRequest: 10 * shortTimeout}, http.StatusOK},
				{"request shorter", ir.Timeouts{Request: shortTimeout}, http.StatusGatewayTimeout},
			} {
				be := newStallBackend(t, slow)
				rt := prefixRoute("r", "/", be.backend())
				rt.Timeouts = tc.timeout
				bt := shortTimeout
				if tc.want == http.StatusGatewayTimeout {
					bt = time.Minute
				}
				p := startTimeoutProxy(t, rt, Options{BackendResponseTimeout: bt})
				if status, took, _ := timedExchange(t, p.addr(), "GET", c.get, nil); status != tc.want || took > 3*shortTimeout+slack {
					t.Errorf("%s: status %d after %v, want %d", tc.name, status, took, tc.want)
				}
			}
		})
	}
}

// Finding 2: a backend that stalls mid-body is cut after
// BackendIdleTimeout; the client connection closes, since its response is
// partial.
func TestBackendStallsMidBody(t *testing.T) {
	stall := func(c net.Conn, br *bufio.Reader) {
		if readHead(br) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part")
		}
	}
	for _, c := range timeoutPaths {
		t.Run(c.name, func(t *testing.T) {
			be := newStallBackend(t, stall)
			p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{BackendIdleTimeout: shortTimeout})
			status, took, closed := timedExchange(t, p.addr(), "GET", c.get, nil)
			// net/http may not have sent the head it buffered: then the
			// client sees the connection closed without a response.
			if (status != http.StatusOK && status != 0) || !closed || took > shortTimeout+slack {
				t.Errorf("status %d after %v, closed %v; want 200 cut short after about %v", status, took, closed, shortTimeout)
			}
			be.waitClosed(t, 1)
			p.waitNoConns(t)
		})
	}
	t.Run("h2c", func(t *testing.T) {
		be := newStallBackend(t, stall)
		p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{BackendIdleTimeout: shortTimeout})
		start := time.Now()
		_, body, err := h2cGet(t, "http://"+p.addr()+"/x")
		// The client's own 5 s timeout must not be what ends it.
		if took := time.Since(start); err == nil || took > shortTimeout+slack {
			t.Errorf("body %q, %v after %v; want the stream reset after about %v", body, err, took, shortTimeout)
		}
		be.waitClosed(t, 1)
	})
}

// Finding 3: the wire engine did not notice a client that went away while
// it waited on a backend; the connections stayed in CLOSE_WAIT. It checks
// the client's socket while it waits, and ends the exchange. Over TLS too,
// whether the client closes politely (close_notify, then FIN) or resets.
func TestClientGoneWhileBackendWaits(t *testing.T) {
	cert := newTestCert(t, "gone", []string{"a"}, "")
	for _, secure := range []bool{false, true} {
		for _, reset := range []bool{false, true} {
			t.Run(fmt.Sprintf("tls=%v/reset=%v", secure, reset), func(t *testing.T) {
				got := make(chan struct{}, 1)
				be := newStallBackend(t, func(_ net.Conn, br *bufio.Reader) {
					readHead(br)
					got <- struct{}{}
				})
				// A backend response timeout far away: only the hang-up can
				// end the exchange in time.
				route, opts := prefixRoute("r", "/", be.backend()), Options{BackendResponseTimeout: time.Minute}
				var p *testProxy
				var c net.Conn
				var tcp *net.TCPConn
				if secure {
					opts.ReadHeaderTimeout = 10 * time.Second
					p = startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpsListener("l", []ir.Certificate{cert.ir}, catchAll(route))}}, opts)
					tc := dialTLS(t, p.addr(), &tls.Config{ServerName: "a"})
					c, tcp = tc, tc.NetConn().(*net.TCPConn)
				} else {
					p = startTimeoutProxy(t, route, opts)
					nc, err := net.Dial("tcp", p.addr())
					if err != nil {
						t.Fatal(err)
					}
					c, tcp = nc, nc.(*net.TCPConn)
				}
				io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
				select {
				case <-got:
				case <-time.After(slack):
					t.Fatal("the request did not reach the backend")
				}
				if reset {
					tcp.SetLinger(0)
					tcp.Close()
				} else {
					c.Close() // over TLS: close_notify, then FIN
				}
				be.waitClosed(t, 1)
				p.waitNoConns(t)
			})
		}
	}
}

// Pipelined requests are not a hang-up: the bytes of the next request,
// buffered or in the socket, leave the exchange in progress alone.
func TestPipelinedNotMistakenForHangUp(t *testing.T) {
	be := newWireBackend(t, func(b *wireBackend, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			time.Sleep(1300 * time.Millisecond) // past a check of the client
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+fmt.Sprint(len(r.URL.Path))+"\r\n\r\n"+r.URL.Path)
		}
	})
	p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{BackendResponseTimeout: 4 * time.Second})
	w := dialWire(t, p.addr())
	w.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	got, clean := w.readAll()
	if want := []string{"200 /a", "200 /b"}; fmt.Sprint(got) != fmt.Sprint(want) || !clean {
		t.Errorf("got %q (clean %v), want %q", got, clean, want)
	}
}

// Finding 4: a client that stops reading its response held the backend
// exchange forever; ClientSendTimeout bounds each wait to send it more.
func TestClientStopsReading(t *testing.T) {
	const size = 64 << 20
	big := func(c net.Conn, br *bufio.Reader) {
		if !readHead(br) {
			return
		}
		io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size))
		buf := make([]byte, 64<<10)
		for n := 0; n < size; n += len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}
	for _, c := range timeoutPaths {
		t.Run(c.name, func(t *testing.T) {
			be := newStallBackend(t, big)
			p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{ClientSendTimeout: shortTimeout})
			conn, err := net.Dial("tcp", p.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.(*net.TCPConn).SetReadBuffer(64 << 10)
			io.WriteString(conn, c.get)
			// Read nothing: the proxy's writes fill the socket and wait.
			be.waitClosed(t, 1)
			// The client connection was closed: what it can read ends
			// well short of the body.
			conn.SetReadDeadline(time.Now().Add(slack))
			n, err := io.Copy(io.Discard, conn)
			if n >= size || errors.Is(err, os.ErrDeadlineExceeded) || (err != nil && strings.Contains(err.Error(), "timeout")) {
				t.Errorf("client read %d bytes, %v; want the connection closed short of %d", n, err, size)
			}
			p.waitNoConns(t)
		})
	}
}

// The write deadline a response armed on a net/http connection does not
// outlive it (net/http clears it after each response, which clientSend
// relies on): a later response on the same connection, here one written
// after that deadline passed, still goes out.
func TestSendDeadlineDoesNotOutliveResponse(t *testing.T) {
	be := newWireBackend(t, scripted(echoAnswer))
	p := startTimeoutProxy(t, prefixRoute("r", "/x", be.backend()), Options{ClientSendTimeout: shortTimeout})
	w := dialWire(t, p.addr())
	w.send("GET /x HTTP/1.1\nHost: a\n\n") // net/http
	if resp, _, err := w.response("GET"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first response: %v %v", resp.StatusCode, err)
	}
	time.Sleep(3 * shortTimeout)
	w.send("GET /none HTTP/1.1\nHost: a\nConnection: close\n\n")
	if resp, _, err := w.response("GET"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second response: %v %v", resp.StatusCode, err)
	}
}

// TestHTTP2BodyStallCut: the client timeouts reach HTTP/2 streams too (the
// h2 server gets them from Options): a stream whose declared body never
// comes is answered 408 (or reset) within the body timeout.
func TestHTTP2BodyStallCut(t *testing.T) {
	be := newEchoBackend(t, "a")
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("web", catchAll(prefixRoute("r", "/", be.backend(1))))}}
	p := startProxy(t, snap, Options{ClientBodyTimeout: 300 * time.Millisecond})
	body, w := io.Pipe()
	defer w.Close()
	req, _ := http.NewRequest("POST", p.url(t, "web")+"/upload", body)
	start := time.Now()
	res, err := h2cClient().Do(req)
	if err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("stalled HTTP/2 body: %d, want 408", res.StatusCode)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("stalled HTTP/2 body cut after %v, want about 300ms", d)
	}
}

// A backend that takes a request's head and then none of its body is cut
// once a write to it waited BackendIdleTimeout: 504 (the exchange's
// upstream.ErrSendTimeout), on the engine and on net/http's pooled path,
// and the backend connection is closed. The 64 MiB body is more than the
// loopback socket buffers hold.
func TestBackendStopsTakingBody(t *testing.T) {
	const mib = 64
	for _, c := range []struct{ name, head string }{
		{"engine", fmt.Sprintf("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", mib<<20)},
		{"net/http pooled", fmt.Sprintf("POST /x HTTP/1.1\nHost: a\nContent-Length: %d\n\n", mib<<20)},
	} {
		t.Run(c.name, func(t *testing.T) {
			release := make(chan struct{})
			be := newStallBackend(t, func(_ net.Conn, br *bufio.Reader) {
				if readHead(br) {
					<-release // reads none of the body until the client has its answer
				}
			})
			p := startTimeoutProxy(t, prefixRoute("r", "/", be.backend()), Options{BackendIdleTimeout: shortTimeout})
			send := func(conn net.Conn) {
				go func() {
					chunk := make([]byte, 1<<20)
					for range mib {
						if _, err := conn.Write(chunk); err != nil {
							return // the proxy closed, or the test did
						}
					}
				}()
			}
			status, _, _ := timedExchange(t, p.addr(), "POST", c.head, send)
			close(release)
			if status != http.StatusGatewayTimeout {
				t.Errorf("status %d, want 504 for a backend that takes no body", status)
			}
			be.waitClosed(t, 1)
		})
	}
}

// A route's request timeout bounds the whole response to an HTTP/2
// client, its body too, on both of the paths an HTTP/2 request takes: the
// engine's pool (HTTP/1.1 backend) and the Transport (h2c backend). The
// deadline is a value each forwarder enforces, not a context's timer
// (callDeadline): a backend that sends a head and part of the body, then
// stalls, is cut at the route's timeout, long before BackendIdleTimeout.
func TestRouteTimeoutCutsResponseBody(t *testing.T) {
	stallH1 := newStallBackend(t, func(c net.Conn, br *bufio.Reader) {
		if readHead(br) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part")
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	stalled := make(chan struct{}, 1)
	srv := &http.Server{Protocols: protocols, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "first part") //nolint:errcheck // the client reads it
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done(): // the gateway reset the stream
			stalled <- struct{}{}
		case <-time.After(time.Minute):
		}
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	h2cStall := ir.Backend{Name: "default/h2c-stall:80", Weight: 1, AppProtocol: "h2c", Endpoints: []ir.Endpoint{endpointOf(t, ln.Addr().String())}}

	for _, c := range []struct {
		name    string
		backend ir.Backend
	}{{"pooled", stallH1.backend()}, {"transport", h2cStall}} {
		t.Run(c.name, func(t *testing.T) {
			rt := prefixRoute("r", "/", c.backend)
			rt.Timeouts.Request = shortTimeout
			p := startTimeoutProxy(t, rt, Options{BackendIdleTimeout: time.Minute})
			start := time.Now()
			resp, body, err := h2cGet(t, "http://"+p.addr()+"/x")
			took := time.Since(start)
			if resp.StatusCode != http.StatusOK || body != "first part" || err == nil {
				t.Errorf("status %d, body %q, %v; want 200, the first part, then the stream reset", resp.StatusCode, body, err)
			}
			if took < shortTimeout || took > shortTimeout+slack {
				t.Errorf("cut after %v; want the route's timeout, %v", took, shortTimeout)
			}
		})
	}
	select {
	case <-stalled:
	case <-time.After(slack):
		t.Error("the h2c backend's stream was not reset")
	}
}
