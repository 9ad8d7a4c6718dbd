package proxy

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/router"
)

// UDP listeners (ir.ProtocolUDP) serve UDPRoutes by relaying datagrams.
// A flow is one client address (IP and port): its first datagram picks a
// backend of the first route by weight and an endpoint by the Service's
// balancer (Maglev hashes the client address, so a client keeps its
// endpoint across flows), and dials a connected UDP socket to it. The
// flow's datagrams go out on that socket; what the endpoint answers comes
// back on it and is sent to the client from the listener's socket, so the
// client sees replies from the address it wrote to. A flow ends after
// Options.UDPIdleTimeout without a datagram either way, when the endpoint
// refuses (ICMP port unreachable: the endpoint is ejected and the client's
// next datagram starts a new flow), or when the listener closes.
//
// Nothing queues: a datagram that cannot be sent at once (the socket's
// buffer is full, the backend is unreachable) is dropped and counted, as a
// network would drop it. A listener holds at most Options.MaxUDPFlows
// flows; a datagram that would start one more is dropped and counted.
// Each flow costs a socket (a file descriptor) and a goroutine that holds
// a receive buffer only while a datagram is being relayed.

// transport is the socket type a listener binds: a UDP socket and a TCP
// one may share an address and port.
func transport(p ir.Protocol) string {
	if p == ir.ProtocolUDP {
		return "udp"
	}
	return "tcp"
}

// udpMaxDatagram is the largest datagram relayed: the largest UDP payload
// (65,507 bytes over IPv4) fits.
const udpMaxDatagram = 64 << 10

// udpBuffers holds the flows' receive buffers between datagrams.
var udpBuffers = sync.Pool{New: func() any { b := make([]byte, udpMaxDatagram); return &b }}

// Reasons a datagram is dropped (rauta_udp_datagrams_dropped_total).
const (
	udpDropFlowLimit = iota // it would start a flow beyond MaxUDPFlows
	udpDropNoRoute          // no route, an invalid backend or no ready endpoint
	udpDropBackend          // sending to the backend failed
	udpDropClient           // sending the reply to the client failed
	udpDropReasons
)

var udpDropReasonNames = [udpDropReasons]string{"flow_limit", "no_route", "backend_send", "client_send"}

// udpSocket is a UDP listener's socket and flow table.
type udpSocket struct {
	conn     *net.UDPConn
	raw      syscall.RawConn
	maxFlows int
	idle     time.Duration

	mu     sync.Mutex
	flows  map[netip.AddrPort]*udpFlow
	closed bool
	// running counts the flows' reply goroutines.
	running sync.WaitGroup

	// Counters, exported by udpCollector.
	flowsTotal, flowsRefused atomic.Uint64
	dropped                  [udpDropReasons]atomic.Uint64
	received, sent           atomic.Uint64 // bytes from and to clients
}

// udpFlow is one client address and its socket to an endpoint.
type udpFlow struct {
	client netip.AddrPort
	up     *net.UDPConn
	// toBackend is used by the listener's read loop only; fromBackend
	// and toClient by the flow's goroutine only.
	toBackend, fromBackend, toClient *rawIO
	b                                *router.Backend
	ep                               *lb.Endpoint
	last                             atomic.Int64 // unix nanoseconds of the last datagram either way
}

func (fl *udpFlow) touch() { fl.last.Store(time.Now().UnixNano()) }

// bindUDP opens a UDP listener's socket.
func (s *Server) bindUDP(addr string, lc *listenerConfig) (*socket, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	sock := &socket{protocol: lc.protocol, udp: &udpSocket{
		conn: conn, raw: raw, maxFlows: s.opts.MaxUDPFlows, idle: s.opts.UDPIdleTimeout,
		flows: map[netip.AddrPort]*udpFlow{},
	}}
	sock.cfg.Store(lc)
	return sock, nil
}

// serveUDP reads the listener's datagrams until its socket closes. One
// goroutine reads them all, so flows are created in one place.
func (s *Server) serveUDP(sock *socket) error {
	us := sock.udp
	buf := make([]byte, udpMaxDatagram)
	var delay time.Duration
	for {
		n, client, err := us.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of memory for socket buffers and the like: back off as
			// the accept loops do.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.opts.Logger.Warn("udp read failed; retrying", "addr", us.conn.LocalAddr().String(), "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		us.received.Add(uint64(n))
		us.mu.Lock()
		fl := us.flows[client]
		us.mu.Unlock()
		if fl == nil {
			if fl = s.newUDPFlow(sock, client); fl == nil {
				continue
			}
		}
		fl.touch()
		err = fl.toBackend.send(buf[:n])
		if errors.Is(err, net.ErrClosed) {
			// The flow ended (idle, refused) between the lookup and the
			// send: this datagram starts the next one.
			us.forget(fl)
			if fl = s.newUDPFlow(sock, client); fl == nil {
				continue
			}
			err = fl.toBackend.send(buf[:n])
		}
		if err != nil {
			us.dropped[udpDropBackend].Add(1)
			if errors.Is(err, syscall.ECONNREFUSED) {
				s.udpRefused(fl)
			}
		}
	}
}

// newUDPFlow routes a new client address to an endpoint and starts relaying
// its replies; nil when the datagram is dropped (and counted).
func (s *Server) newUDPFlow(sock *socket, client netip.AddrPort) *udpFlow {
	us := sock.udp
	us.mu.Lock()
	full := len(us.flows) >= us.maxFlows
	us.mu.Unlock()
	if full {
		us.flowsRefused.Add(1)
		us.dropped[udpDropFlowLimit].Add(1)
		return nil
	}
	lc := sock.cfg.Load()
	log := s.opts.Logger
	rreq := router.Request{Path: "/", Method: "GET", ClientIP: client.Addr().Unmap().String()}
	rt := lc.table.Match(&rreq)
	if rt == nil {
		log.Debug("udp: no route", "listener", lc.name)
		us.dropped[udpDropNoRoute].Add(1)
		return nil
	}
	b := rt.PickBackend(rand.Uint64())
	if b == nil || b.Invalid {
		// The spec: an invalid backend's share of traffic is rejected.
		log.Debug("udp: backend invalid", "route", rt.Name)
		us.dropped[udpDropNoRoute].Add(1)
		return nil
	}
	ep := b.Pick(&rreq)
	if ep == nil {
		log.Debug("udp: backend has no ready endpoint", "route", rt.Name, "backend", b.Name)
		us.dropped[udpDropNoRoute].Add(1)
		return nil
	}
	target, err := netip.ParseAddrPort(ep.Addr)
	var up *net.UDPConn
	if err == nil {
		// A connected socket: the kernel passes on only the endpoint's
		// datagrams, and reports its ICMP errors.
		up, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target))
	}
	var upRaw syscall.RawConn
	if err == nil {
		if upRaw, err = up.SyscallConn(); err != nil {
			up.Close()
		}
	}
	if err != nil {
		s.metrics.connectErrors.WithLabelValues(b.Name).Inc()
		log.Debug("udp: cannot open a socket to the endpoint", "route", rt.Name, "endpoint", ep.Addr, "err", err)
		us.dropped[udpDropBackend].Add(1)
		return nil
	}
	fl := &udpFlow{client: client, up: up, b: b, ep: ep,
		toBackend: newRawIO(upRaw, nil), fromBackend: newRawIO(upRaw, nil), toClient: newRawIO(us.raw, sockaddr(client))}
	fl.touch()
	ep.Acquire()
	us.mu.Lock()
	if us.closed {
		us.mu.Unlock()
		up.Close()
		ep.Release()
		return nil
	}
	us.flows[client] = fl
	us.running.Add(1)
	us.mu.Unlock()
	us.flowsTotal.Add(1)
	go s.udpReplies(us, fl)
	return fl
}

// udpReplies relays the endpoint's datagrams to the client until the flow
// is idle for UDPIdleTimeout, the endpoint refuses, or the socket closes.
func (s *Server) udpReplies(us *udpSocket, fl *udpFlow) {
	defer us.remove(fl)
	for {
		fl.up.SetReadDeadline(time.Unix(0, fl.last.Load()).Add(us.idle)) //nolint:errcheck // the read reports it
		buf, n, err := fl.fromBackend.read()
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				if time.Since(time.Unix(0, fl.last.Load())) < us.idle {
					continue // the client wrote since the deadline was set
				}
			case errors.Is(err, syscall.ECONNREFUSED):
				s.udpRefused(fl)
			}
			return
		}
		fl.touch()
		err = fl.toClient.send((*buf)[:n])
		udpBuffers.Put(buf)
		if err != nil {
			us.dropped[udpDropClient].Add(1)
			continue
		}
		us.sent.Add(uint64(n))
	}
}

// udpRefused ends a flow whose endpoint answered ICMP port unreachable and
// ejects the endpoint (passive health): the client's next datagram starts
// a new flow, on another endpoint when there is one.
func (s *Server) udpRefused(fl *udpFlow) {
	if fl.b.Eject(fl.ep) {
		s.metrics.ejections.WithLabelValues(fl.b.Name).Inc()
	}
	fl.up.Close() // udpReplies sees the close and removes the flow
}

// forget takes fl out of the table, if it is still there.
func (us *udpSocket) forget(fl *udpFlow) {
	us.mu.Lock()
	if us.flows[fl.client] == fl {
		delete(us.flows, fl.client)
	}
	us.mu.Unlock()
}

// remove takes fl out of the table and frees what it holds.
func (us *udpSocket) remove(fl *udpFlow) {
	us.forget(fl)
	fl.up.Close()
	fl.ep.Release()
	us.running.Done()
}

func (us *udpSocket) len() int {
	us.mu.Lock()
	defer us.mu.Unlock()
	return len(us.flows)
}

// close closes the listener's socket and every flow's, and returns how
// many flows that cut. Their goroutines end at once; wait for them with
// us.running.
func (us *udpSocket) close() int {
	us.mu.Lock()
	us.closed = true
	n := len(us.flows)
	for _, fl := range us.flows {
		fl.up.Close()
	}
	us.mu.Unlock()
	us.conn.Close()
	return n
}

// rawIO is one goroutine's reads or sends on a socket, through callbacks
// made once, so relaying a datagram allocates nothing. Each flow has three:
// to the backend (the listener's read loop), from the backend and to the
// client (the flow's goroutine).
type rawIO struct {
	rc syscall.RawConn
	sa unix.Sockaddr // sendto's target; nil sends to the connected peer
	// The operation in progress.
	b      []byte
	buf    *[]byte
	n      int
	err    error
	readFn func(uintptr) bool
	sendFn func(uintptr) bool
}

func newRawIO(rc syscall.RawConn, sa unix.Sockaddr) *rawIO {
	o := &rawIO{rc: rc, sa: sa}
	o.readFn, o.sendFn = o.readOnce, o.sendOnce
	return o
}

// read reads one datagram into a pooled buffer, taken only once the
// socket is readable, so an idle flow holds no buffer.
func (o *rawIO) read() (*[]byte, int, error) {
	o.buf, o.n, o.err = nil, 0, nil
	err := o.rc.Read(o.readFn)
	if err == nil {
		err = o.err
	}
	buf, n := o.buf, o.n
	o.buf = nil
	if err != nil {
		if buf != nil {
			udpBuffers.Put(buf)
		}
		return nil, 0, err
	}
	return buf, n, nil
}

func (o *rawIO) readOnce(fd uintptr) bool {
	b := udpBuffers.Get().(*[]byte)
	for {
		o.n, o.err = unix.Read(int(fd), *b)
		if !errors.Is(o.err, unix.EINTR) {
			break
		}
	}
	if errors.Is(o.err, unix.EAGAIN) {
		udpBuffers.Put(b)
		return false // wait until readable
	}
	o.buf = b
	return true
}

// send makes one non-blocking attempt to send b: a full socket buffer
// drops the datagram (EAGAIN) rather than holding the caller.
func (o *rawIO) send(b []byte) error {
	o.b, o.err = b, nil
	err := o.rc.Write(o.sendFn)
	o.b = nil
	if err != nil {
		return err
	}
	return o.err
}

func (o *rawIO) sendOnce(fd uintptr) bool {
	for {
		if o.sa == nil {
			_, o.err = unix.Write(int(fd), o.b)
		} else {
			o.err = unix.Sendto(int(fd), o.b, 0, o.sa)
		}
		if !errors.Is(o.err, unix.EINTR) {
			return true
		}
	}
}

// sockaddr is a client address as the listener socket reported it: an
// IPv4 socket gives IPv4 addresses, a dual-stack IPv6 one IPv6 (IPv4
// clients mapped), and replies go back in the same family.
func sockaddr(a netip.AddrPort) unix.Sockaddr {
	if a.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}
