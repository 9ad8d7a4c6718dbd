package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// tlsEcho is an HTTPS backend with its own certificate for names, issued by
// ca: a passthrough client verifies it, which proves the gateway did not
// terminate TLS.
func tlsEcho(t *testing.T, ca *testCA, name string, names ...string) int {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, time.Now().UnixNano(), names...)
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.TLS.ServerName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// TestTLSRoutePassthrough serves TLSRoutes through `rauta run -f`: a TLS
// listener in Passthrough mode beside an HTTP listener, routes chosen by
// the ClientHello's server name (an exact route before a wildcard one),
// the backend's own certificate verified end to end by the client, and
// names no route takes refused.
func TestTLSRoutePassthrough(t *testing.T) {
	ca := newCA(t)
	alpha := tlsEcho(t, ca, "alpha", "a.example.com")
	beta := tlsEcho(t, ca, "beta", "*.example.com")
	tlsPort, httpPort := freePort(t), freePort(t)
	web := startBackend(t, "web")
	manifests := gatewayYAML("gw",
		listenerSpec{name: "http", port: httpPort, protocol: "HTTP"}) +
		fmt.Sprintf("  - name: tls\n    port: %d\n    protocol: TLS\n    hostname: \"*.example.com\"\n    tls:\n      mode: Passthrough\n", tlsPort) +
		serviceYAML("alpha", alpha) + serviceYAML("beta", beta) + servicesYAML(web) +
		kindRouteYAML("TLSRoute", "alpha", []string{"a.example.com"}, catchAll("alpha")) +
		kindRouteYAML("TLSRoute", "rest", []string{"*.example.com"}, catchAll("beta")) +
		routeYAML("web", nil, catchAll("web"))
	g := startGateway(t, map[string]string{"all.yaml": manifests})

	get := func(sni string) (string, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: sni, RootCAs: ca.pool},
			// A relayed connection lives until its client closes it (or
			// the shutdown timeout): keep none open past the test.
			DisableKeepAlives: true,
			// The backend's name, through the gateway's address.
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(tlsPort))
			},
		}}
		res, err := c.Get("https://" + sni + "/")
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return string(b), err
	}
	for sni, want := range map[string]string{
		"a.example.com": "alpha a.example.com",
		"b.example.com": "beta b.example.com",
	} {
		got, err := get(sni)
		if err != nil || got != want {
			t.Errorf("SNI %s: %q, %v; want %q", sni, got, err, want)
		}
	}
	if got, err := get("example.org"); err == nil {
		t.Errorf("SNI example.org (no listener or route takes it): served %q", got)
	}
	// The HTTP listener beside it serves as before.
	res, err := http.Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("HTTP listener: %d", res.StatusCode)
	}
	// Status: both TLSRoutes accepted on the TLS listener.
	_, status := g.adminGet("/status")
	var st struct {
		TLSRoutes []struct {
			Name   string
			Status struct {
				Parents []struct {
					Conditions []struct{ Type, Status, Reason string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, r := range st.TLSRoutes {
		for _, p := range r.Status.Parents {
			for _, c := range p.Conditions {
				if c.Type == "Accepted" && c.Status == "True" {
					accepted++
				}
			}
		}
	}
	if len(st.TLSRoutes) != 2 || accepted != 2 {
		t.Errorf("status does not show both TLSRoutes accepted:\n%s", status)
	}
}

// TestTCPRoute relays a TCP listener's connections through `rauta run -f`
// to the TCPRoute's backend, both directions and the half-close.
func TestTCPRoute(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				fmt.Fprintf(c, "got %q", b)
			}()
		}
	}()
	port := freePort(t)
	manifests := gatewayYAML("gw", listenerSpec{name: "db", port: port, protocol: "TCP"}) +
		serviceYAML("raw", ln.Addr().(*net.TCPAddr).Port) +
		kindRouteYAML("TCPRoute", "raw", nil, catchAll("raw"))
	startGateway(t, map[string]string{"all.yaml": manifests})

	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "select 1")
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != `got "select 1"` {
		t.Fatalf("relayed %q, %v", got, err)
	}
}
