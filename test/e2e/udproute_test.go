package e2e

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/freeport"
	"github.com/false-systems/rauta/internal/poll"
)

// udpServiceYAML is a Service with one UDP port 53 whose endpoint is
// 127.0.0.1:endpointPort (UDP).
func udpServiceYAML(name string, endpointPort int) string {
	return fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
  namespace: default
spec:
  ports:
  - name: dns
    port: 53
    protocol: UDP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s
  namespace: default
  labels:
    kubernetes.io/service-name: %[1]s
addressType: IPv4
ports:
- name: dns
  port: %[2]d
  protocol: UDP
endpoints:
- addresses: ["127.0.0.1"]
`, name, endpointPort)
}

// A UDPRoute served by `rauta run -f`: datagrams reach the UDP backend and
// its answers come back from the gateway's address. A TCP listener on the
// same port serves a TCPRoute beside it (DNS over both).
func TestUDPRoute(t *testing.T) {
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcpLn.Close() })
	go func() {
		for {
			c, err := tcpLn.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "tcp answer")
			c.Close()
		}
	}()
	backend, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := backend.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			backend.WriteToUDPAddrPort(fmt.Appendf(nil, "got %q", buf[:n]), from)
		}
	}()
	port := freeUDPPort(t)
	manifests := gatewayYAML("gw", listenerSpec{name: "dns", port: port, protocol: "UDP"}, listenerSpec{name: "dns-tcp", port: port, protocol: "TCP"}) +
		udpServiceYAML("resolver", backend.LocalAddr().(*net.UDPAddr).Port) +
		kindRouteYAML("UDPRoute", "dns", nil, "  - backendRefs:\n    - name: resolver\n      port: 53\n") +
		serviceYAML("resolver-tcp", tcpLn.Addr().(*net.TCPAddr).Port) +
		kindRouteYAML("TCPRoute", "dns-tcp", nil, catchAll("resolver-tcp"))
	startGateway(t, map[string]string{"all.yaml": manifests})

	conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 2048)
	var got string
	// The gateway may still be binding: a datagram sent before is lost, as
	// on any network, so the client asks again.
	poll.Require(t, 10*time.Second, "a UDP answer through the gateway", func() bool {
		conn.Write([]byte("query"))
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(buf)
		got = string(buf[:max(n, 0)])
		return err == nil
	})
	if got != `got "query"` {
		t.Fatalf("answer %q", got)
	}
	tc, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		t.Fatalf("the TCP listener on the UDP listener's port: %v", err)
	}
	defer tc.Close()
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(tc); err != nil || string(b) != "tcp answer" {
		t.Fatalf("TCP answer %q, %v", b, err)
	}
}

func freeUDPPort(t testing.TB) int {
	t.Helper()
	// The port serves TCP too, so it must not come from the ephemeral
	// range, where any parallel test's outgoing connection can take it
	// before the gateway binds it (CI failed once on exactly that).
	p, err := freeport.PortTCPAndUDP()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
