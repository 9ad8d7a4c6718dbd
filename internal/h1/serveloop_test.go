package h1

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestServeLoopReadsOncePerRequest: a keep-alive connection whose next
// request comes after a pause makes one read system call per request, the
// one that brings it: no read that finds nothing before the wait
// (serveloop.go). Separate reads make two, as the counts of
// docs/performance.md's round 20 show.
func TestServeLoopReadsOncePerRequest(t *testing.T) {
	const requests = 20
	samples := make(chan int, requests)
	cs := startConnWith(t, func(_ *Config, h *echoHandler) {
		h.before = func() { samples <- h.c.In.Sock.readCalls }
	}, nil)
	for i := range requests {
		if _, err := io.WriteString(cs.client, "GET /r HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if resp, body := cs.read(t); resp.StatusCode != http.StatusOK || body != "GET /r" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(2 * time.Millisecond) // the next request is not there when the response goes out
	}
	cs.client.Close()
	<-cs.done
	if len(samples) != requests {
		t.Fatalf("%d samples, want %d", len(samples), requests)
	}
	// The first interval is not counted: a request that arrives between
	// the loop's start (which forgets the socket's readiness) and its
	// first read is read by that try and leaves a readiness behind, so
	// the first wait returns at once to a read that finds nothing: once
	// per loop, not per request.
	<-samples
	prev := <-samples
	for i := 2; i < requests; i++ {
		cur := <-samples
		if got := cur - prev; got != 1 {
			t.Errorf("between requests %d and %d: %d read calls, want 1", i-1, i, got)
		}
		prev = cur
	}
}

// TestServeLoopMixedRequests: on one connection, requests served inside the
// read loop alternate with ones that leave it (a body, a head in pieces,
// pipelined requests) and each gets its own answer, in order.
func TestServeLoopMixedRequests(t *testing.T) {
	cs := startConn(t, 8<<10)
	pause := func() { time.Sleep(5 * time.Millisecond) }
	steps := []struct {
		send []string // written with a pause between
		want []string // answers' bodies
	}{
		{[]string{"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"}, []string{"GET /1"}},
		{[]string{"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"}, []string{"POST /2 hello"}},
		{[]string{"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n"}, []string{"GET /3"}},
		{[]string{"GET /4 HTTP/1.1\r\nHo", "st: x\r\n\r\n"}, []string{"GET /4"}},
		{[]string{"GET /5 HTTP/1.1\r\nHost: x\r\n\r\nGET /6 HTTP/1.1\r\nHost: x\r\n\r\n"}, []string{"GET /5", "GET /6"}},
		{[]string{"POST /7 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhe", "llo"}, []string{"POST /7 hello"}},
		{[]string{"GET /8 HTTP/1.1\r\nHost: x\r\n\r\nPOST /9 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"}, []string{"GET /8", "POST /9 ok"}},
		{[]string{"GET /10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"}, []string{"GET /10"}},
	}
	for _, st := range steps {
		for i, part := range st.send {
			if i > 0 {
				pause()
			}
			if _, err := io.WriteString(cs.client, part); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range st.want {
			if resp, body := cs.read(t); resp.StatusCode != http.StatusOK || body != want {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
			}
		}
		pause() // the loop waits for the next request
	}
	<-cs.done // Connection: close ended it
	if cs.handler.served != 10 {
		t.Errorf("the handler served %d requests, want 10", cs.handler.served)
	}
}

// TestServeLoopHandsOff: a request the handler hands off from inside the
// loop reaches Config.Handoff with its head unread.
func TestServeLoopHandsOff(t *testing.T) {
	cs := startConn(t, 8<<10)
	io.WriteString(cs.client, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := cs.read(t); resp.StatusCode != http.StatusOK || body != "GET /1" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	time.Sleep(5 * time.Millisecond)
	const req = "GET /handoff HTTP/1.1\r\nHost: x\r\n\r\n"
	io.WriteString(cs.client, req)
	if got := cs.handoffGot(t); got != req {
		t.Errorf("handed off %q, want %q", got, req)
	}
}

// TestServeLoopIdleEnds: a connection waiting in the loop ends at its idle
// timeout, at CloseIdle, and at Shutdown.
func TestServeLoopIdleEnds(t *testing.T) {
	for name, end := range map[string]func(cs *connServer){
		"idle timeout": func(*connServer) {},
		"CloseIdle":    func(cs *connServer) { cs.conns.CloseIdle() },
		"Shutdown":     func(cs *connServer) { cs.conns.Shutdown(context.Background()) },
	} {
		t.Run(name, func(t *testing.T) {
			idle := testTimeout
			if name == "idle timeout" {
				idle = 100 * time.Millisecond
			}
			cs := startConnWith(t, func(cfg *Config, _ *echoHandler) { cfg.IdleTimeout = idle }, nil)
			io.WriteString(cs.client, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, _ := cs.read(t); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			time.Sleep(5 * time.Millisecond) // waiting in the loop
			end(cs)
			if _, err := cs.br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("the client read %v, want EOF", err)
			}
			<-cs.done
			if n := cs.conns.Len(); n != 0 {
				t.Errorf("%d connections left in the set", n)
			}
		})
	}
}

// TestShutdownDoesNotWaitForBusyLoops: when Shutdown's context ends, it
// closes connections busy inside their read loop without waiting for each
// request to end; the close takes effect at once (writes fail).
func TestShutdownDoesNotWaitForBusyLoops(t *testing.T) {
	release := make(chan struct{})
	busy := make(chan struct{}, 2)
	var servers []*connServer
	for range 2 {
		cs := startConnWith(t, func(_ *Config, h *echoHandler) {
			h.before = func() {
				busy <- struct{}{}
				<-release // a backend wait with no check of the client
			}
		}, nil)
		io.WriteString(cs.client, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
		servers = append(servers, cs)
	}
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	<-busy
	<-busy
	shut := make(chan struct{})
	for _, cs := range servers {
		go func() {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			cs.conns.Shutdown(ctx)
			shut <- struct{}{}
		}()
	}
	for range servers {
		select {
		case <-shut:
		case <-time.After(testTimeout):
			t.Fatal("Shutdown waited for a request being served")
		}
	}
	close(release)
	for _, cs := range servers {
		<-cs.done
		if _, err := cs.br.ReadByte(); err == nil {
			t.Error("the client read an answer written after its connection was closed")
		}
	}
}

// TestReadLoopRefusesReadsInside: reading a socket inside its own ReadLoop
// fails with ErrReadInLoop instead of waiting on the read it is in.
func TestReadLoopRefusesReadsInside(t *testing.T) {
	ours, peer := tcpPair(t)
	s := NewSocket(ours)
	if !s.Raw() {
		t.Skip("not a raw-capable socket")
	}
	peer.Write([]byte("x"))
	buf := make([]byte, 8)
	var readErr, idleErr error
	calls := 0
	err := s.ReadLoop(func() []byte { return buf }, func(n int, err error) bool {
		calls++
		if errors.Is(err, ErrWouldBlock) {
			return true
		}
		_, readErr = s.Read(buf)
		_, _, idleErr = s.ReadIdle(nil)
		return false
	})
	if err != nil || calls == 0 {
		t.Fatalf("ReadLoop: %v after %d calls", err, calls)
	}
	if !errors.Is(readErr, ErrReadInLoop) || !errors.Is(idleErr, ErrReadInLoop) {
		t.Errorf("Read inside: %v, ReadIdle inside: %v; want ErrReadInLoop", readErr, idleErr)
	}
	// Outside the loop, reads work again.
	peer.Write([]byte("y"))
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("Read after the loop: %q, %v", buf[:n], err)
	}
}
