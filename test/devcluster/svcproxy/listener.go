package svcproxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// backendSet is what a listener forwards new connections to. It is replaced as a whole
// when endpoints change, so a connection picks from one consistent list.
type backendSet struct {
	addrs []netip.AddrPort
	next  atomic.Uint64 // round robin
}

// pick returns the i-th backend to try for one connection: round robin for the first, the
// following ones in order after it.
func (b *backendSet) start() uint64 { return b.next.Add(1) - 1 }

func (b *backendSet) at(start uint64, i int) netip.AddrPort {
	return b.addrs[(start+uint64(i))%uint64(len(b.addrs))]
}

// listener accepts TCP connections on one frontend address and splices each to a backend.
type listener struct {
	addr        netip.AddrPort
	ln          *net.TCPListener
	backends    atomic.Pointer[backendSet]
	sem         chan struct{}
	dialTimeout time.Duration
	// dialAttempts is how many endpoints one connection tries when dials fail
	// (Config.DialAttempts).
	dialAttempts int
	conns        *connTracker
	done         chan struct{}
}

// listen binds addr. The accept loop runs until close; connections it handed off are left
// to finish (tracked by conns, which the proxy closes on Stop).
func listen(addr netip.AddrPort, maxConns int, dialTimeout time.Duration, dialAttempts int, conns *connTracker) (*listener, error) {
	ln, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	l := &listener{addr: addr, ln: ln, sem: make(chan struct{}, maxConns), dialTimeout: dialTimeout, dialAttempts: max(dialAttempts, 1), conns: conns, done: make(chan struct{})}
	l.backends.Store(&backendSet{})
	go l.serve()
	return l, nil
}

// setBackends applies to connections accepted from now on. An unchanged list keeps its
// round-robin position.
func (l *listener) setBackends(addrs []netip.AddrPort) {
	if cur := l.backends.Load(); slices.Equal(cur.addrs, addrs) {
		return
	}
	l.backends.Store(&backendSet{addrs: slices.Clone(addrs)})
}

// close stops accepting and waits for the accept loop to end.
func (l *listener) close() error {
	err := l.ln.Close()
	<-l.done
	return err
}

func (l *listener) serve() {
	defer close(l.done)
	var delay time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http's server does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		select {
		case l.sem <- struct{}{}:
		default:
			reset(c) // over the limit: refuse at once rather than leave the client waiting
			continue
		}
		set := l.backends.Load()
		if len(set.addrs) == 0 {
			<-l.sem
			reset(c) // no ready endpoint: the client sees a reset now, never a hang
			continue
		}
		if !l.conns.run(func(ctx context.Context) {
			defer func() { <-l.sem }()
			l.forward(ctx, c, set)
		}) {
			<-l.sem
			reset(c)
		}
	}
}

// forward dials a backend (the next in round robin, then others if dials fail and
// dialAttempts allows) and splices the two connections.
func (l *listener) forward(ctx context.Context, client *net.TCPConn, set *backendSet) {
	d := net.Dialer{Timeout: l.dialTimeout}
	first := set.start()
	for i := range min(len(set.addrs), l.dialAttempts) {
		c, err := d.DialContext(ctx, "tcp4", set.at(first, i).String())
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			continue
		}
		backend := c.(*net.TCPConn)
		if !l.conns.add(client, backend) {
			backend.Close()
			break
		}
		splice(client, backend)
		l.conns.remove(client, backend)
		return
	}
	reset(client)
}

// reset closes c with a TCP RST instead of a FIN, so the client fails at once.
func reset(c *net.TCPConn) {
	_ = c.SetLinger(0)
	c.Close()
}

// connTracker runs connection handlers and remembers open connections so Stop can close
// them and wait for every handler.
type connTracker struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	open   map[*net.TCPConn]struct{}
}

func newConnTracker() *connTracker {
	ctx, cancel := context.WithCancel(context.Background())
	return &connTracker{ctx: ctx, cancel: cancel, open: map[*net.TCPConn]struct{}{}}
}

// run starts f in a goroutine unless the tracker is closed.
func (t *connTracker) run(f func(context.Context)) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Go(func() { f(t.ctx) })
	return true
}

func (t *connTracker) add(cs ...*net.TCPConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	for _, c := range cs {
		t.open[c] = struct{}{}
	}
	return true
}

func (t *connTracker) remove(cs ...*net.TCPConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cs {
		delete(t.open, c)
	}
}

// count is the number of open connections (both sides counted).
func (t *connTracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open)
}

// close closes every open connection, cancels dials and waits for all handlers.
func (t *connTracker) close() {
	t.mu.Lock()
	t.closed = true
	t.cancel()
	for c := range t.open {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}
