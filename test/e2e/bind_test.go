package e2e

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/poll"
)

// TestUnboundListener: a listener whose port is taken leaves the Gateway's
// other listener serving while /readyz answers 503 naming it; once the
// port is free, the next reload binds it and /readyz answers 200.
func TestUnboundListener(t *testing.T) {
	be := startBackend(t, "bind")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy, free := taken.Addr().(*net.TCPAddr).Port, freePort(t)
	dir := t.TempDir()
	manifest := gatewayYAML("gw", listenerSpec{name: "busy", port: busy, protocol: "HTTP"}, listenerSpec{name: "free", port: free, protocol: "HTTP"}) +
		servicesYAML(be) + routeYAML("bind", nil, catchAll("bind"))
	writeFile(t, filepath.Join(dir, "all.yaml"), manifest)
	g := launchGateway(t, dir)

	readyz := func() (int, string) {
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + g.admin + "/readyz")
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	poll.Require(t, 15*time.Second, "/readyz 503 naming the unbound listener", func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "not bound") && strings.Contains(body, "address already in use")
	})
	if res := get(t, newClient(), free, "bind.test", "/"); res.status != http.StatusOK {
		t.Errorf("the bound listener: status %d", res.status)
	}

	taken.Close()
	writeFile(t, filepath.Join(dir, "all.yaml"), manifest+"# the port is free now\n")
	poll.Require(t, 15*time.Second, "/readyz 200 after the reload bound the listener", func() bool {
		code, _ := readyz()
		return code == http.StatusOK
	})
	if res := get(t, newClient(), busy, "bind.test", "/"); res.status != http.StatusOK {
		t.Errorf("the listener bound by the reload: status %d", res.status)
	}
	g.alive(t)
}
