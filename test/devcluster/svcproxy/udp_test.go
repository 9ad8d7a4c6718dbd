package svcproxy

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// udpBackend answers each datagram with "name:payload".
func udpBackend(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte(name+":"), buf[:n]...), from)
		}
	}()
	return netip.MustParseAddrPort(c.LocalAddr().String())
}

func startUDPListener(t *testing.T, maxFlows int, idle time.Duration, backends ...netip.AddrPort) *udpListener {
	t.Helper()
	l, err := listenUDP(netip.MustParseAddrPort("127.0.0.1:0"), maxFlows, idle)
	if err != nil {
		t.Fatal(err)
	}
	l.setBackends(backends)
	t.Cleanup(func() { l.close() })
	return l
}

func udpAsk(t *testing.T, l *udpListener, c *net.UDPConn, payload string) (string, error) {
	t.Helper()
	if c == nil {
		var err error
		if c, err = net.DialUDP("udp4", nil, l.conn.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if _, err := c.Write([]byte(payload)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// Flows go round robin to the endpoints and keep theirs; replies come back from the
// frontend address (a connected client accepts nothing else).
func TestUDPListenerRoundRobinFlows(t *testing.T) {
	a, b := udpBackend(t, "a"), udpBackend(t, "b")
	l := startUDPListener(t, 16, time.Minute, a, b)
	seen := map[string]int{}
	for i := range 4 {
		got, err := udpAsk(t, l, nil, fmt.Sprint(i))
		if err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
		seen[got[:1]]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Errorf("flows per endpoint %v, want 2 and 2", seen)
	}
	c, err := net.DialUDP("udp4", nil, l.conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, err := udpAsk(t, l, c, "x")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if again, err := udpAsk(t, l, c, "x"); err != nil || again != first {
			t.Fatalf("a flow moved: %q then %q, %v", first, again, err)
		}
	}
}

// A full flow table drops new flows; an idle flow is freed within the timeout and slack.
func TestUDPListenerFlowLimitAndIdle(t *testing.T) {
	a := udpBackend(t, "a")
	const idle = 200 * time.Millisecond
	l := startUDPListener(t, 1, idle, a)
	c, err := net.DialUDP("udp4", nil, l.conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := udpAsk(t, l, c, "one"); err != nil {
		t.Fatal(err)
	}
	other, err := net.DialUDP("udp4", nil, l.conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.Write([]byte("over"))
	other.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := other.Read(make([]byte, 10)); err == nil {
		t.Fatal("a second flow was served with a limit of one")
	}
	deadline := time.Now().Add(idle + 5*time.Second)
	for l.flowCount() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := l.flowCount(); n != 0 {
		t.Fatalf("%d flows left after the idle timeout", n)
	}
	if got, err := udpAsk(t, l, other, "now"); err != nil || got != "a:now" {
		t.Fatalf("after the idle flow ended: %q, %v", got, err)
	}
}
