package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// A relaying listener holds at most MaxStreamConns connections: one more
// is closed at accept and counted, and a place frees when a connection
// ends. The collector reports open connections, accepted and refused ones
// and the bytes relayed each way, labelled by listener.
func TestStreamConnectionLimitAndMetrics(t *testing.T) {
	echo := tcpEcho(t, "echo")
	l := httpListener("tcp", ir.VirtualHost{Name: "default/gw/tcp", Routes: []ir.Route{prefixRoute("tcproute/default/echo/rule/0", "/", echo)}})
	l.Protocol = ir.ProtocolTCP
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{MaxStreamConns: 2})
	addr := p.Addr("tcp").String()
	open := func() (net.Conn, *bufio.Reader, error) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil, nil, err
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		greeting, err := br.ReadString('\n')
		if err == nil && greeting != "echo\n" {
			err = fmt.Errorf("greeting %q", greeting)
		}
		return c, br, err
	}
	var held []net.Conn
	for i := range 2 {
		c, _, err := open()
		if err != nil {
			t.Fatalf("connection %d within the limit: %v", i, err)
		}
		held = append(held, c)
	}
	if _, _, err := open(); err == nil {
		t.Fatal("a third connection was relayed with MaxStreamConns 2")
	}
	// One ends; its place is free again.
	fmt.Fprint(held[0], "ping")
	held[0].(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(bufio.NewReader(held[0])); err != nil || string(rest) != "ping" {
		t.Fatalf("echo %q, %v", rest, err)
	}
	held[0].Close()
	var err error
	for range 100 { // the relay notices the close and frees the place
		if _, _, err = open(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no connection relayed after one of two ended: %v", err)
	}

	name := "tcp" // the IR listener's name
	metric := func(name string, labels ...string) float64 { return gathered(t, p.reg, name, labels...) }
	if got := metric("rauta_stream_connections", "listener", name); got != 2 {
		t.Errorf("open connections %v, want 2", got)
	}
	if got := metric("rauta_stream_connections_total", "listener", name); got < 3 {
		t.Errorf("accepted %v, want 3 at least", got)
	}
	if got := metric("rauta_stream_connections_refused_total", "listener", name); got < 1 {
		t.Errorf("refused %v, want 1 at least", got)
	}
	if got := metric("rauta_stream_bytes_total", "listener", name, "direction", "received"); got != 4 {
		t.Errorf("bytes received from clients %v, want 4 (ping)", got)
	}
	if got := metric("rauta_stream_bytes_total", "listener", name, "direction", "sent"); got < 3*5+4 {
		t.Errorf("bytes sent to clients %v, want three greetings and the echo", got)
	}
}
