package dpfeed

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/bench/internal/manifests"
	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/dataplane"
	"github.com/false-systems/rauta/internal/freeport"
)

// benchManifests is a Gateway default/feed with one HTTP listener on port
// and an HTTPRoute to a Service whose endpoint is backendPort on loopback,
// plus a second Gateway whose listener must not reach the feed's data plane.
func benchManifests(port, otherPort, backendPort int) string {
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
  name: feed
  namespace: default
spec:
  gatewayClassName: rauta
  listeners:
  - name: http
    port: %d
    protocol: HTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: other
  namespace: default
spec:
  gatewayClassName: rauta
  listeners:
  - name: http
    port: %d
    protocol: HTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: feed
  namespace: default
spec:
  parentRefs:
  - name: feed
  - name: other
  rules:
  - backendRefs:
    - name: pool
      port: 80
`, port, otherPort) + manifests.LoopbackService("pool", backendPort)
}

// freePort is a loopback port nothing listened on a moment ago, outside
// the ephemeral range (internal/freeport).
func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFeedServesADataPlane runs a real data plane (package dataplane, as
// rauta-dataplane does) with Args of a Feed that publishes the translation
// of manifests, and sends a request through it to a loopback backend.
func TestFeedServesADataPlane(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "from the backend")
	}))
	defer backend.Close()
	backendPort := backend.Listener.Addr().(*net.TCPAddr).Port
	// Fresh ports on each attempt: another package's test may take a port
	// between freePort and the data plane's bind.
	var problem string
	for attempt := 1; attempt <= 3; attempt++ {
		if problem = serveThroughFeed(t, backendPort); problem == "" {
			return
		}
		t.Logf("attempt %d: %s", attempt, problem)
	}
	t.Fatal(problem)
}

// serveThroughFeed is one attempt of TestFeedServesADataPlane; it returns
// what went wrong with the listeners, "" when nothing did.
func serveThroughFeed(t *testing.T, backendPort int) string {
	t.Helper()
	port, otherPort := freePort(t), freePort(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(benchManifests(port, otherPort, backendPort)), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := FromManifests(dir, "default/feed")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range snap.Listeners {
		if l.Gateway != "default/feed" {
			t.Fatalf("snapshot holds listener %q of gateway %q", l.Name, l.Gateway)
		}
	}
	feed, err := Start(dir, "default/feed")
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	feed.Publish(configstream.NewConfig("default/feed", 1, snap))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := append(feed.Args("test"), "-address", "127.0.0.1", "-admin-addr", "127.0.0.1:0", "-metrics-addr=",
		"-access-log=false", "-log-level", "warn", "-drain-period", "0s")
	go func() { done <- dataplane.Main(ctx, args, io.Discard, io.Discard, "test") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("data plane: %v", err)
		}
	}()

	client := &http.Client{Timeout: time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var body string
	for range 200 { // up to 10 s for the stream to deliver the Config
		if resp, err := client.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if body = string(b); resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body != "from the backend" {
		return fmt.Sprintf("GET %s through the data plane: body %q, want the backend's", url, body)
	}
	// The other Gateway's listener is not this data plane's to bind.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", otherPort), time.Second); err == nil {
		c.Close()
		return "the listener of gateway default/other is served by default/feed's data plane"
	}
	return ""
}

func TestFromManifestsUnknownGateway(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(benchManifests(18000, 18001, 18081)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := FromManifests(dir, "default/absent"); err == nil || !strings.Contains(err.Error(), "no listener") {
		t.Errorf("FromManifests of a gateway not in the manifests: err %v, want no listener", err)
	}
}
