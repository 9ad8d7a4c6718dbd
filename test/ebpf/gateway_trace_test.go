package ebpf

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/false-systems/rauta/internal/observe"
	"github.com/false-systems/rauta/internal/tracecontext"
)

// gatewayManifests: one HTTP listener on port, every path to a Service
// whose one endpoint is backend (ip:port), spoken to with appProtocol
// ("": HTTP/1.1; kubernetes.io/h2c: HTTP/2 in clear text).
func gatewayManifests(port int, backendIP string, backendPort int, appProtocol string) string {
	app := ""
	if appProtocol != "" {
		app = "\n    appProtocol: " + appProtocol
	}
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: rauta
spec:
  controllerName: rauta.io/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
spec:
  gatewayClassName: rauta
  listeners:
  - name: http
    port: %d
    protocol: HTTP
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  ports:
  - name: http
    port: 80%s
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: %d
endpoints:
- addresses: [%q]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
  namespace: default
spec:
  parentRefs:
  - name: gw
  rules:
  - name: all
    backendRefs:
    - name: web
      port: 80
`, port, app, backendPort, backendIP)
}

// startGatewayInClient builds rauta and runs `rauta run` inside the client
// namespace, listening on its loopback and forwarding to the server
// namespace through the observed router, tracing every request (ratio 1)
// to otlp (a URL in the client namespace). It returns the listener's
// address.
func startGatewayInClient(t *testing.T, tp *topology, otlp string) string {
	t.Helper()
	addr, _ := startGatewayIn(t, tp, tp.client, "127.0.0.1", "-otlp-endpoint", otlp, "-trace-sample-ratio", "1")
	return addr
}

// startGatewayIn builds rauta and runs `rauta run` inside namespace ns,
// its listener on address:18080 forwarding every path to the server
// namespace's port 8080, its admin port on ns's 127.0.0.1:18081, with
// extra flags. It returns the listener's and the admin port's addresses.
func startGatewayIn(t *testing.T, tp *topology, ns, address string, extra ...string) (string, string) {
	t.Helper()
	return startGatewayWith(t, tp, ns, address, "", extra...)
}

// startGatewayWith is startGatewayIn with the backend spoken to with
// appProtocol (gatewayManifests).
func startGatewayWith(t *testing.T, tp *topology, ns, address, appProtocol string, extra ...string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "rauta")
	build := exec.Command("go", "build", "-o", bin, "github.com/false-systems/rauta/cmd/rauta")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build rauta: %v\n%s", err, out)
	}
	const port, admin = 18080, "127.0.0.1:18081"
	manifests := filepath.Join(dir, "manifests")
	if err := os.Mkdir(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(manifests, "all.yaml"), []byte(gatewayManifests(port, tp.serverIP, 8080, appProtocol)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	args := append([]string{"netns", "exec", ns, bin, "run", "-f", manifests, "-address", address,
		"-admin-addr", admin, "-metrics-addr=", "-drain-period=0s", "-access-log=false"}, extra...)
	cmd := exec.Command("ip", args...)
	cmd.Stderr = &stderr
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	c := nsClient(ns)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("rauta exited: %s", stderr.String())
		default:
		}
		if res, err := c.Get("http://" + admin + "/readyz"); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return net.JoinHostPort(address, fmt.Sprint(port)), admin
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rauta not ready within 20s: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nsClient is an HTTP client whose connections are made inside namespace
// ns.
func nsClient(ns string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNetns(ns, func() (err error) {
				d := net.Dialer{Timeout: 5 * time.Second}
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// serveInClient serves h on the client namespace's loopback.
func serveInClient(t *testing.T, tp *topology, h http.Handler) string {
	t.Helper()
	var ln net.Listener
	if err := inNetns(tp.client, func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestGatewayAndObserverShareTraces: a request through the RAUTA gateway
// (in the client namespace) to a backend behind the observed router makes
// one trace of three spans: the gateway's SERVER span, its CLIENT span to
// the backend, and the observer's SERVER span of that hop, whose parent is
// the gateway's CLIENT span (the traceparent the gateway sent). That holds
// for a trace the client started and for one the gateway started.
func TestGatewayAndObserverShareTraces(t *testing.T) {
	tp := newTopology(t)
	startServer(t, tp, 8080)
	rcv := &spanReceiver{}
	observerOTLP := httptest.NewServer(rcv)
	defer observerOTLP.Close()
	gatewayOTLP := serveInClient(t, tp, rcv)
	obs := startObserver(t, tp, "tc", func(c *observe.Config) {
		c.OTLPEndpoint = observerOTLP.URL
		c.OTLPInterval = time.Second
	})
	gw := startGatewayInClient(t, tp, gatewayOTLP)

	c := httpClient(tp, true)
	client := tracecontext.Parent{TraceID: tracecontext.NewTraceID(), SpanID: tracecontext.NewSpanID(), Flags: 1}
	for _, tp := range []string{string(tracecontext.Append(nil, client.TraceID, client.SpanID)), ""} {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+gw+"/ok", nil)
		if tp != "" {
			req.Header.Set("traceparent", tp)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("through the gateway: status %d", res.StatusCode)
		}
	}

	spans := rcv.wait(t, 6)
	byTrace := map[string][]*tracepb.Span{}
	for _, sp := range spans {
		k := hex.EncodeToString(sp.TraceId)
		byTrace[k] = append(byTrace[k], sp)
	}
	if len(spans) != 6 || len(byTrace) != 2 {
		t.Fatalf("%d spans in %d traces, want 6 in 2", len(spans), len(byTrace))
	}
	if _, ok := byTrace[hex.EncodeToString(client.TraceID[:])]; !ok {
		t.Fatalf("no span in the client's trace %x", client.TraceID)
	}
	for id, trace := range byTrace {
		var gwServer, gwClient, observed *tracepb.Span
		for _, sp := range trace {
			isObserver := false
			for _, a := range sp.Attributes {
				if a.Key == "rauta.observer" && a.Value.GetBoolValue() {
					isObserver = true
				}
			}
			switch {
			case isObserver:
				observed = sp
			case sp.Kind == tracepb.Span_SPAN_KIND_SERVER:
				gwServer = sp
			case sp.Kind == tracepb.Span_SPAN_KIND_CLIENT:
				gwClient = sp
			}
		}
		if gwServer == nil || gwClient == nil || observed == nil {
			t.Fatalf("trace %s: gateway server %v, gateway client %v, observer %v; want all three", id, gwServer != nil, gwClient != nil, observed != nil)
		}
		if string(gwClient.ParentSpanId) != string(gwServer.SpanId) || string(observed.ParentSpanId) != string(gwClient.SpanId) {
			t.Errorf("trace %s: observer's parent %x, gateway client %x (parent %x), gateway server %x; want observer -> gateway client -> gateway server",
				id, observed.ParentSpanId, gwClient.SpanId, gwClient.ParentSpanId, gwServer.SpanId)
		}
		if observed.Kind != tracepb.Span_SPAN_KIND_SERVER || !strings.HasPrefix(observed.Name, "GET ") {
			t.Errorf("trace %s: observer span %v %q", id, observed.Kind, observed.Name)
		}
		// The backend's span lies inside the gateway's attempt.
		if observed.StartTimeUnixNano < gwClient.StartTimeUnixNano-uint64(50*time.Millisecond) || observed.EndTimeUnixNano > gwClient.EndTimeUnixNano+uint64(50*time.Millisecond) {
			t.Errorf("trace %s: observer span %d..%d outside the gateway's attempt %d..%d", id, observed.StartTimeUnixNano, observed.EndTimeUnixNano, gwClient.StartTimeUnixNano, gwClient.EndTimeUnixNano)
		}
	}
	obs.stop(t)
}
