package mesh

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/mesh"
)

// The child is this test binary started with childOp set: it does one
// client operation inside the test's cgroup and prints what it saw as
// JSON lines.
const (
	childOp    = "RAUTA_MESH_TEST_CHILD"
	childAddr  = "RAUTA_MESH_TEST_ADDR"
	childCount = "RAUTA_MESH_TEST_COUNT"
	// childSource is the local address the "http" op binds (a client
	// pod's address); childHeader is "name: value" it sends.
	childSource = "RAUTA_MESH_TEST_SOURCE"
	childHeader = "RAUTA_MESH_TEST_HEADER"
)

// result is one client operation as the child saw it.
type result struct {
	Name   string // the server's name (its first line or UDP reply)
	Peer   string // getpeername, or the source of the UDP reply
	Local  string // getsockname
	Cookie uint64 // SO_COOKIE of the client socket
	Errno  string // ECONNREFUSED, ETIMEDOUT, ...: the syscall error
	Err    string // any other failure
}

func TestMain(m *testing.M) {
	if op := os.Getenv(childOp); op != "" {
		os.Exit(child(op, os.Getenv(childAddr), os.Getenv(childCount)))
	}
	os.Exit(m.Run())
}

func child(op, addr, count string) int {
	n, _ := strconv.Atoi(count)
	n = max(n, 1)
	enc := json.NewEncoder(os.Stdout)
	switch op {
	case "tcp":
		for range n {
			r, c := dialTCP(addr)
			if c != nil {
				c.Close()
			}
			_ = enc.Encode(r)
		}
	case "hold":
		// Connect, report, wait for a line on stdin, then prove the
		// connection still carries data and still shows the ClusterIP.
		r, c := dialTCP(addr)
		_ = enc.Encode(r)
		if c == nil {
			return 0
		}
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		r2 := result{Cookie: r.Cookie}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			r2.Err = err.Error()
		} else if line, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			r2.Err = err.Error()
		} else {
			r2.Name = line[:len(line)-1]
			r2.Peer, r2.Local = names(c)
		}
		_ = enc.Encode(r2)
	case "udp":
		for range n {
			_ = enc.Encode(sendUDP(addr))
		}
	case "udp-connected":
		for range n {
			_ = enc.Encode(connectedUDP(addr, true))
		}
	case "connect-loop":
		// n connects and closes, timed as a whole: the cost of a connect
		// through the programs (or without them, to a direct address).
		start := time.Now()
		var r result
		for range n {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				failure(&r, err)
				break
			}
			c.Close()
		}
		r.Name = strconv.FormatInt(time.Since(start).Nanoseconds()/int64(n), 10)
		_ = enc.Encode(r)
	case "http":
		for range n {
			_ = enc.Encode(httpGet(addr, os.Getenv(childSource), os.Getenv(childHeader), false))
		}
	case "h2c":
		_ = enc.Encode(httpGet(addr, os.Getenv(childSource), os.Getenv(childHeader), true))
	case "http-loop":
		// n GET requests, timed as a whole: on one keep-alive connection,
		// or (childHeader "Connection: close") a connection each.
		start := time.Now()
		r := httpLoop(addr, n, os.Getenv(childHeader) != "")
		r.Name = strconv.FormatInt(time.Since(start).Nanoseconds()/int64(n), 10)
		_ = enc.Encode(r)
	case "echo-post":
		size, _ := strconv.Atoi(os.Getenv(childSize))
		rounds, _ := strconv.Atoi(os.Getenv(childRounds))
		for _, r := range echoPosts(addr, os.Getenv(childSource), n, max(rounds, 1), size, os.Getenv(childHeader) != "") {
			_ = enc.Encode(r)
		}
	case "post-loop":
		size, _ := strconv.Atoi(os.Getenv(childSize))
		_ = enc.Encode(postLoop(addr, n, size, os.Getenv(childHeader) != ""))
	case "tcp6-mapped":
		_ = enc.Encode(dialMapped(addr))
	case "udp-connect-only":
		_ = enc.Encode(connectedUDP(addr, false))
	default:
		fmt.Fprintln(os.Stderr, "unknown child op", op)
		return 2
	}
	return 0
}

func failure(r *result, err error) {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		r.Errno = unix.ErrnoName(errno)
		return
	}
	r.Err = err.Error()
}

func dialTCP(addr string) (result, net.Conn) {
	var r result
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		failure(&r, err)
		return r, nil
	}
	r.Cookie, _ = mesh.SocketCookie(c.(*net.TCPConn))
	r.Peer, r.Local = names(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		failure(&r, err)
		return r, c
	}
	r.Name = line[:len(line)-1]
	return r, c
}

// names are getpeername and getsockname asked of the kernel now (the net
// package remembers the addresses of the connect).
func names(c net.Conn) (peer, local string) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return "", ""
	}
	_ = rc.Control(func(fd uintptr) {
		if sa, err := unix.Getpeername(int(fd)); err == nil {
			peer = sockaddr(sa)
		}
		if sa, err := unix.Getsockname(int(fd)); err == nil {
			local = sockaddr(sa)
		}
	})
	return peer, local
}

func sockaddr(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return fmt.Sprint(sa)
}

// sendUDP sends from an unconnected socket and reports where the reply
// came from.
func sendUDP(addr string) result {
	var r result
	dst, err := netip.ParseAddrPort(addr)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	network := "udp4"
	if dst.Addr().Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		failure(&r, err)
		return r
	}
	defer c.Close()
	r.Cookie, _ = mesh.SocketCookie(c)
	if _, err := c.WriteToUDPAddrPort([]byte("hello"), dst); err != nil {
		failure(&r, err)
		return r
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		failure(&r, err)
		return r
	}
	r.Name = string(buf[:n])
	r.Peer = netip.AddrPortFrom(from.Addr().Unmap(), from.Port()).String()
	return r
}

// connectedUDP connects a UDP socket (no datagram) and, with send, does
// one round trip on it.
func connectedUDP(addr string, send bool) result {
	var r result
	c, err := net.Dial("udp", addr)
	if err != nil {
		failure(&r, err)
		return r
	}
	defer c.Close()
	r.Cookie, _ = mesh.SocketCookie(c.(*net.UDPConn))
	r.Peer, r.Local = names(c)
	if !send {
		return r
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		failure(&r, err)
		return r
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		failure(&r, err)
		return r
	}
	r.Name = string(buf[:n])
	return r
}

// dialMapped connects an IPv6 socket (dual stack, IPV6_V6ONLY off) to a
// v4-mapped address, with raw system calls: the net package would use an
// IPv4 socket.
func dialMapped(addr string) result {
	var r result
	dst, err := netip.ParseAddrPort(addr)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		failure(&r, err)
		return r
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
		failure(&r, err)
		return r
	}
	tv := unix.Timeval{Sec: 5}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Connect(fd, &unix.SockaddrInet6{Addr: dst.Addr().As16(), Port: int(dst.Port())}); err != nil {
		failure(&r, err)
		return r
	}
	r.Cookie, _ = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if sa, err := unix.Getpeername(fd); err == nil {
		r.Peer = sockaddr(sa)
	}
	buf := make([]byte, 64)
	n, err := unix.Read(fd, buf)
	if err != nil {
		failure(&r, err)
		return r
	}
	if n > 0 && buf[n-1] == '\n' {
		n--
	}
	r.Name = string(buf[:n])
	return r
}

// httpLoop sends n requests to addr and reads their responses, through
// net/http's client with keep-alive (or without, newConn).
func httpLoop(addr string, n int, newConn bool) result {
	var r result
	tr := &http.Transport{DisableKeepAlives: newConn, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for range n {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			failure(&r, err)
			return r
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			r.Err = fmt.Sprintf("status %d, %v", resp.StatusCode, err)
			return r
		}
	}
	return r
}

// httpGet sends one GET / to addr from the address source, with header
// ("Name: value"), on a connection of its own: HTTP/1.1, or with h2c
// HTTP/2 in clear text with prior knowledge. Name is "STATUS BODY", with
// h2c "STATUS PROTO BODY".
func httpGet(addr, source, header string, h2c bool) result {
	var r result
	d := net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	protocols := new(http.Protocols)
	if h2c {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: protocols, DisableKeepAlives: true, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, a)
		if err == nil {
			r.Peer, r.Local = names(c)
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	if name, value, ok := strings.Cut(header, ": "); ok {
		req.Header.Set(name, value)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		failure(&r, err)
		return r
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		failure(&r, err)
		return r
	}
	r.Name = strconv.Itoa(resp.StatusCode) + " "
	if h2c {
		r.Name += resp.Proto + " "
	}
	r.Name += strings.TrimSpace(string(body))
	return r
}
