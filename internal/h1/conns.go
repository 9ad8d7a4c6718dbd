package h1

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Conns is the set of connections the engine serves on one socket, so a
// graceful close can end idle ones at once and wait for busy ones, as
// net/http's Shutdown does for its own.
type Conns struct {
	mu    sync.Mutex
	conns map[*Conn]struct{}
	// state is connsOpen, connsDraining or connsClosing; one atomic, as
	// every response reads it.
	state atomic.Uint32
}

// The states of a Conns: serving; draining (the process is about to
// stop: every response is the connection's last, idle keep-alive
// connections are closed, new connections still serve one request);
// closing (the listener is closed: idle connections end at once).
const (
	connsOpen uint32 = iota
	connsDraining
	connsClosing
)

// NewConns returns an empty set, serving.
func NewConns() *Conns { return &Conns{conns: map[*Conn]struct{}{}} }

// Add registers c; false once the socket is closing.
func (s *Conns) Add(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() == connsClosing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Conns) remove(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Drain makes every response the connection's last (Connection: close).
func (s *Conns) Drain() { s.state.CompareAndSwap(connsOpen, connsDraining) }

// CloseIdle closes the idle connections that served a request; one that
// has not served one yet keeps waiting for its first. Called a while
// after Drain, it finds only connections idle since the drain began: any
// request meanwhile was answered with Connection: close.
func (s *Conns) CloseIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() && c.served.Load() {
			closeConn(c)
		}
	}
}

// Len returns the number of connections.
func (s *Conns) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown closes idle connections until none is left, polling like
// net/http does, and closes the rest when ctx ends. Busy connections see
// closing after their response, answer it with Connection: close and end.
func (s *Conns) Shutdown(ctx context.Context) {
	s.state.Store(connsClosing)
	wait := time.Millisecond
	for {
		s.mu.Lock()
		for c := range s.conns {
			if c.idle.Load() {
				closeConn(c)
			}
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			s.mu.Lock()
			for c := range s.conns {
				closeConn(c)
			}
			s.mu.Unlock()
			return
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// closeConn ends c from another goroutine without waiting for it. Closing
// a connection that serves a request inside its read loop (serveloop.go)
// returns only once that request ends, since the loop's read holds the
// socket; one after the other, such closes would add up. So Interrupt
// makes its waits and writes fail at once, and the close runs on its own
// goroutine; once it has begun, a backend wait finds the client gone
// within a second and the request ends.
func closeConn(c *Conn) {
	c.In.Sock.Interrupt()
	go c.NC.Close()
}
