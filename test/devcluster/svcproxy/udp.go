package svcproxy

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// udpListener forwards the datagrams of one UDP frontend address, as kube-proxy does for a
// UDP Service port: each client address (a flow) gets an endpoint, round robin, and a
// connected socket to it; the endpoint's replies go back to the client from the frontend
// address. A flow ends after idle without a datagram either way. At most maxFlows flows are
// held; a datagram that would start one more is dropped, as a full conntrack table would.
type udpListener struct {
	conn     *net.UDPConn
	backends atomic.Pointer[backendSet]
	idle     time.Duration
	maxFlows int

	mu     sync.Mutex
	flows  map[netip.AddrPort]*udpFlow
	closed bool
	wg     sync.WaitGroup // the read loop and every flow's reply loop
}

type udpFlow struct {
	client netip.AddrPort
	up     *net.UDPConn
	last   atomic.Int64 // unix nanoseconds of the last datagram either way
}

// maxDatagram is the largest UDP payload (65,507 bytes over IPv4) rounded up.
const maxDatagram = 64 << 10

func listenUDP(addr netip.AddrPort, maxFlows int, idle time.Duration) (*udpListener, error) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	l := &udpListener{conn: conn, idle: idle, maxFlows: maxFlows, flows: map[netip.AddrPort]*udpFlow{}}
	l.backends.Store(&backendSet{})
	l.wg.Add(1)
	go l.serve()
	return l, nil
}

// setBackends applies to flows started from now on; an unchanged list keeps its round-robin
// position.
func (l *udpListener) setBackends(addrs []netip.AddrPort) {
	if cur := l.backends.Load(); slices.Equal(cur.addrs, addrs) {
		return
	}
	l.backends.Store(&backendSet{addrs: slices.Clone(addrs)})
}

// close stops the listener and every flow and waits for their goroutines.
func (l *udpListener) close() error {
	l.mu.Lock()
	l.closed = true
	for _, f := range l.flows {
		f.up.Close()
	}
	l.mu.Unlock()
	err := l.conn.Close()
	l.wg.Wait()
	return err
}

func (l *udpListener) serve() {
	defer l.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, client, err := l.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		f := l.flow(client)
		if f == nil {
			continue // dropped: no endpoint, or the flow table is full
		}
		f.last.Store(time.Now().UnixNano())
		_, _ = f.up.Write(buf[:n]) // a datagram the endpoint refuses is lost, as on a network
	}
}

// flow returns client's flow, starting one if there is room and an endpoint.
func (l *udpListener) flow(client netip.AddrPort) *udpFlow {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.flows[client]; f != nil {
		return f
	}
	set := l.backends.Load()
	if l.closed || len(set.addrs) == 0 || len(l.flows) >= l.maxFlows {
		return nil
	}
	up, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(set.at(set.start(), 0)))
	if err != nil {
		return nil
	}
	f := &udpFlow{client: client, up: up}
	f.last.Store(time.Now().UnixNano())
	l.flows[client] = f
	l.wg.Add(1)
	go l.replies(f)
	return f
}

// replies sends the endpoint's datagrams to the client until the flow is idle, the endpoint
// refuses, or the listener closes.
func (l *udpListener) replies(f *udpFlow) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		if l.flows[f.client] == f {
			delete(l.flows, f.client)
		}
		l.mu.Unlock()
		f.up.Close()
	}()
	buf := make([]byte, maxDatagram)
	for {
		_ = f.up.SetReadDeadline(time.Unix(0, f.last.Load()).Add(l.idle))
		n, err := f.up.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, f.last.Load())) < l.idle {
				continue // the client wrote since the deadline was set
			}
			return
		}
		f.last.Store(time.Now().UnixNano())
		_, _ = l.conn.WriteToUDPAddrPort(buf[:n], f.client)
	}
}

// flowCount is the number of open flows.
func (l *udpListener) flowCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.flows)
}
