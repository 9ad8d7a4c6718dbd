package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testTimeout bounds every wait of these tests; none is expected to run
// out.
const testTimeout = 5 * time.Second

// echoHandler answers each request with its method and path as the body,
// then its body if it has one. It hands /handoff off, unserved.
type echoHandler struct {
	c      *Conn
	served int
	// before, when set, runs first on each request, on Serve's goroutine.
	before func()
}

func (h *echoHandler) ServeRequest(headLen int) Next {
	c := h.c
	if h.before != nil {
		h.before()
	}
	if c.Req.Path == "/handoff" {
		c.In.R -= headLen
		return Handoff
	}
	h.served++
	body := c.Req.Method + " " + c.Req.Path
	if n := int(c.Req.ContentLength); n > 0 {
		for c.In.W-c.In.R < n {
			if err := c.In.Fill(ConnBufferSize); err != nil {
				return Close
			}
		}
		body += " " + string(c.In.Buffered()[:n])
		c.In.R += n
	}
	c.WriteStatusLine(http.StatusOK, "")
	c.WriteField("Content-Length", strconv.Itoa(len(body)))
	c.EndHead(false)
	c.Out.Buf = append(c.Out.Buf, body...)
	if c.Out.Flush() != nil || c.Req.CloseAfter {
		return Close
	}
	return Keep
}

// connServer serves one loopback connection with a Conn and echoHandler.
type connServer struct {
	conns   *Conns
	handler *echoHandler
	client  net.Conn
	br      *bufio.Reader
	done    chan struct{}
	// handedOff has the bytes Config.Handoff got, if it ran.
	handedOff chan string
}

func startConn(t *testing.T, maxHeaderBytes int) *connServer {
	t.Helper()
	return startConnWith(t, func(cfg *Config, _ *echoHandler) { cfg.MaxHeaderBytes = maxHeaderBytes }, nil)
}

// startConnWith is startConn with the Config and handler changed by set, and serve,
// when not nil, running the connection's Serve (on its own goroutine).
func startConnWith(t *testing.T, set func(*Config, *echoHandler), serve func(serve func())) *connServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	client.SetDeadline(time.Now().Add(testTimeout))
	cs := &connServer{conns: NewConns(), client: client, br: bufio.NewReader(client),
		done: make(chan struct{}), handedOff: make(chan string, 1)}
	cfg := &Config{
		MaxHeaderBytes: 8 << 10, MaxHeaderFields: 100,
		IdleTimeout: testTimeout, ReadHeaderTimeout: testTimeout, ClientBodyTimeout: testTimeout, ClientSendTimeout: testTimeout,
		Buffers: &sync.Pool{New: NewConnBuffer}, RelayBuffers: &sync.Pool{New: NewRelayBuffer}, Date: &DateCache{},
		Handoff: func(nc net.Conn, pending []byte) {
			cs.handedOff <- string(pending)
			nc.Close()
		},
	}
	c := new(Conn)
	cs.handler = &echoHandler{c: c}
	set(cfg, cs.handler)
	c.Init(cfg, cs.conns, nc, cs.handler)
	if !cs.conns.Add(c) {
		t.Fatal("Add refused an open set")
	}
	if serve == nil {
		serve = func(s func()) { s() }
	}
	go func() { defer close(cs.done); serve(c.Serve) }()
	t.Cleanup(func() {
		client.Close()
		<-cs.done
	})
	return cs
}

// handoffGot waits for the connection's end and returns what
// Config.Handoff got (which runs on Serve's goroutine, before the end).
func (cs *connServer) handoffGot(t *testing.T) string {
	t.Helper()
	<-cs.done
	select {
	case got := <-cs.handedOff:
		return got
	default:
		t.Fatal("the connection ended without a handoff")
		return ""
	}
}

func (cs *connServer) read(t *testing.T) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(cs.br, nil)
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading its body: %v", err)
	}
	return resp, string(b)
}

// Two pipelined requests get their answers in order on one connection,
// each with a Date; the connection leaves its set when it ends.
func TestConnServesPipelinedRequests(t *testing.T) {
	cs := startConn(t, 8<<10)
	io.WriteString(cs.client, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	for _, want := range []string{"GET /a", "POST /b"} {
		resp, body := cs.read(t)
		if resp.StatusCode != http.StatusOK || body != want || resp.Header.Get("Date") == "" || resp.Close {
			t.Errorf("got %d %q (Date %q, close %v); want 200 %q, a Date, keep-alive", resp.StatusCode, body, resp.Header.Get("Date"), resp.Close, want)
		}
	}
	if n := cs.conns.Len(); n != 1 {
		t.Errorf("%d connections in the set while serving, want 1", n)
	}
	cs.client.Close()
	<-cs.done
	if n := cs.conns.Len(); n != 0 {
		t.Errorf("%d connections in the set after the client left, want 0", n)
	}
}

// A head over MaxHeaderBytes gets 431 and the connection's end, without
// reaching the handler.
func TestConnRefusesOversizedHead(t *testing.T) {
	cs := startConn(t, 8<<10)
	io.WriteString(cs.client, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 16<<10)+"\r\n\r\n")
	resp, _ := cs.read(t)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !resp.Close {
		t.Errorf("status %d, close %v; want 431 and Connection: close", resp.StatusCode, resp.Close)
	}
	<-cs.done
	if cs.handler.served != 0 {
		t.Errorf("the handler served %d requests, want 0", cs.handler.served)
	}
}

// A limit below the read buffer's size holds for a head that arrives
// whole in the first read, and for one pipelined behind a small request.
func TestConnLimitsHeadsReadWhole(t *testing.T) {
	small := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	big := "GET /b HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1500) + "\r\n\r\n"
	for name, tc := range map[string]struct {
		send   string
		served int
	}{"first read": {big, 0}, "pipelined": {small + big, 1}} {
		t.Run(name, func(t *testing.T) {
			cs := startConn(t, 1024)
			io.WriteString(cs.client, tc.send)
			resp, _ := cs.read(t)
			if tc.served == 1 {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("small request: status %d, want 200", resp.StatusCode)
				}
				resp, _ = cs.read(t)
			}
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !resp.Close {
				t.Errorf("status %d, close %v; want 431 and Connection: close", resp.StatusCode, resp.Close)
			}
			<-cs.done
			if cs.handler.served != tc.served {
				t.Errorf("the handler served %d requests, want %d", cs.handler.served, tc.served)
			}
		})
	}
}

// A request outside the engine's subset (lines ending in a bare LF) goes
// to Config.Handoff with every byte read, unserved.
func TestConnHandsOffOutsideSubset(t *testing.T) {
	cs := startConn(t, 8<<10)
	const req = "GET /lf HTTP/1.1\nHost: x\n\n"
	io.WriteString(cs.client, req)
	if got := cs.handoffGot(t); got != req {
		t.Errorf("handed off %q, want %q", got, req)
	}
	if cs.handler.served != 0 {
		t.Errorf("the handler served %d requests, want 0", cs.handler.served)
	}
}

// Once its set drains, a connection's next response is its last.
func TestConnDrainEndsKeepAlive(t *testing.T) {
	cs := startConn(t, 8<<10)
	io.WriteString(cs.client, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := cs.read(t); resp.Close {
		t.Fatal("Connection: close before the drain")
	}
	cs.conns.Drain()
	io.WriteString(cs.client, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := cs.read(t); !resp.Close || body != "GET /b" {
		t.Errorf("during the drain: close %v, body %q; want Connection: close and the answer", resp.Close, body)
	}
	<-cs.done
}
