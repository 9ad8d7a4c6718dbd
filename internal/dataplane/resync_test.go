package dataplane

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/poll"
)

type oneToken struct{ id configstream.Identity }

func (o oneToken) Authenticate(_ context.Context, token string) (configstream.Identity, error) {
	if token != "tok" {
		return configstream.Identity{}, configstream.ErrUnauthenticated
	}
	return o.id, nil
}

// redirects is a Gateway of one listener whose routes answer with a
// redirect to the host named after their path (no backend needed).
func redirects(port uint32, hosts map[string]string) *ir.Snapshot {
	vh := ir.VirtualHost{Name: "ns/gw/http"}
	for _, path := range []string{"/a", "/b", "/c"} {
		vh.Routes = append(vh.Routes, ir.Route{
			Name:    "HTTPRoute/ns/r" + path,
			Match:   ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: path}},
			Filters: []ir.Filter{{Redirect: &ir.Redirect{Hostname: hosts[path], StatusCode: 302}}},
		})
	}
	return &ir.Snapshot{Listeners: []ir.Listener{{Name: "ns/gw/http", Gateway: "ns/gw", Port: port, Protocol: ir.ProtocolHTTP, VirtualHosts: []ir.VirtualHost{vh}}}}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runGateway starts a data plane's gateway serving its listener on port
// 80 + offset, until the test ends.
func runGateway(t *testing.T, port int, logger *slog.Logger) *gateway.Gateway {
	t.Helper()
	gw, err := newGateway(gateway.Options{Address: "127.0.0.1", PortOffset: port - 80, AdminAddr: "127.0.0.1:0"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = gw.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return gw
}

// redirectOf asks the gateway on port for path and returns the Location.
func redirectOf(t *testing.T, port int, path string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 5 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Location")
}

// A data plane whose proxy does not have the routes a delta elides (here:
// its gateway restarted under a stream that continued, as after the
// Config before was refused) reports Resync instead of an error, keeps
// what it serves, streams again from a whole Config and then serves the
// delta's routes, changed and unchanged; the controller keeps no report
// of the resync.
func TestDeltaWithUnknownRoutesResyncs(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	const key = "ns/gw"
	ca, err := configstream.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServing([]string{"controller.test"}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := &configstream.Server{
		Auth:      oneToken{configstream.Identity{Namespace: "ns", ServiceAccount: "gw", Pod: "pod-a"}},
		Authorize: func(_ configstream.Identity, gw string) bool { return gw == key },
		Heartbeat: time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}}
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { hs.Close() })
	pool, err := configstream.Pool(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	tokenPath := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenPath, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}

	port1, port2 := freePort(t), freePort(t)
	var current atomic.Pointer[gateway.Gateway]
	current.Store(runGateway(t, port1, logger))
	reports := make(chan configstream.Report, 16)
	client := &configstream.Client{
		Address: ln.Addr().String(), ServerName: "controller.test", RootCAs: pool, TokenFile: tokenPath,
		Gateway: key, Pod: "pod-a", Heartbeat: time.Second,
		Apply: func(c configstream.Config) configstream.Report {
			rep := apply(current.Load(), c, logger)
			rep.Version = c.Version
			reports <- rep
			return rep
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = client.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	next := func() configstream.Report {
		t.Helper()
		select {
		case rep := <-reports:
			return rep
		case <-time.After(10 * time.Second):
			t.Fatal("no config applied within 10 s")
			return configstream.Report{}
		}
	}

	var enc configstream.Encoder
	first := enc.NewConfig(key, 1, redirects(80, map[string]string{"/a": "a.example", "/b": "b.example", "/c": "c.example"}))
	srv.Publish(map[string]configstream.Config{key: first})
	if rep := next(); rep.Version != first.Version || rep.Error != "" || rep.Resync {
		t.Fatalf("first config: %+v", rep)
	}
	if loc := redirectOf(t, port1, "/b"); !strings.Contains(loc, "b.example") {
		t.Fatalf("first config: /b redirects to %q", loc)
	}

	// The proxy starts over; the stream does not.
	restarted := runGateway(t, port2, logger)
	current.Store(restarted)
	second := enc.NewConfig(key, 2, redirects(80, map[string]string{"/a": "a.example", "/b": "b2.example", "/c": "c.example"}))
	srv.Publish(map[string]configstream.Config{key: second})
	if rep := next(); rep.Version != second.Version || !rep.Resync || rep.Error != "" {
		t.Fatalf("a delta eliding routes the proxy never compiled: %+v, want Resync", rep)
	}
	if err := restarted.Ready(); err == nil {
		t.Fatal("the restarted gateway applied a config whose routes it does not have")
	}
	if rep := next(); rep.Version != second.Version || rep.Resync || rep.Error != "" {
		t.Fatalf("after the resync: %+v, want the second config applied", rep)
	}
	for path, want := range map[string]string{"/a": "a.example", "/b": "b2.example", "/c": "c.example"} {
		if loc := redirectOf(t, port2, path); !strings.Contains(loc, want) {
			t.Errorf("after the resync %s redirects to %q, want %s", path, loc, want)
		}
	}
	poll.Require(t, 10*time.Second, "the controller to hold the pod's report of the second config", func() bool {
		pods := srv.Pods(key)
		return len(pods) == 1 && pods[0].Report.Version == second.Version && !pods[0].Report.Resync
	})
}
